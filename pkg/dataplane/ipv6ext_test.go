package dataplane

import (
	"encoding/binary"
	"maps"
	"net/netip"
	"testing"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// TestIPv6ExtensionHeadersDR: hop-by-hop, destination-options and routing
// headers (segments left 0) are walked, up to IPV6_MAX_EXT of them, and
// the frame forwarded unchanged but for the MACs; a routing header with
// segments left, more headers, or one that runs past the frame go to the
// kernel.
func TestIPv6ExtensionHeadersDR(t *testing.T) {
	d := newTestDataplane(t, 251, testResolver())
	if err := d.Apply([]lvs.Service{tcpService(svcVIP6, 443, dest(rs6, 443, 1))}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP6, true); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("[2001:db8:1::7]:40000")
	seg := packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP6, 443), packet.ACK|packet.PSH, []byte("GET / HTTP/1.0\r\n\r\n"))
	for _, tc := range []struct {
		name string
		exts []ext6
	}{
		{"hop-by-hop", []ext6{hopByHop(1)}},
		{"destination options, 16 octets", []ext6{destOpts(2)}},
		{"routing, no segments left", []ext6{routingExt(svcVIP6, 0)}},
		{"hop-by-hop, destination options, routing, destination options", []ext6{hopByHop(1), destOpts(1), routingExt(svcVIP6, 0), destOpts(3)}},
		{"hop-by-hop then atomic fragment", []ext6{hopByHop(1), fragExt(0, false, 9)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rs := wantForwarded(t, d, withExt6(seg, tc.exts...)); rs != rs6 {
				t.Errorf("went to %v, want %v", rs, rs6)
			}
		})
	}
	truncated := withExt6(seg, hopByHop(1))
	truncated[packet.EthernetLen+packet.IPv6Len+1] = 200 // 1608 octets claimed
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"routing header with a segment left", withExt6(seg, routingExt(svcVIP6, 1))},
		{"five extension headers", withExt6(seg, hopByHop(1), destOpts(1), destOpts(1), destOpts(1), destOpts(1))},
		{"extension header past the frame", truncated},
	} {
		t.Run(tc.name, func(t *testing.T) { wantPassed(t, d, tc.frame) })
	}
}

// TestIPv6ExtensionHeadersVRRP: an IPv6 advert behind extension headers is
// validated like any other (the VRRP length is the payload less the
// headers); a fragment of an advert (IPv6 or IPv4), or headers longer
// than the payload, is truncated.
func TestIPv6ExtensionHeadersVRRP(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	adv := advertFrame(t, v3adv(53, vip6), peer6, vrrp.Group6, 255, nil)
	adv4 := advertFrame(t, v3adv(51, vip4), peer4, vrrp.Group4, 255, nil)
	short := withExt6(adv, hopByHop(1))
	binary.BigEndian.PutUint16(short[packet.EthernetLen+4:], 4) // payload length 4 < the 8-octet header
	for _, tc := range []struct {
		name    string
		frame   []byte
		counter string
	}{
		{"hop-by-hop (MLD-style router alert)", withExt6(adv, hopByHop(1)), "vrrp_valid"},
		{"hop-by-hop and destination options", withExt6(adv, hopByHop(1), destOpts(2)), "vrrp_valid"},
		{"bad checksum behind hop-by-hop", withExt6(editFrame(adv, func(f []byte) { f[len(f)-1] ^= 1 }), hopByHop(1)), "checksum"},
		{"first fragment of an advert", withExt6(adv, fragExt(0, true, 1)), "truncated"},
		{"IPv4 advert, first fragment (MF)", fragment4(adv4, true, 0, 1), "truncated"},
		{"IPv4 advert, later fragment", fragment4(adv4, false, 3, 1), "truncated"},
		{"headers longer than the payload", short, "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counters(t, d)
			if v, _ := run(t, d, tc.frame); v != xdpDrop {
				t.Errorf("verdict %s, want DROP", verdictNames[v])
			}
			if delta, want := counterDelta(before, counters(t, d)), map[string]uint64{tc.counter: 1}; !maps.Equal(delta, want) {
				t.Errorf("counters changed by %v, want %v", delta, want)
			}
		})
	}
	if p, ok, err := d.Peer(53, 6); err != nil || !ok || p.Src != peer6 {
		t.Errorf("peer state of VRID 53/6 after the adverts behind headers: %+v, %v, %v", p, ok, err)
	}
}
