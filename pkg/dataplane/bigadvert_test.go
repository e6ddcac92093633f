package dataplane

import (
	"context"
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// manyAddrs returns n distinct addresses of family 4 or 6.
func manyAddrs(family uint8, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		if family == 4 {
			out[i] = netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
		} else {
			out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
	}
	return out
}

// TestVRRPManyAddresses checks adverts whose checksummed bytes (message
// plus v3 pseudo-header) exceed the 512 bytes one bpf_csum_diff call
// handles before Linux 6.13: 30 IPv6 addresses (528 bytes), 124 IPv4 in
// v3 (516), the most IPv4 a message carries (255) and the most IPv6 the
// program's bound admits. Each is accepted intact, emitted whole on the
// ring buffer, and dropped as "checksum" with one byte corrupted past the
// first 512 bytes. (TestMaxAddrsIsWhatTheProgramAccepts checks one
// address over the bound is refused.)
func TestVRRPManyAddresses(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	max6 := MaxAddrs(3, 6)
	tests := []struct {
		name     string
		adv      vrrp.Advert
		src, dst netip.Addr
	}{
		{"v3 30 IPv6", v3adv(53, manyAddrs(6, 30)...), peer6, vrrp.Group6},
		{"v3 124 IPv4", v3adv(51, manyAddrs(4, 124)...), peer4, vrrp.Group4},
		{"v2 124 IPv4", v2adv(56, "", time.Second, manyAddrs(4, 124)...), peer4, vrrp.Group4},
		{"v3 255 IPv4", v3adv(51, manyAddrs(4, 255)...), peer4, vrrp.Group4},
		{"v2 255 IPv4 password", v2adv(52, "secret", time.Second, manyAddrs(4, 255)...), peer4, vrrp.Group4},
		{"v3 max IPv6", v3adv(53, manyAddrs(6, max6)...), peer6, vrrp.Group6},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := advertFrame(t, tt.adv, tt.src, tt.dst, 255, nil)
			before := counters(t, d)
			if v, _ := run(t, d, good); v != xdpDrop {
				t.Errorf("verdict %s, want DROP (consumed)", verdictNames[v])
			}
			if delta := counterDelta(before, counters(t, d)); !maps.Equal(delta, map[string]uint64{"vrrp_valid": 1}) {
				t.Fatalf("valid advert: counters changed by %v, want vrrp_valid 1", delta)
			}
			ev, err := d.ReadAdvert(ctx)
			if err != nil {
				t.Fatalf("ReadAdvert: %v", err)
			}
			got, err := vrrp.Decode(ev.Payload, ev.Src, ev.Dst)
			if err != nil {
				t.Fatalf("decode event payload (%d bytes): %v", len(ev.Payload), err)
			}
			if !equalAddrs(got.Addrs, tt.adv.Addrs) {
				t.Errorf("event carries %d addresses, want the %d sent", len(got.Addrs), len(tt.adv.Addrs))
			}

			bad := advertFrame(t, tt.adv, tt.src, tt.dst, 255, func(m []byte) { m[len(m)-1] ^= 0x01 })
			before = counters(t, d)
			if v, _ := run(t, d, bad); v != xdpDrop {
				t.Errorf("corrupted: verdict %s, want DROP", verdictNames[v])
			}
			if delta := counterDelta(before, counters(t, d)); !maps.Equal(delta, map[string]uint64{"checksum": 1}) {
				t.Errorf("corrupted advert: counters changed by %v, want checksum 1", delta)
			}
		})
	}
}
