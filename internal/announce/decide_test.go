package announce

import (
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"testing"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/bgp"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// decideConf has two ECMP services on one address, one on another, and a
// VRRP-mode service of VI_1 on eth1.
const decideConf = `vrrp_instance VI_1 {
 interface eth1
 virtual_router_id 7
 priority 100
 virtual_ipaddress {
  10.78.9.9
 }
}
bgp {
 local_as 65010
 router_id 10.78.1.11
 interface eth0
 neighbor 10.78.1.1 {
  remote_as 65000
 }
}
virtual_server 10.78.9.1 80 {
 announce ecmp
 lb_algo rr
 lb_kind DR
 protocol TCP
 real_server 10.78.1.21 80 {
 }
}
virtual_server 10.78.9.1 443 {
 announce ecmp
 lb_algo rr
 lb_kind DR
 protocol TCP
 real_server 10.78.1.21 443 {
 }
}
virtual_server 10.78.9.2 80 {
 announce ecmp
 lb_algo rr
 lb_kind DR
 protocol TCP
 real_server 10.78.1.21 80 {
 }
}
virtual_server 10.78.9.9 80 {
 announce vrrp VI_1
 lb_algo rr
 lb_kind DR
 protocol TCP
 real_server 10.78.1.21 80 {
 }
}
virtual_server 10.78.9.3 80 {
 lb_algo rr
 lb_kind DR
 protocol TCP
 real_server 10.78.1.21 80 {
 }
}
`

func parseConf(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags, err := config.Parse("x.conf", []byte(src))
	if err != nil || len(diags) > 0 {
		t.Fatalf("%v %v", err, diags)
	}
	return cfg
}

// allQuorum is every service of decideConf with quorum.
func allQuorum() map[string]bool {
	q := map[string]bool{}
	for _, k := range []string{"10.78.9.1:80", "10.78.9.1:443", "10.78.9.2:80", "10.78.9.9:80", "10.78.9.3:80"} {
		q["TCP "+k] = true
	}
	return q
}

func TestDecide(t *testing.T) {
	cfg := parseConf(t, decideConf)
	q := allQuorum()
	for _, vs := range cfg.VirtualServers {
		keys, err := lvsconfig.ServiceKeys(cfg, vs)
		if err != nil || len(keys) != 1 || !q[keys[0].String()] {
			t.Fatalf("service keys %v (%v) are not how the test names them: %v", keys, err, q)
		}
	}
	const key = "TCP 10.78.9.1:443"
	onXDP := func(ifaces ...string) func(string) bool {
		return func(i string) bool {
			for _, x := range ifaces {
				if x == i {
					return true
				}
			}
			return false
		}
	}
	type verdict struct {
		announced bool
		reason    string
	}
	for _, tc := range []struct {
		name    string
		f       facts
		want    map[string]verdict
		forward []string
	}{
		{"all serve", facts{quorum: q, states: map[string]vrrp.State{"VI_1": vrrp.StateMaster}, iface: "eth0", xdp: onXDP("eth0", "eth1")},
			map[string]verdict{"10.78.9.1/32": {true, ""}, "10.78.9.2/32": {true, ""}, "10.78.9.9/32": {true, ""}},
			[]string{"10.78.9.1", "10.78.9.2"}},
		{"one port of an address without quorum", facts{quorum: with(q, key, false), states: map[string]vrrp.State{"VI_1": vrrp.StateBackup}, iface: "eth0", xdp: onXDP("eth0", "eth1")},
			map[string]verdict{"10.78.9.1/32": {false, bgp.ReasonNoQuorum}, "10.78.9.2/32": {true, ""}, "10.78.9.9/32": {false, bgp.ReasonNotMaster}},
			// The forwarding flag is per address: the port that still
			// serves keeps it on for the flows the routers still send.
			[]string{"10.78.9.1", "10.78.9.2"}},
		{"draining keeps forwarding", facts{quorum: q, draining: true, states: map[string]vrrp.State{}, iface: "eth0", xdp: onXDP("eth0")},
			map[string]verdict{"10.78.9.1/32": {false, bgp.ReasonDraining}, "10.78.9.2/32": {false, bgp.ReasonDraining}, "10.78.9.9/32": {false, bgp.ReasonDraining}},
			[]string{"10.78.9.1", "10.78.9.2"}},
		{"kernel IPVS: no ECMP, VRRP attached", facts{quorum: q, ipvs: true, states: map[string]vrrp.State{"VI_1": vrrp.StateMaster}, iface: "eth0", xdp: onXDP()},
			map[string]verdict{"10.78.9.1/32": {false, bgp.ReasonDetached}, "10.78.9.2/32": {false, bgp.ReasonDetached}, "10.78.9.9/32": {true, ""}},
			nil},
		{"instance not running", facts{quorum: q, states: map[string]vrrp.State{}, iface: "eth0", xdp: onXDP("eth0", "eth1")},
			map[string]verdict{"10.78.9.1/32": {true, ""}, "10.78.9.2/32": {true, ""}, "10.78.9.9/32": {false, bgp.ReasonNoInstance}},
			[]string{"10.78.9.1", "10.78.9.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := decide(cfg, tc.f)
			var order []string
			got := map[string]verdict{}
			for _, p := range pl.order {
				order = append(order, p.String())
				got[p.String()] = verdict{pl.routes[p].Announced, pl.routes[p].Reason}
			}
			if want := []string{"10.78.9.1/32", "10.78.9.2/32", "10.78.9.9/32"}; !reflect.DeepEqual(order, want) {
				t.Errorf("prefixes %v, want %v (configuration order, unannounced services left out)", order, want)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("verdicts %v, want %v", got, tc.want)
			}
			if vs := pl.routes[netip.MustParsePrefix("10.78.9.1/32")].VirtualServers; !reflect.DeepEqual(vs, []string{"10.78.9.1:80", "10.78.9.1:443"}) {
				t.Errorf("10.78.9.1/32 is for %v", vs)
			}
			var fwd []string
			for _, a := range []string{"10.78.9.1", "10.78.9.2", "10.78.9.9", "10.78.9.3"} {
				if pl.forward[netip.MustParseAddr(a)] {
					fwd = append(fwd, a)
				}
			}
			if !reflect.DeepEqual(fwd, tc.forward) {
				t.Errorf("forwarded %v, want %v", fwd, tc.forward)
			}
			want := map[netip.Prefix]bool{}
			for p, v := range tc.want {
				if v.announced {
					want[netip.MustParsePrefix(p)] = true
				}
			}
			if !reflect.DeepEqual(pl.want(), want) {
				t.Errorf("want() = %v, want %v", pl.want(), want)
			}
		})
	}
}

func with(m map[string]bool, k string, v bool) map[string]bool {
	out := map[string]bool{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// fakePlane is an XDP program's forwarding flags.
type fakePlane struct {
	active map[netip.Addr]bool
	fail   map[netip.Addr]bool // SetVIPActive refuses these
}

func (p *fakePlane) Flows(int) ([]dataplane.Flow, error)    { return nil, nil }
func (p *fakePlane) PinFlows([]dataplane.Flow) (int, error) { return 0, nil }
func (p *fakePlane) VIPActive(a netip.Addr) (bool, error)   { return p.active[a], nil }
func (p *fakePlane) SetVIPActive(a netip.Addr, on bool) error {
	if p.fail[a] {
		return errors.New("map full")
	}
	p.active[a] = on
	return nil
}

func TestSetForwarding(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.78.9.1"), netip.MustParseAddr("10.78.9.2"), netip.MustParseAddr("10.78.9.3")
	xp := &fakePlane{active: map[netip.Addr]bool{}, fail: map[netip.Addr]bool{c: true}}
	r := &speakerRoutes{log: slog.New(slog.DiscardHandler), forwarded: map[netip.Addr]bool{}}
	r.setForwarding(xp, map[netip.Addr]bool{a: true, b: true, c: true})
	if !xp.active[a] || !xp.active[b] || xp.active[c] {
		t.Errorf("flags %v after turning a, b, c on (c refused)", xp.active)
	}
	if !reflect.DeepEqual(r.forwarded, map[netip.Addr]bool{a: true, b: true}) {
		t.Errorf("forwarded %v: a refused flag must not count as forwarded", r.forwarded)
	}
	r.setForwarding(xp, map[netip.Addr]bool{b: true})
	if xp.active[a] || !xp.active[b] {
		t.Errorf("flags %v after keeping only b", xp.active)
	}
	if !reflect.DeepEqual(r.forwarded, map[netip.Addr]bool{b: true}) {
		t.Errorf("forwarded %v, want only b", r.forwarded)
	}
}

// fakeNode is a daemon with a configuration and XDP on some interfaces.
type fakeNode struct {
	cfg    *config.Config
	planes map[string]*fakePlane
}

func (n fakeNode) Running() (*config.Config, map[string]vrrp.State) { return n.cfg, nil }
func (n fakeNode) QuorumUp() map[string]bool                        { return nil }
func (n fakeNode) Dataplane() string                                { return "xdp" }
func (n fakeNode) Forwarder(iface string) Forwarder {
	if p := n.planes[iface]; p != nil {
		return p
	}
	return nil
}

// TestInherited: a first start finds the ECMP forwarding a previous daemon
// left on (graceful restart); a VRRP-mode or unannounced address does not
// count, nor does a speaker restarted by a reload.
func TestInherited(t *testing.T) {
	cfg := parseConf(t, decideConf)
	xp := &fakePlane{active: map[netip.Addr]bool{netip.MustParseAddr("10.78.9.9"): true, netip.MustParseAddr("10.78.9.3"): true}}
	n := fakeNode{cfg: cfg, planes: map[string]*fakePlane{"eth0": xp}}
	r := &speakerRoutes{node: n, log: slog.New(slog.DiscardHandler), forwarded: map[netip.Addr]bool{}}
	if r.inherited("eth0") {
		t.Error("inherited with only non-ECMP addresses flagged")
	}
	xp.active[netip.MustParseAddr("10.78.9.2")] = true
	if !r.inherited("eth0") {
		t.Error("not inherited with an ECMP address flagged")
	}
	if r.inherited("eth9") {
		t.Error("inherited on an interface without XDP")
	}
	r.cfg = cfg.BGP
	if r.inherited("eth0") {
		t.Error("inherited after the first start")
	}
}
