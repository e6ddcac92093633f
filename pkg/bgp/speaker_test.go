package bgp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// router is a second GoBGP on 127.0.0.2 that accepts the speaker on
// 127.0.0.1 and keeps what it learns.
func router(t *testing.T) (*server.BgpServer, uint16) {
	return routerOn(t, "127.0.0.2", "127.0.0.1")
}

// routerOn is a GoBGP listening on listen that accepts the speaker from
// speaker.
func routerOn(t *testing.T, listen, speaker string) (*server.BgpServer, uint16) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(listen, "0"))
	if err != nil {
		t.Skipf("no %s to listen on: %v", listen, err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	r := server.NewBgpServer()
	go r.Serve()
	t.Cleanup(r.Stop)
	ctx := context.Background()
	if err := r.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65000, RouterId: "10.0.0.254", ListenPort: int32(port), ListenAddresses: []string{listen},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: speaker, PeerAsn: 65010},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: listen},
	}}); err != nil {
		t.Fatal(err)
	}
	return r, port
}

// learned is the router's routes: prefix → next hop.
func learned(t *testing.T, r *server.BgpServer) map[string]string {
	out := map[string]string{}
	err := r.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(prefix bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				for _, a := range p.Attrs {
					if nh, ok := a.(*bgp.PathAttributeNextHop); ok {
						out[prefix.String()] = nh.Value.String()
					}
				}
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSpeakerAnnouncesAndWithdraws(t *testing.T) {
	r, port := router(t)
	ctx := context.Background()
	s, err := Start(ctx, Config{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65010, Neighbors: []Neighbor{{
		Addr: netip.MustParseAddr("127.0.0.2"), RemoteAS: 65000, HoldTime: 3 * time.Second, Port: port,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitFor(t, "the session", func() bool {
		ss, err := s.Sessions(ctx)
		return err == nil && len(ss) == 1 && ss[0].State == "ESTABLISHED"
	})
	ss, _ := s.Sessions(ctx)
	if ss[0].Neighbor != "127.0.0.2" || ss[0].RemoteAS != 65000 || ss[0].HoldTime != 3 || ss[0].Uptime.IsZero() {
		t.Errorf("session %+v", ss[0])
	}

	vip1, vip2 := netip.MustParsePrefix("10.78.9.1/32"), netip.MustParsePrefix("10.78.9.2/32")
	ann, wd, err := s.Set(map[netip.Prefix]bool{vip1: true, vip2: true})
	if err != nil || len(ann) != 2 || len(wd) != 0 {
		t.Fatalf("Set: %v %v %v", ann, wd, err)
	}
	waitFor(t, "both routes at the router", func() bool { return len(learned(t, r)) == 2 })
	if nh := learned(t, r)["10.78.9.1/32"]; nh != "127.0.0.1" {
		t.Errorf("next hop %q, want the session address 127.0.0.1", nh)
	}
	if got := s.Announced(); len(got) != 2 || got[0].Prefix != vip1 {
		t.Errorf("Announced() = %v", got)
	}

	ann, wd, err = s.Set(map[netip.Prefix]bool{vip2: true})
	if err != nil || len(ann) != 0 || len(wd) != 1 || wd[0] != vip1 {
		t.Fatalf("Set: %v %v %v", ann, wd, err)
	}
	waitFor(t, "the withdrawal", func() bool {
		l := learned(t, r)
		_, has1 := l["10.78.9.1/32"]
		_, has2 := l["10.78.9.2/32"]
		return !has1 && has2
	})
}

func TestStartRejectsBadRouterID(t *testing.T) {
	if _, err := Start(context.Background(), Config{RouterID: netip.MustParseAddr("2001:db8::1"), LocalAS: 1}); err == nil {
		t.Fatal("accepted an IPv6 router id")
	}
}

// TestSpeakerIPv6: a /128 goes to an IPv6 neighbor in MP_REACH_NLRI.
func TestSpeakerIPv6(t *testing.T) {
	r, port := routerOn(t, "::1", "::1")
	ctx := context.Background()
	s, err := Start(ctx, Config{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65010, Neighbors: []Neighbor{{
		Addr: netip.MustParseAddr("::1"), RemoteAS: 65000, HoldTime: 3 * time.Second, Port: port,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	vip := HostPrefix(netip.MustParseAddr("2001:db8:9::1"))
	if _, _, err := s.Set(map[netip.Prefix]bool{vip: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the /128 at the router", func() bool {
		found := false
		_ = r.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv6_UC},
			func(prefix bgp.NLRI, _ []*apiutil.Path) { found = found || prefix.String() == "2001:db8:9::1/128" })
		return found
	})
	if _, _, err := s.Set(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the /128's withdrawal", func() bool {
		n := 0
		_ = r.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv6_UC},
			func(bgp.NLRI, []*apiutil.Path) { n++ })
		return n == 0
	})
}
