package bgp

import (
	"net/netip"
	"slices"
	"testing"
)

func TestDecide(t *testing.T) {
	ready := Inputs{Mode: ModeECMP, Attached: true, Quorum: true}
	master := Inputs{Mode: ModeVRRP, Attached: true, Quorum: true, InstanceRunning: true, Master: true}
	with := func(in Inputs, f func(*Inputs)) Inputs { f(&in); return in }
	for _, tc := range []struct {
		name     string
		in       Inputs
		announce bool
		reason   string
		forward  bool
	}{
		{"ecmp ready", ready, true, "", true},
		{"ecmp draining", with(ready, func(i *Inputs) { i.Draining = true }), false, ReasonDraining, true},
		{"ecmp detached", with(ready, func(i *Inputs) { i.Attached = false }), false, ReasonDetached, false},
		{"ecmp no quorum", with(ready, func(i *Inputs) { i.Quorum = false }), false, ReasonNoQuorum, false},
		{"ecmp ignores VRRP", with(ready, func(i *Inputs) { i.Master = false; i.InstanceRunning = false }), true, "", true},
		{"draining wins over everything", Inputs{Mode: ModeECMP, Draining: true}, false, ReasonDraining, false},
		{"detached before quorum", Inputs{Mode: ModeECMP}, false, ReasonDetached, false},
		{"vrrp master", master, true, "", false},
		{"vrrp backup", with(master, func(i *Inputs) { i.Master = false }), false, ReasonNotMaster, false},
		{"vrrp instance gone", with(master, func(i *Inputs) { i.InstanceRunning = false; i.Master = false }), false, ReasonNoInstance, false},
		{"vrrp master without quorum", with(master, func(i *Inputs) { i.Quorum = false }), false, ReasonNoQuorum, false},
		{"vrrp master draining", with(master, func(i *Inputs) { i.Draining = true }), false, ReasonDraining, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, r := Decide(tc.in)
			if a != tc.announce || r != tc.reason {
				t.Errorf("Decide(%+v) = %v, %q; want %v, %q", tc.in, a, r, tc.announce, tc.reason)
			}
			if f := Forward(tc.in); f != tc.forward {
				t.Errorf("Forward(%+v) = %v, want %v", tc.in, f, tc.forward)
			}
		})
	}
}

func TestHostPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.78.9.1": "10.78.9.1/32", "::ffff:10.0.0.1": "10.0.0.1/32", "2001:db8::9": "2001:db8::9/128",
	} {
		if got := HostPrefix(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("HostPrefix(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestDiff(t *testing.T) {
	p := netip.MustParsePrefix
	set := func(ps ...string) map[netip.Prefix]bool {
		m := map[netip.Prefix]bool{}
		for _, s := range ps {
			m[p(s)] = true
		}
		return m
	}
	ann, wd := Diff(set("10.0.0.1/32", "10.0.0.2/32"), set("10.0.0.3/32", "10.0.0.2/32", "2001:db8::1/128", "10.0.0.0/32"))
	if want := []netip.Prefix{p("10.0.0.0/32"), p("10.0.0.3/32"), p("2001:db8::1/128")}; !slices.Equal(ann, want) {
		t.Errorf("announce %v, want %v", ann, want)
	}
	if want := []netip.Prefix{p("10.0.0.1/32")}; !slices.Equal(wd, want) {
		t.Errorf("withdraw %v, want %v", wd, want)
	}
	if a, w := Diff(set("10.0.0.1/32"), set("10.0.0.1/32")); a != nil || w != nil {
		t.Errorf("equal sets: %v %v", a, w)
	}
}
