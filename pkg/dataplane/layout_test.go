package dataplane

import (
	"testing"

	"github.com/xdpvip/xdpvip/pkg/maglev"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// TestCounterNamesCoverTheEnum checks the one table of counter names
// against the generated enum counter: every index of the counters map has
// one distinct name, the drop counters come first in enum order, and each
// is paired with the pkg/vrrp reason one above it (the BPF enum has no
// "none"), covering every reason pkg/vrrp has.
func TestCounterNamesCoverTheEnum(t *testing.T) {
	seen := map[string]xdpvipCounter{}
	for c := xdpvipCounter(0); c < xdpvipCounterCNT_MAX; c++ {
		name, ok := counterNames[c]
		if !ok || name == "" {
			t.Errorf("counter %d has no name", c)
			continue
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("counters %d and %d are both %q", prev, c, name)
		}
		seen[name] = c
	}
	if len(counterNames) != int(xdpvipCounterCNT_MAX) {
		t.Errorf("%d names for %d counters", len(counterNames), xdpvipCounterCNT_MAX)
	}
	if len(dropCounters) != vrrp.NumDropReasons-1 {
		t.Errorf("%d BPF drop counters for %d pkg/vrrp reasons besides none", len(dropCounters), vrrp.NumDropReasons-1)
	}
	for i, d := range dropCounters {
		if d.c != xdpvipCounter(i) || d.reason != vrrp.DropReason(d.c+1) {
			t.Errorf("drop counter %d (%s) is paired with reason %d (%s)", d.c, counterNames[d.c], d.reason, d.reason)
		}
	}
}

// TestLimitsComeFromTheObject checks the Go side's limits against the BPF
// object: the Maglev default is the inner map's declared size, sizes
// above it or not prime are refused, and every IPv4 advert pkg/vrrp can
// marshal (255 addresses, v2 with authentication data) fits the
// program's message bound.
func TestLimitsComeFromTheObject(t *testing.T) {
	spec, err := loadXdpvip()
	if err != nil {
		t.Fatal(err)
	}
	max := spec.Maps[xdpvipMapMaglevTables].InnerMap.MaxEntries
	if max != DefaultTableSize || DefaultTableSize != maglev.DefaultSize {
		t.Errorf("maglev_tables inner size %d, DefaultTableSize %d, maglev.DefaultSize %d: want one value", max, DefaultTableSize, maglev.DefaultSize)
	}
	for _, m := range []uint32{minTableSize, 251, DefaultTableSize} {
		if err := checkTableSize(m, max); err != nil {
			t.Errorf("checkTableSize(%d) = %v", m, err)
		}
	}
	for _, m := range []uint32{0, 2, 65535, 65539} {
		if err := checkTableSize(m, max); err == nil {
			t.Errorf("checkTableSize(%d) accepted", m)
		}
	}
	if n := vrrp.MessageLen(2, true, 255); n > MaxMessageLen {
		t.Errorf("a 255-address v2 advert is %d bytes; the program accepts %d", n, MaxMessageLen)
	}
	if spec.Maps[xdpvipMapScratch].ValueSize != uint32(MaxMessageLen) {
		t.Errorf("scratch buffer %d bytes, message bound %d", spec.Maps[xdpvipMapScratch].ValueSize, MaxMessageLen)
	}
}

// TestMaxAddrsIsWhatTheProgramAccepts checks MaxAddrs against prog.Run:
// an advert with MaxAddrs addresses is accepted, one more is refused as
// addr_count, and ConfigureVRID refuses an expected count above it.
func TestMaxAddrsIsWhatTheProgramAccepts(t *testing.T) {
	if got := [3]int{MaxAddrs(2, 4), MaxAddrs(3, 4), MaxAddrs(3, 6)}; got != [3]int{255, 255, 95} {
		t.Errorf("MaxAddrs v2/4, v3/4, v3/6 = %v, want [255 255 95]", got)
	}
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	max := MaxAddrs(3, 6)
	for n, want := range map[int]string{max: "vrrp_valid", max + 1: "addr_count"} {
		before := counters(t, d)
		run(t, d, advertFrame(t, v3adv(53, manyAddrs(6, n)...), peer6, vrrp.Group6, 255, nil))
		if delta := counterDelta(before, counters(t, d)); len(delta) != 1 || delta[want] != 1 {
			t.Errorf("%d IPv6 addresses: counters changed by %v, want %s 1", n, delta, want)
		}
	}
	if err := d.ConfigureVRID(57, VRIDConfig{Version: 3, Family: 6, AddrCount: uint8(max + 1)}); err == nil {
		t.Errorf("ConfigureVRID accepted an expected count of %d IPv6 addresses", max+1)
	}
	if err := d.ConfigureVRID(57, VRIDConfig{Version: 3, Family: 6, AddrCount: uint8(max)}); err != nil {
		t.Errorf("ConfigureVRID(%d IPv6 addresses) = %v", max, err)
	}
}
