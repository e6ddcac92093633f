package announce

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/lvs/lvstest"
	"github.com/xdpvip/xdpvip/pkg/maglev"
)

// ecmpTestConf is a virtual server announced for ECMP whose real servers
// are written in the order given.
func ecmpTestConf(order []int) string {
	var b strings.Builder
	b.WriteString("bgp {\n local_as 65010\n neighbor 10.78.1.1 {\n  remote_as 65000\n }\n}\n")
	b.WriteString("virtual_server 10.78.9.1 80 {\n announce ecmp\n lb_algo wrr\n lb_kind DR\n protocol TCP\n")
	for _, i := range order {
		fmt.Fprintf(&b, " real_server 10.78.1.%d 80 {\n  weight %d\n }\n", 20+i, 1+i%3)
	}
	b.WriteString("}\n")
	return b.String()
}

// nodeTable is what one node's dataplane would build from the
// configuration after the health events, in the dataplane's own terms
// (pkg/dataplane/lvs.go: a maglev.Entry per weighted real server, keyed
// by ADDR:PORT): the real server of every slot.
func nodeTable(t *testing.T, order []int, events []lvs.RealServerKey) []string {
	t.Helper()
	cfg, diags, err := config.Parse("n.conf", []byte(ecmpTestConf(order)))
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	vss, err := lvsconfig.VirtualServers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	be := &lvstest.Backend{}
	m := lvs.NewManager(be, lvs.ManagerOptions{})
	if err := m.Configure(vss); err != nil {
		t.Fatal(err)
	}
	vs := vss[0].Key
	// Every real server goes down and comes back, in this node's order.
	for _, rs := range events {
		if err := m.SetHealth(vs, rs, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, rs := range slices.Backward(events) {
		if err := m.SetHealth(vs, rs, true); err != nil {
			t.Fatal(err)
		}
	}
	svcs, ok := be.Last()
	if !ok || len(svcs) != 1 {
		t.Fatalf("backend got %v", svcs)
	}
	var entries []maglev.Entry
	for _, d := range svcs[0].Dests {
		entries = append(entries, maglev.Entry{Key: netip.AddrPortFrom(d.Addr, d.Port).String(), Weight: uint32(d.Weight)})
	}
	slots, err := maglev.Build(entries, 65537)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(slots))
	for i, s := range slots {
		out[i] = entries[s].Key
	}
	return out
}

// TestECMPNodesBuildTheSameTable: nodes whose configurations list the real
// servers in different orders, and whose checks reported in different
// orders, forward every flow hash to the same real server.
func TestECMPNodesBuildTheSameTable(t *testing.T) {
	rs := func(i int) lvs.RealServerKey {
		return lvs.RealServerKey{Addr: netip.MustParseAddr(fmt.Sprintf("10.78.1.%d", 20+i)), Port: 80}
	}
	a := nodeTable(t, []int{1, 2, 3, 4, 5}, []lvs.RealServerKey{rs(1), rs(2), rs(3), rs(4), rs(5)})
	b := nodeTable(t, []int{5, 3, 1, 4, 2}, []lvs.RealServerKey{rs(4), rs(2), rs(5), rs(1), rs(3)})
	c := nodeTable(t, []int{2, 4, 5, 1, 3}, nil)
	for name, other := range map[string][]string{"permuted config and checks": b, "no health events": c} {
		diff := 0
		for i := range a {
			if a[i] != other[i] {
				diff++
			}
		}
		if diff != 0 {
			t.Errorf("%s: %d of %d slots pick another real server", name, diff, len(a))
		}
	}
	seen := map[string]int{}
	for _, k := range a {
		seen[k]++
	}
	if len(seen) != 5 {
		t.Errorf("table uses %d real servers, want 5: %v", len(seen), seen)
	}
}

func TestSameBGP(t *testing.T) {
	parse := func(src string) *config.BGP {
		cfg, _, err := config.Parse("x.conf", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.BGP
	}
	a := parse("bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\n")
	moved := parse("\n\nbgp {\n local_as 1\n\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\n")
	hold := parse("bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n  hold_time 3\n }\n}\n")
	if !sameBGP(a, moved) {
		t.Error("a bgp block moved in the file counts as changed")
	}
	if sameBGP(a, hold) {
		t.Error("a changed hold time counts as the same")
	}
	if sameBGP(a, nil) || !sameBGP(nil, nil) {
		t.Error("nil handling")
	}
}

func TestBGPCollector(t *testing.T) {
	rs := &Routes{}
	rs.r = &speakerRoutes{draining: true, cfg: &config.BGP{LocalAS: 65010}, routerID: netip.MustParseAddr("10.0.0.1"),
		routes: []RouteStatus{
			{Prefix: "10.78.9.1/32", Mode: "ecmp", Reason: "draining", Forwarded: true},
			{Prefix: "10.78.9.2/32", Mode: "vrrp", Announced: true},
		}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(rs.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"xdpvip_bgp_draining": 1,
		"xdpvip_bgp_route_announced,mode=ecmp,prefix=10.78.9.1/32":       0,
		"xdpvip_bgp_route_announced,mode=vrrp,prefix=10.78.9.2/32":       1,
		"xdpvip_bgp_route_withdrawn,prefix=10.78.9.1/32,reason=draining": 1,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v; all: %v", k, g, ok, v, got)
		}
	}
	if _, ok := got["xdpvip_bgp_route_withdrawn,prefix=10.78.9.2/32,reason="]; ok {
		t.Error("an announced prefix has a withdraw reason")
	}
}
