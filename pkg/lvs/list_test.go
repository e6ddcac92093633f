package lvs_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/lvs/lvstest"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files that are not ipvsadm-derived")

// seedVS is the seed's virtual server (keepalived-lvs-chapter.md).
func seedVS() lvs.VirtualServer {
	return lvs.VirtualServer{
		Key: vip, Scheduler: "wrr", Method: "DR", PersistenceTimeout: 50 * time.Second,
		RealServers: []lvs.RealServer{{Addr: rs1.Addr, Port: 80, Weight: 1}, {Addr: rs2.Addr, Port: 80, Weight: 1}},
	}
}

func managerWith(t *testing.T, vss ...lvs.VirtualServer) *lvs.Manager {
	t.Helper()
	m := lvs.NewManager(&lvstest.Backend{}, lvs.ManagerOptions{})
	if err := m.Configure(vss); err != nil {
		t.Fatal(err)
	}
	return m
}

func checkGolden(t *testing.T, name string, got []byte, updatable bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update && updatable {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// The seed.golden and seed-stats.golden files were produced with the
// shell's printf and ipvsadm's own format strings, not by this code.
func TestWriteListSeed(t *testing.T) {
	m := managerWith(t, seedVS())
	var buf bytes.Buffer
	if err := lvs.WriteList(&buf, m.Views(nil), lvs.ListOptions{Dataplane: "xdp"}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "seed.golden", buf.Bytes(), false)
}

func TestWriteListSeedStats(t *testing.T) {
	m := managerWith(t, seedVS())
	stats := []lvs.ServiceStats{{
		Key: vip, Conns: 1000, PktsIn: 6000, BytesIn: 360_123_456, BytesOut: 1_234_567_890,
		Dests: []lvs.DestStats{
			{Addr: rs1.Addr, Port: 80, Conns: 600, PktsIn: 3500, BytesIn: 99_999_999},
			{Addr: rs2.Addr, Port: 80, Conns: 400, PktsIn: 2500, BytesIn: 123_456_789_012, BytesOut: 456_789_012_345_678},
		},
	}}
	var buf bytes.Buffer
	if err := lvs.WriteList(&buf, m.Views(stats), lvs.ListOptions{Stats: true, Dataplane: "xdp"}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "seed-stats.golden", buf.Bytes(), false)
}

// TestWriteListHealth covers the markers, sorry server, masks, IPv6 and
// fwmark services. Regenerate with -update after checking the output.
func TestWriteListHealth(t *testing.T) {
	v6 := lvs.ServiceKey{Proto: lvs.ProtoUDP, Addr: netip.MustParseAddr("2001:db8::10"), Port: 53}
	fw := lvs.ServiceKey{Fwmark: 3, Family: 6}
	inh := lvs.VirtualServer{
		Key: lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: vip.Addr, Port: 443}, Scheduler: "sh", Method: "DR",
		PersistenceTimeout: 300 * time.Second, PersistenceGranularity: 24, InhibitOnFailure: true,
		Sorry:       &lvs.SorryServer{Addr: sorry.Addr, Port: 8443, Inhibit: true},
		RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 3}, {Addr: rs2.Addr, Weight: 2}, {Addr: rs3.Addr, Weight: 1, InhibitOnFailure: ptr(false)}},
	}
	lost := lvs.VirtualServer{
		Key: vip, Scheduler: "wrr", Method: "DR", Quorum: 3,
		Sorry:       &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port},
		RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}, {Addr: rs2.Addr, Weight: 1}, {Addr: rs3.Addr, Weight: 1}},
	}
	ipv6 := lvs.VirtualServer{
		Key: v6, Scheduler: "mh", Method: "NAT", PersistenceTimeout: time.Minute, PersistenceGranularity: 64, OnePacket: true,
		RealServers: []lvs.RealServer{{Addr: netip.MustParseAddr("2001:db8::1"), Weight: 1}, {Addr: netip.MustParseAddr("2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"), Weight: 1, Method: "TUN"}},
	}
	fwm := lvs.VirtualServer{Key: fw, Scheduler: "rr", Method: "DR", RealServers: []lvs.RealServer{{Addr: netip.MustParseAddr("2001:db8::2"), Weight: 1}}}
	b := &lvstest.Backend{}
	m := lvs.NewManager(b, lvs.ManagerOptions{})
	if err := m.Configure([]lvs.VirtualServer{inh, lost, ipv6, fwm}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		vs lvs.ServiceKey
		rs lvs.RealServerKey
	}{{inh.Key, lvs.RealServerKey{rs1.Addr, 443}}, {inh.Key, lvs.RealServerKey{rs3.Addr, 443}}, {vip, rs1}, {vip, rs2}} {
		if err := m.SetHealth(c.vs, c.rs, false); err != nil {
			t.Fatal(err)
		}
	}
	stats := []lvs.ServiceStats{{Key: vip, Dests: []lvs.DestStats{{Addr: sorry.Addr, Port: sorry.Port, ActiveConn: 12, InactConn: 34}}}}
	for _, o := range []struct {
		file string
		opts lvs.ListOptions
	}{{"health.golden", lvs.ListOptions{Dataplane: "xdp"}}, {"health-stats.golden", lvs.ListOptions{Stats: true}}} {
		var buf bytes.Buffer
		if err := lvs.WriteList(&buf, m.Views(stats), o.opts); err != nil {
			t.Fatal(err)
		}
		checkGolden(t, o.file, buf.Bytes(), true)
	}
}

