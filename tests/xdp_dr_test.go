package tests

import (
	"math"
	"net/netip"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// TestXDPDirectRouting drives pkg/dataplane directly (no daemon) on lvs1 of
// the LVS lab: one virtual server VIP:80 over rs1 (weight 1) and rs2
// (weight 3), both nginx with the VIP on lo. 1000 HTTP requests from the
// client must all be answered, split by weight, and the dataplane's
// per-real-server counters must match the answers.
func TestXDPDirectRouting(t *testing.T) {
	requireNginx(t)
	l := newLVSLab(t)
	l.StartNginx(l.RS1)
	l.StartNginx(l.RS2)
	rs1, rs2 := l.RS1.Addr(4), l.RS2.Addr(4)
	svc := lvs.Service{
		Key:       lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: l.VIP, Port: 80},
		Scheduler: "wrr",
		Dests: []lvs.Dest{
			{Addr: rs1, Port: 80, Weight: 1, Method: "DR"},
			{Addr: rs2, Port: 80, Weight: 3, Method: "DR"},
		},
	}
	// lvs1 is MASTER: it holds the VIP, so the client's ARP for the VIP
	// gets lvs1's MAC.
	d := openLabDataplane(t, l, l.VIP, []lvs.Service{svc})

	const requests = 1000
	got, errs := labSplit(l.Client, l.VIP, requests)
	if len(errs) > 0 {
		t.Fatalf("requests failed: %v (answers so far %v)", errs, got)
	}
	t.Logf("answers by real server: %v", got)
	weights := map[string]float64{"rs1": 0.25, "rs2": 0.75}
	for name, share := range weights {
		if dev := math.Abs(float64(got[name])/requests - share); dev > 0.05 {
			t.Errorf("%s answered %d of %d, want %.0f%% ±5 points", name, got[name], requests, share*100)
		}
	}

	stats, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 {
		t.Fatalf("Stats: %d services, want 1", len(stats))
	}
	byAddr := map[netip.Addr]string{rs1: "rs1", rs2: "rs2"}
	for _, ds := range stats[0].Dests {
		name := byAddr[ds.Addr]
		// Each request is one connection, so one new flow on the LB.
		if int(ds.Conns) != got[name] {
			t.Errorf("%s: dataplane counted %d new flows, nginx answered %d requests", name, ds.Conns, got[name])
		}
		// SYN, ACK, request, ACKs, FIN: at least 4 client packets per connection.
		if ds.PktsIn < 4*ds.Conns || ds.BytesIn < ds.PktsIn*54 {
			t.Errorf("%s: %d packets / %d bytes for %d connections", name, ds.PktsIn, ds.BytesIn, ds.Conns)
		}
	}
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c["fwd_tx"] != stats[0].PktsIn || c["fwd_no_real"] != 0 {
		t.Errorf("counters %v disagree with %d forwarded packets", c, stats[0].PktsIn)
	}
}
