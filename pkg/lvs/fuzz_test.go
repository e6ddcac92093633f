package lvs_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/lvs/lvstest"
)

// FuzzManagerOps drives a Manager with a random sequence of health and
// weight changes (each op is 2 bytes: real server + op, value) and checks
// the model's invariants after every step.
func FuzzManagerOps(f *testing.F) {
	f.Add(uint8(2), uint8(1), true, false, []byte{0, 0, 1, 0, 2, 0, 0, 1, 1, 1, 2, 1})
	f.Add(uint8(1), uint8(0), false, true, []byte{0x10, 5, 0x11, 0, 0, 0, 0x12, 9})
	f.Fuzz(func(t *testing.T, quorum, hyst uint8, inhibit, sorryInhibit bool, ops []byte) {
		keys := []lvs.RealServerKey{rs1, rs2, rs3}
		vs := lvs.VirtualServer{
			Key: vip, Method: "DR", Quorum: int(quorum%8) + 1, Hysteresis: int(hyst % 4), InhibitOnFailure: inhibit,
			Sorry: &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port, Inhibit: sorryInhibit},
			RealServers: []lvs.RealServer{
				{Addr: rs1.Addr, Weight: 1}, {Addr: rs2.Addr, Weight: 2}, {Addr: rs3.Addr, Weight: 3},
			},
		}
		b := &lvstest.Backend{}
		m := lvs.NewManager(b, lvs.ManagerOptions{})
		if err := m.Configure([]lvs.VirtualServer{vs}); err != nil {
			t.Fatal(err)
		}
		up := []bool{true, true, true}
		w := []int{1, 2, 3}
		for i := 0; i+1 < len(ops); i += 2 {
			k := int(ops[i]&0x0f) % 3
			var err error
			if ops[i]&0x10 != 0 {
				w[k] = int(ops[i+1] % 10)
				err = m.SetWeight(vip, keys[k], w[k])
			} else {
				up[k] = ops[i+1]&1 == 0
				err = m.SetHealth(vip, keys[k], up[k])
			}
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, m, b, vs, up, w)
		}
	})
}

func checkInvariants(t *testing.T, m *lvs.Manager, b *lvstest.Backend, vs lvs.VirtualServer, up []bool, w []int) {
	t.Helper()
	views := m.Views(nil)
	if len(views) != 1 {
		t.Fatalf("%d views", len(views))
	}
	v := views[0]
	live := 0
	for i := range up {
		if up[i] {
			live += w[i]
		}
	}
	if v.LiveWeight != live {
		t.Fatalf("live weight %d, want %d", v.LiveWeight, live)
	}
	q, h := vs.Quorum, vs.Hysteresis
	if live >= q+h && !v.QuorumUp {
		t.Fatalf("live %d >= %d+%d but quorum down", live, q, h)
	}
	if (live == 0 || live < q-h) && v.QuorumUp {
		t.Fatalf("live %d < %d-%d but quorum up", live, q, h)
	}
	if v.SorryInUse != !v.QuorumUp {
		t.Fatalf("sorry in use %v with quorum up %v", v.SorryInUse, v.QuorumUp)
	}
	got := m.Services()
	last, _ := b.Last()
	if fmt.Sprint(got) != fmt.Sprint(last) {
		t.Fatalf("backend holds %v, manager wants %v", last, got)
	}
	dests := got[0].Dests
	if !slices.IsSortedFunc(dests, func(a, b lvs.Dest) int { return a.Addr.Compare(b.Addr) }) {
		t.Fatalf("dests not sorted: %v", dests)
	}
	weightOf := map[netip.Addr]int{}
	for _, d := range dests {
		weightOf[d.Addr] = d.Weight
	}
	for i, a := range []netip.Addr{rs1.Addr, rs2.Addr, rs3.Addr} {
		wt, listed := weightOf[a]
		switch {
		case v.SorryInUse && up[i] && listed:
			t.Fatalf("%s live but listed while the sorry server is in use", a)
		case !v.SorryInUse && up[i] && (!listed || wt != w[i]):
			t.Fatalf("%s live: listed %v weight %d, want %d", a, listed, wt, w[i])
		case !up[i] && vs.InhibitOnFailure && (!listed || wt != 0):
			t.Fatalf("%s down+inhibit: listed %v weight %d", a, listed, wt)
		case !up[i] && !vs.InhibitOnFailure && listed:
			t.Fatalf("%s down but listed", a)
		}
	}
	sw, sListed := weightOf[sorry.Addr]
	switch {
	case v.SorryInUse && (!sListed || sw != 1):
		t.Fatalf("sorry server in use: listed %v weight %d", sListed, sw)
	case !v.SorryInUse && vs.Sorry.Inhibit && (!sListed || sw != 0):
		t.Fatalf("idle inhibited sorry server: listed %v weight %d", sListed, sw)
	case !v.SorryInUse && !vs.Sorry.Inhibit && sListed:
		t.Fatal("sorry server listed while not in use")
	}
}