func TestWriteListJSON(t *testing.T) {
	b := &lvstest.Backend{}
	m := lvs.NewManager(b, lvs.ManagerOptions{})
	vs := seedVS()
	vs.InhibitOnFailure = true
	if err := m.Configure([]lvs.VirtualServer{vs}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetHealth(vip, rs2, false); err != nil {
		t.Fatal(err)
	}
	stats := []lvs.ServiceStats{{Key: vip, Conns: 7, Dests: []lvs.DestStats{{Addr: rs1.Addr, Port: 80, Conns: 7, PktsIn: 70, ActiveConn: 2}}}}
	var buf bytes.Buffer
	if err := lvs.WriteList(&buf, m.Views(stats), lvs.ListOptions{JSON: true, Dataplane: "xdp"}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Dataplane string `json:"dataplane"`
		Services  []struct {
			Protocol           string `json:"protocol"`
			Address            string `json:"address"`
			Port               int    `json:"port"`
			Scheduler          string `json:"scheduler"`
			PersistenceTimeout int    `json:"persistence_timeout"`
			QuorumUp           bool   `json:"quorum_up"`
			LiveWeight         int    `json:"live_weight"`
			Conns              int    `json:"conns"`
			RealServers        []struct {
				Address    string `json:"address"`
				Port       int    `json:"port"`
				Method     string `json:"method"`
				Weight     int    `json:"weight"`
				Configured int    `json:"configured_weight"`
				Programmed bool   `json:"programmed"`
				Up         bool   `json:"up"`
				State      string `json:"state"`
				Active     int    `json:"active_conns"`
				Conns      int    `json:"conns"`
				InPkts     int    `json:"in_pkts"`
			} `json:"real_servers"`
		} `json:"virtual_servers"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	if doc.Dataplane != "xdp" || len(doc.Services) != 1 {
		t.Fatalf("doc = %+v", doc)
	}
	s := doc.Services[0]
	if s.Protocol != "TCP" || s.Address != "192.168.12.211" || s.Port != 80 || s.Scheduler != "wrr" ||
		s.PersistenceTimeout != 50 || !s.QuorumUp || s.LiveWeight != 1 || s.Conns != 7 || len(s.RealServers) != 2 {
		t.Fatalf("service = %+v", s)
	}
	r1, r2 := s.RealServers[0], s.RealServers[1]
	if r1.Address != "192.168.28.103" || r1.Port != 80 || r1.Method != "DR" || r1.Weight != 1 || !r1.Programmed ||
		!r1.Up || r1.State != "active" || r1.Active != 2 || r1.Conns != 7 || r1.InPkts != 70 {
		t.Errorf("rs1 = %+v", r1)
	}
	if r2.Address != "192.168.28.104" || r2.Weight != 0 || r2.Configured != 1 || !r2.Programmed || r2.Up || r2.State != "inhibited" {
		t.Errorf("rs2 = %+v", r2)
	}
}

func TestWriteListEmpty(t *testing.T) {
	for _, o := range []struct {
		opts lvs.ListOptions
		want string
	}{
		{lvs.ListOptions{}, "xdpvip Virtual Server\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"},
		{lvs.ListOptions{JSON: true}, "{\n  \"virtual_servers\": []\n}\n"},
	} {
		var buf bytes.Buffer
		if err := lvs.WriteList(&buf, nil, o.opts); err != nil {
			t.Fatal(err)
		}
		if buf.String() != o.want {
			t.Errorf("got %q, want %q", buf.String(), o.want)
		}
	}
}

// TestViewsMatchStatsKeys: backends may report keys with a Family set or
// IPv4-mapped addresses; the counters must still land on their service.
func TestViewsMatchStatsKeys(t *testing.T) {
	m := managerWith(t, seedVS(), lvs.VirtualServer{Key: lvs.ServiceKey{Fwmark: 9}, RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}}})
	mapped := netip.AddrFrom16(rs1.Addr.As16())
	stats := []lvs.ServiceStats{
		{Key: lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.AddrFrom16(vip.Addr.As16()), Port: 80, Family: 4}, Conns: 5,
			Dests: []lvs.DestStats{{Addr: mapped, Port: 80, Conns: 5}}},
		{Key: lvs.ServiceKey{Fwmark: 9, Family: 4}, Conns: 3},
	}
	views := m.Views(stats)
	if len(views) != 2 || views[0].Conns != 5 || views[0].Dests[0].Conns != 5 || views[1].Conns != 3 {
		t.Fatalf("views = %+v", views)
	}
	// Lookups with a mapped address or a Family find the same service.
	key := lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.AddrFrom16(vip.Addr.As16()), Port: 80, Family: 4}
	if err := m.SetHealth(key, lvs.RealServerKey{Addr: mapped, Port: 80}, false); err != nil {
		t.Fatal(err)
	}
	if v := m.Views(nil)[0]; v.Dests[0].Up {
		t.Fatalf("rs1 still up: %+v", v.Dests[0])
	}
}
