package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// TUN fixtures: real servers in other subnets, reached through a router
// (its MAC is the next hop's), with the route's source address and MTU.
var (
	tunRS4     = netip.MustParseAddr("203.0.113.21")
	tunRS4Far  = netip.MustParseAddr("203.0.113.22") // behind another interface
	tunRS6     = netip.MustParseAddr("2001:db8:2::21")
	tunSrc4    = netip.MustParseAddr("192.0.2.1")
	tunSrc4Far = netip.MustParseAddr("198.51.100.1")
	tunSrc6    = netip.MustParseAddr("2001:db8::1")
	routerMAC  = mustMAC("02:00:00:00:0e:01")
	router2MAC = mustMAC("02:00:00:00:0e:02")
	tunClient4 = netip.MustParseAddrPort("198.51.100.7:40000")
	tunClient6 = netip.MustParseAddrPort("[2001:db8:1::7]:40000")
)

const guePort = 6080

func tunDest(a netip.Addr, port uint16, typ, csum string) lvs.Dest {
	d := lvs.Dest{Addr: a, Port: port, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: typ, Csum: csum}}
	if typ == lvs.TunnelGUE {
		d.Tunnel.Port = guePort
	}
	return d
}

// tunCase is one encapsulation: a TCP service (vip, port) with one TUN
// real server rs.
type tunCase struct {
	name string
	vip  netip.Addr
	port uint16
	rs   netip.Addr
	typ  string // lvs.TunnelIPIP or lvs.TunnelGUE
	csum string
}

var tunCases = []tunCase{
	{"IPIP v4 in v4", svcVIP4, 80, tunRS4, lvs.TunnelIPIP, ""},
	{"IPIP v6 in v6", svcVIP6, 80, tunRS6, lvs.TunnelIPIP, ""},
	{"IPIP v4 in v6", svcVIP4, 81, tunRS6, lvs.TunnelIPIP, ""},
	{"IPIP v6 in v4", svcVIP6, 81, tunRS4, lvs.TunnelIPIP, ""},
	{"GUE v4 in v4 nocsum", svcVIP4, 82, tunRS4, lvs.TunnelGUE, lvs.TunnelNoCsum},
	{"GUE v4 in v4 csum", svcVIP4, 83, tunRS4, lvs.TunnelGUE, lvs.TunnelCsum},
	{"GUE v6 in v6 nocsum", svcVIP6, 82, tunRS6, lvs.TunnelGUE, ""},
	{"GUE v6 in v6 csum", svcVIP6, 83, tunRS6, lvs.TunnelGUE, lvs.TunnelCsum},
	{"GUE v4 in v6 csum", svcVIP4, 84, tunRS6, lvs.TunnelGUE, lvs.TunnelCsum},
	{"GUE v6 in v4 csum", svcVIP6, 84, tunRS4, lvs.TunnelGUE, lvs.TunnelCsum},
	{"GRE v4 in v4", svcVIP4, 85, tunRS4, lvs.TunnelGRE, ""},
	{"GRE v4 in v4 csum", svcVIP4, 86, tunRS4, lvs.TunnelGRE, lvs.TunnelCsum},
	{"GRE v6 in v6 csum", svcVIP6, 85, tunRS6, lvs.TunnelGRE, lvs.TunnelCsum},
	{"GRE v6 in v4", svcVIP6, 86, tunRS4, lvs.TunnelGRE, ""},
	{"GRE v4 in v6 csum", svcVIP4, 87, tunRS6, lvs.TunnelGRE, lvs.TunnelCsum},
}

// overhead is what the encapsulation of c adds.
func (c tunCase) overhead() int {
	n := packet.IPv4Len
	if c.rs.Is6() {
		n = packet.IPv6Len
	}
	switch {
	case c.typ == lvs.TunnelGUE:
		n += packet.UDPLen + 4
	case c.typ == lvs.TunnelGRE && c.csum == lvs.TunnelCsum:
		n += 8
	case c.typ == lvs.TunnelGRE:
		n += 4
	}
	return n
}

func (c tunCase) client() netip.AddrPort {
	if c.vip.Is4() {
		return tunClient4
	}
	return tunClient6
}

func tunResolver(mtu int) fakeResolver {
	r := testResolver()
	r[tunRS4] = fakeNeigh{mac: routerMAC, ifindex: lbIfindex, src: tunSrc4, mtu: mtu}
	r[tunRS6] = fakeNeigh{mac: routerMAC, ifindex: lbIfindex, src: tunSrc6, mtu: mtu}
	r[tunRS4Far] = fakeNeigh{mac: router2MAC, ifindex: farIfindex, src: tunSrc4Far, mtu: mtu}
	return r
}

// tunDataplane has every tunCase's service (and the redirect one,
// svcVIP4:90 to tunRS4Far, and a UDP service for fragments, fragVIP4:53
// and fragVIP6:53), all active, with path MTU mtu to the real servers.
func tunDataplane(t *testing.T, mtu int, links vlanLinks) *Dataplane {
	t.Helper()
	d := newTestDataplane(t, 251, tunResolver(mtu))
	if links != nil {
		d.lvs.links = links
	}
	var svcs []lvs.Service
	for _, c := range tunCases {
		svcs = append(svcs, tcpService(c.vip, c.port, tunDest(c.rs, c.port, c.typ, c.csum)))
	}
	svcs = append(svcs,
		tcpService(svcVIP4, 90, tunDest(tunRS4Far, 90, lvs.TunnelIPIP, "")),
		udpService(fragVIP4, 53, tunDest(tunRS4, 53, lvs.TunnelGUE, lvs.TunnelCsum)),
		udpService(fragVIP6, 53, tunDest(tunRS6, 53, lvs.TunnelIPIP, "")),
	)
	if err := d.Apply(svcs); err != nil {
		t.Fatal(err)
	}
	if u := d.Unresolved(); len(u) != 0 {
		t.Fatalf("unresolved real servers %v", u)
	}
	for _, v := range []netip.Addr{svcVIP4, svcVIP6, fragVIP4, fragVIP6} {
		if err := d.SetVIPActive(v, true); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// withTOSTTL sets the IPv4 TOS (or IPv6 traffic class), the TTL (hop
// limit) and, for IPv4, the identification and DF of an untagged frame,
// keeping its checksums right (none of these is in the L4 pseudo-header).
func withTOSTTL(frame []byte, tos, ttl uint8, id uint16, df bool) []byte {
	b := append([]byte(nil), frame...)
	ip := b[packet.EthernetLen:]
	if ip[0]>>4 == 6 {
		ip[0] = 0x60 | tos>>4
		ip[1] = tos<<4 | ip[1]&0x0f
		ip[7] = ttl
		return b
	}
	ip[1] = tos
	binary.BigEndian.PutUint16(ip[4:6], id)
	ip[6] &^= 0x40
	if df {
		ip[6] |= 0x40
	}
	ip[8] = ttl
	binary.BigEndian.PutUint16(ip[10:12], 0)
	binary.BigEndian.PutUint16(ip[10:12], packet.Checksum(ip[:packet.IPv4Len], 0))
	return b
}

// ipPacket is the IP packet of frame (after l2 bytes), by its header's
// length (without Ethernet padding).
func ipPacket(frame []byte, l2 int) []byte {
	ip := frame[l2:]
	if ip[0]>>4 == 4 {
		return ip[:binary.BigEndian.Uint16(ip[2:4])]
	}
	return ip[:packet.IPv6Len+int(binary.BigEndian.Uint16(ip[4:6]))]
}

// tunWant is what an encapsulated frame must carry.
type tunWant struct {
	c       tunCase
	nextHop net.HardwareAddr
	src     netip.Addr // outer source
	rs      netip.Addr // outer destination
	tags    []byte     // the outer frame's tags (TPID, TCI pairs), nil: untagged
}

// checkTunnel decodes an encapsulated frame field by field against the
// input frame in (its IP packet after inL2 bytes) and returns the GUE
// source port (0 for IP-in-IP).
func checkTunnel(t *testing.T, out, in []byte, inL2 int, w tunWant) uint16 {
	t.Helper()
	inner := ipPacket(in, inL2)
	if len(out) < 14+len(w.tags) {
		t.Fatalf("output of %d bytes", len(out))
	}
	if !bytes.Equal(out[0:6], w.nextHop) || !bytes.Equal(out[6:12], lbMAC) {
		t.Errorf("outer MACs %v -> %v, want %v -> %v", net.HardwareAddr(out[6:12]), net.HardwareAddr(out[0:6]), lbMAC, w.nextHop)
	}
	if !bytes.Equal(out[12:12+len(w.tags)], w.tags) {
		t.Errorf("outer tags % x, want % x", out[12:12+len(w.tags)], w.tags)
	}
	off := 12 + len(w.tags)
	etype := binary.BigEndian.Uint16(out[off:])
	off += 2
	innerProto := uint8(4)
	innerTOS, innerTTL := inner[1], inner[8]
	if inner[0]>>4 == 6 {
		innerProto = 41
		innerTOS, innerTTL = inner[0]<<4|inner[1]>>4, inner[7]
	}
	wantTOS := innerTOS
	if wantTOS&3 == 3 { // CE: the outer header says ECT(0) (INET_ECN_encapsulate)
		wantTOS = wantTOS&^3 | 2
	}
	gue := w.c.typ == lvs.TunnelGUE
	proto := innerProto
	switch w.c.typ {
	case lvs.TunnelGUE:
		proto = packet.ProtoUDP
	case lvs.TunnelGRE:
		proto = 47
	}
	var body []byte // after the outer IP header
	if w.rs.Is4() {
		if etype != packet.EtherTypeIPv4 {
			t.Fatalf("outer EtherType %#04x, want IPv4", etype)
		}
		ip := out[off:]
		tot := int(binary.BigEndian.Uint16(ip[2:4]))
		wantFrag := uint16(0)
		if innerProto == 4 {
			wantFrag = binary.BigEndian.Uint16(inner[6:8]) & 0x4000
		}
		checkFields(t, "outer IPv4", []field{
			{"version/IHL", ip[0], uint8(0x45)},
			{"TOS", ip[1], wantTOS},
			{"total length", tot, len(ip)},
			{"flags/fragment offset", binary.BigEndian.Uint16(ip[6:8]), wantFrag},
			{"TTL", ip[8], innerTTL},
			{"protocol", ip[9], proto},
			{"source", netip.AddrFrom4([4]byte(ip[12:16])), w.src},
			{"destination", netip.AddrFrom4([4]byte(ip[16:20])), w.rs},
		})
		if innerProto == 4 && !bytes.Equal(ip[4:6], inner[4:6]) {
			t.Errorf("outer IPv4 identification % x, want the inner's % x", ip[4:6], inner[4:6])
		}
		if got, want := binary.BigEndian.Uint16(ip[10:12]), checksumWithZero(ip[:20], 10); got != want {
			t.Errorf("outer IPv4 header checksum %#04x, recomputed %#04x", got, want)
		}
		body = ip[20:]
	} else {
		if etype != packet.EtherTypeIPv6 {
			t.Fatalf("outer EtherType %#04x, want IPv6", etype)
		}
		ip := out[off:]
		vtcfl := binary.BigEndian.Uint32(ip[0:4])
		checkFields(t, "outer IPv6", []field{
			{"version", vtcfl >> 28, uint32(6)},
			{"traffic class", uint8(vtcfl >> 20), wantTOS},
			{"flow label", vtcfl & 0xfffff, uint32(0)},
			{"payload length", int(binary.BigEndian.Uint16(ip[4:6])), len(ip) - 40},
			{"next header", ip[6], proto},
			{"hop limit", ip[7], innerTTL},
			{"source", netip.AddrFrom16([16]byte(ip[8:24])), w.src},
			{"destination", netip.AddrFrom16([16]byte(ip[24:40])), w.rs},
		})
		body = ip[40:]
	}
	var sport uint16
	if gue {
		udp := body
		sport = binary.BigEndian.Uint16(udp[0:2])
		if sport < 32768 || sport > 60999 {
			t.Errorf("UDP source port %d outside 32768-60999", sport)
		}
		if dport := binary.BigEndian.Uint16(udp[2:4]); dport != guePort {
			t.Errorf("UDP destination port %d, want %d", dport, guePort)
		}
		if l := int(binary.BigEndian.Uint16(udp[4:6])); l != len(udp) {
			t.Errorf("UDP length %d, %d bytes there", l, len(udp))
		}
		sum := binary.BigEndian.Uint16(udp[6:8])
		if w.c.csum == lvs.TunnelCsum {
			if sum == 0 || packet.Checksum(udp, packet.PseudoHeaderSum(w.src, w.rs, packet.ProtoUDP, len(udp))) != 0 {
				t.Errorf("UDP checksum %#04x does not verify", sum)
			}
		} else if sum != 0 {
			t.Errorf("UDP checksum %#04x, want 0 (nocsum)", sum)
		}
		if gh := udp[8:12]; !bytes.Equal(gh, []byte{0, innerProto, 0, 0}) {
			t.Errorf("GUE header % x, want 00 %02x 00 00", gh, innerProto)
		}
		body = udp[12:]
	}
	if w.c.typ == lvs.TunnelGRE {
		gre := body
		innerType := packet.EtherTypeIPv4
		if innerProto == 41 {
			innerType = packet.EtherTypeIPv6
		}
		flags, hlen := uint16(0), 4
		if w.c.csum == lvs.TunnelCsum {
			flags, hlen = 0x8000, 8
			if packet.Checksum(gre, 0) != 0 || binary.BigEndian.Uint16(gre[6:8]) != 0 {
				t.Errorf("GRE checksum %#04x does not verify (or reserved % x is not zero)", binary.BigEndian.Uint16(gre[4:6]), gre[6:8])
			}
		}
		checkFields(t, "GRE", []field{
			{"flags and version", binary.BigEndian.Uint16(gre[0:2]), flags},
			{"protocol", binary.BigEndian.Uint16(gre[2:4]), innerType},
		})
		body = gre[hlen:]
	}
	if !bytes.Equal(body, inner) {
		t.Errorf("inner packet differs from the input's IP packet\n got % x\nwant % x", body[:min(len(body), 60)], inner[:min(len(inner), 60)])
	}
	return sport
}

// field is one decoded header field and the value it must have.
type field struct {
	name      string
	got, want any
}

func checkFields(t *testing.T, what string, fields []field) {
	t.Helper()
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("%s %s %v, want %v", what, f.name, f.got, f.want)
		}
	}
}

// checksumWithZero is the Internet checksum of hdr with the checksum
// field at off taken as zero.
func checksumWithZero(hdr []byte, off int) uint16 {
	b := append([]byte(nil), hdr...)
	b[off], b[off+1] = 0, 0
	return packet.Checksum(b, 0)
}

// runCounted runs in and checks the verdict and that the counters
// changed by exactly want.
func runCounted(t *testing.T, d *Dataplane, in []byte, verdict uint32, want map[string]uint64) []byte {
	t.Helper()
	before := counters(t, d)
	opts := runOpts(in)
	v, err := d.objs.XdpVip.Run(&opts)
	if err != nil {
		t.Fatal(err)
	}
	if v != verdict {
		t.Fatalf("verdict %s, want %s", verdictNames[v], verdictNames[verdict])
	}
	if delta := counterDelta(before, counters(t, d)); fmt.Sprint(delta) != fmt.Sprint(want) {
		t.Errorf("counters changed by %v, want %v", delta, want)
	}
	return opts.DataOut
}

// TestTunnelFixtures: every encapsulation (IP-in-IP, GUE and GRE, each
// family in each, GUE and GRE with and without checksum) decoded field by
// field, for
// TCP with an odd payload (CE marked: the outer header says ECT(0)) and
// for a padded UDP frame (ECT(1), no DF); the GUE source port is the
// flow's.
func TestTunnelFixtures(t *testing.T) {
	d := tunDataplane(t, 1500, nil)
	for _, c := range tunCases {
		t.Run(c.name, func(t *testing.T) {
			src := tunSrc4
			if c.rs.Is6() {
				src = tunSrc6
			}
			w := tunWant{c: c, nextHop: routerMAC, src: src, rs: c.rs}
			tcp := withTOSTTL(packet.TCPFrame(lbMAC, clientMAC, c.client(), netip.AddrPortFrom(c.vip, c.port), packet.ACK|packet.PSH, []byte("GET /odd HTTP/1.0\r\nHost: x\r\n\r\n!")), 0xbb, 57, 0x1234, true)
			out := runCounted(t, d, tcp, xdpTX, map[string]uint64{"fwd_tx": 1})
			sport := checkTunnel(t, out, tcp, 14, w)
			again := runCounted(t, d, tcp, xdpTX, map[string]uint64{"fwd_tx": 1})
			if s2 := checkTunnel(t, again, tcp, 14, w); s2 != sport {
				t.Errorf("the same flow got UDP source ports %d and %d", sport, s2)
			}
			// A small UDP frame with Ethernet padding: the padding is not
			// encapsulated. (UDP to a TCP service: passed; to the frag
			// service of the family: encapsulated by its own real server.)
			if c.typ == lvs.TunnelGUE {
				ports := map[uint16]bool{}
				for i := range 8 {
					cl := netip.AddrPortFrom(c.client().Addr(), uint16(41000+i))
					syn := packet.TCPFrame(lbMAC, clientMAC, cl, netip.AddrPortFrom(c.vip, c.port), packet.SYN, nil)
					ports[checkTunnel(t, runCounted(t, d, syn, xdpTX, map[string]uint64{"fwd_tx": 1}), syn, 14, w)] = true
				}
				if len(ports) < 2 {
					t.Errorf("8 flows got UDP source ports %v: not a flow hash", ports)
				}
			}
		})
	}
}

// TestTunnelPaddingAndNoDF: a short UDP frame carrying Ethernet padding
// (ECT(1), no DF) is encapsulated without the padding, DF clear outside.
func TestTunnelPaddingAndNoDF(t *testing.T) {
	d := tunDataplane(t, 1500, nil)
	for _, tc := range []struct {
		vip netip.Addr
		rs  netip.Addr
		src netip.Addr
		c   tunCase
	}{
		{fragVIP4, tunRS4, tunSrc4, tunCase{typ: lvs.TunnelGUE, csum: lvs.TunnelCsum}},
		{fragVIP6, tunRS6, tunSrc6, tunCase{typ: lvs.TunnelIPIP}},
	} {
		cl := tunClient4
		if tc.vip.Is6() {
			cl = tunClient6
		}
		udp := withTOSTTL(packet.UDPFrame(lbMAC, clientMAC, cl, netip.AddrPortFrom(tc.vip, 53), []byte("q")), 0x29, 200, 0x4321, false)
		padded := append(append([]byte(nil), udp...), make([]byte, 60-len(udp)+4)...)
		out := runCounted(t, d, padded, xdpTX, map[string]uint64{"fwd_tx": 1})
		checkTunnel(t, out, padded, 14, tunWant{c: tc.c, nextHop: routerMAC, src: tc.src, rs: tc.rs})
	}
}

// tcpOfLen is a TCP frame to c's service whose IP packet is ipLen bytes.
func tcpOfLen(c tunCase, ipLen int) []byte {
	hdr := packet.IPv4Len + packet.TCPLen
	if c.vip.Is6() {
		hdr = packet.IPv6Len + packet.TCPLen
	}
	payload := bytes.Repeat([]byte{0x61}, ipLen-hdr)
	return packet.TCPFrame(lbMAC, clientMAC, c.client(), netip.AddrPortFrom(c.vip, c.port), packet.ACK, payload)
}

// checkTooBig decodes the ICMP "fragmentation needed" or ICMPv6 Packet
// Too Big the program answered in with (in's IP packet after inL2 bytes,
// from client to vip): the frame back to the client, its tags kept, from
// the VIP, quoting the packet's start, every checksum verified.
func checkTooBig(t *testing.T, out, in []byte, inL2 int, client, vip netip.Addr, limit int) {
	t.Helper()
	inner := ipPacket(in, inL2)
	if !bytes.Equal(out[0:6], in[6:12]) || !bytes.Equal(out[6:12], in[0:6]) {
		t.Errorf("MACs %v -> %v, want the input's swapped", net.HardwareAddr(out[6:12]), net.HardwareAddr(out[0:6]))
	}
	if !bytes.Equal(out[12:inL2], in[12:inL2]) {
		t.Errorf("tags and EtherType % x, want the input's % x", out[12:inL2], in[12:inL2])
	}
	ip := out[inL2:]
	if client.Is4() {
		tot := int(binary.BigEndian.Uint16(ip[2:4]))
		checkFields(t, "ICMP's IPv4", []field{
			{"version/IHL", ip[0], uint8(0x45)},
			{"TOS", ip[1], uint8(0xc0)},
			{"total length", tot, len(ip)},
			{"flags/fragment offset", binary.BigEndian.Uint16(ip[6:8]), uint16(0x4000)},
			{"TTL", ip[8], uint8(64)},
			{"protocol", ip[9], uint8(1)},
			{"header checksum", binary.BigEndian.Uint16(ip[10:12]), checksumWithZero(ip[:20], 10)},
			{"source", netip.AddrFrom4([4]byte(ip[12:16])), vip},
			{"destination", netip.AddrFrom4([4]byte(ip[16:20])), client},
		})
		icmp := ip[20:]
		checkFields(t, "ICMP", []field{
			{"type", icmp[0], uint8(3)},
			{"code", icmp[1], uint8(4)},
			{"checksum verifies", packet.Checksum(icmp, 0), uint16(0)},
			{"unused", binary.BigEndian.Uint16(icmp[4:6]), uint16(0)},
			{"next-hop MTU", int(binary.BigEndian.Uint16(icmp[6:8])), limit},
			{"quote", string(icmp[8:]), string(inner[:min(len(inner), 548)])},
		})
		return
	}
	vtcfl := binary.BigEndian.Uint32(ip[0:4])
	checkFields(t, "ICMPv6's IPv6", []field{
		{"version/class/flow", vtcfl, uint32(6 << 28)},
		{"payload length", int(binary.BigEndian.Uint16(ip[4:6])), len(ip) - 40},
		{"next header", ip[6], uint8(58)},
		{"hop limit", ip[7], uint8(64)},
		{"source", netip.AddrFrom16([16]byte(ip[8:24])), vip},
		{"destination", netip.AddrFrom16([16]byte(ip[24:40])), client},
	})
	icmp := ip[40:]
	checkFields(t, "ICMPv6", []field{
		{"type", icmp[0], uint8(2)},
		{"code", icmp[1], uint8(0)},
		{"checksum verifies", packet.Checksum(icmp, packet.PseudoHeaderSum(vip, client, 58, len(icmp))), uint16(0)},
		{"MTU", int(binary.BigEndian.Uint32(icmp[4:8])), limit},
		{"quote", string(icmp[8:]), string(inner[:min(len(inner), 1232)])},
	})
}

// TestTunnelTooBig: with a 1400-byte path MTU, a packet of exactly the
// room the tunnel leaves is encapsulated into a 1400-byte packet; one
// byte more is answered with ICMP (IPv4 with DF) or ICMPv6 (IPv6), naming
// the room as the MTU, for every encapsulation; IPv4 without DF and a
// later IPv6 fragment are dropped; a tagged frame's answer keeps its tag.
func TestTunnelTooBig(t *testing.T) {
	const mtu = 1400
	d := tunDataplane(t, mtu, nil)
	for _, c := range tunCases {
		t.Run(c.name, func(t *testing.T) {
			limit := mtu - c.overhead()
			src := tunSrc4
			if c.rs.Is6() {
				src = tunSrc6
			}
			fits := tcpOfLen(c, limit)
			out := runCounted(t, d, fits, xdpTX, map[string]uint64{"fwd_tx": 1})
			checkTunnel(t, out, fits, 14, tunWant{c: c, nextHop: routerMAC, src: src, rs: c.rs})
			if len(out)-14 != mtu {
				t.Errorf("encapsulated packet of %d bytes, want the MTU %d", len(out)-14, mtu)
			}
			big := tcpOfLen(c, limit+1)
			counter := "tun_icmp4_too_big"
			if c.vip.Is6() {
				counter = "tun_icmp6_too_big"
			}
			out = runCounted(t, d, big, xdpTX, map[string]uint64{counter: 1})
			checkTooBig(t, out, big, 14, c.client().Addr(), c.vip, limit)
			tagged := vlanTagged(big, 0x8100, 100)
			out = runCounted(t, d, tagged, xdpTX, map[string]uint64{counter: 1})
			checkTooBig(t, out, tagged, 18, c.client().Addr(), c.vip, limit)
			if c.vip.Is4() {
				noDF := withTOSTTL(big, 0, 64, 7, false)
				runCounted(t, d, noDF, xdpDrop, map[string]uint64{"tun_too_big_drop": 1})
			}
		})
	}
	// IPv6 fragments to fragVIP6 (IP-in-IP over IPv6: 1360 bytes of room):
	// the first fragment gets an ICMPv6, a later one is dropped.
	whole := packet.UDPFrame(lbMAC, clientMAC, tunClient6, netip.AddrPortFrom(fragVIP6, 53), make([]byte, 1400))
	first := withExt6(whole, fragExt(0, true, 9))
	out := runCounted(t, d, first, xdpTX, map[string]uint64{"tun_icmp6_too_big": 1})
	checkTooBig(t, out, first, 14, tunClient6.Addr(), fragVIP6, mtu-40)
	runCounted(t, d, withExt6(whole, fragExt(100, true, 9)), xdpDrop, map[string]uint64{"tun_too_big_drop": 1})
	// An IPv4 fragment has no DF: dropped.
	whole4 := packet.UDPFrame(lbMAC, clientMAC, tunClient4, netip.AddrPortFrom(fragVIP4, 53), make([]byte, 1400))
	runCounted(t, d, fragment4(whole4, true, 0, 3), xdpDrop, map[string]uint64{"tun_too_big_drop": 1})
}

// TestTunnelVLANs: the outer frame is tagged as the real server's next
// hop is reached: on a VLAN of this interface one C-tag of that VID
// (pushed, or replacing the frame's tags, the outer tag's priority kept),
// on the interface itself untagged; without VLAN information the frame's
// tags are kept.
func TestTunnelVLANs(t *testing.T) {
	c4, c6 := tunCases[0], tunCases[1] // IPIP v4 in v4 (tunRS4), v6 in v6 (tunRS6)
	tcp := func(c tunCase) []byte {
		return packet.TCPFrame(lbMAC, clientMAC, c.client(), netip.AddrPortFrom(c.vip, c.port), packet.ACK, []byte("x"))
	}
	tag := func(tpid, tci uint16) []byte {
		return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tpid), tci)
	}
	const prio5 = 5 << 13
	t.Run("real servers' next hops on VLAN 100 and untagged", func(t *testing.T) {
		res := tunResolver(1500)
		n := res[tunRS4]
		n.ifindex = vlan100Ifindex
		res[tunRS4] = n
		d := newTestDataplane(t, 251, res)
		d.lvs.links = fakeVLANs{vlan100Ifindex: {lbIfindex, 100}}
		if err := d.Apply([]lvs.Service{
			tcpService(c4.vip, c4.port, tunDest(c4.rs, c4.port, c4.typ, c4.csum)),
			tcpService(c6.vip, c6.port, tunDest(c6.rs, c6.port, c6.typ, c6.csum)),
		}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []netip.Addr{svcVIP4, svcVIP6} {
			if err := d.SetVIPActive(v, true); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name string
			c    tunCase
			in   []byte
			l2   int
			tags []byte
		}{
			{"untagged: tag 100 pushed", c4, tcp(c4), 14, tag(0x8100, 100)},
			{"VLAN 7 priority 5: VID 100, priority kept", c4, withTCI(vlanTagged(tcp(c4), 0x8100, 7), 0, prio5|7), 18, tag(0x8100, prio5|100)},
			{"QinQ: one tag 100", c4, withTCI(vlanTagged(tcp(c4), 0x88a8, 10, 7), 0, prio5|10), 22, tag(0x8100, prio5|100)},
			{"VLAN 100 to an untagged next hop: popped", c6, vlanTagged(tcp(c6), 0x8100, 100), 18, nil},
			{"QinQ to an untagged next hop: both popped", c6, vlanTagged(tcp(c6), 0x88a8, 10, 100), 22, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				src := tunSrc4
				if tc.c.rs.Is6() {
					src = tunSrc6
				}
				out := runCounted(t, d, tc.in, xdpTX, map[string]uint64{"fwd_tx": 1})
				checkTunnel(t, out, tc.in, tc.l2, tunWant{c: tc.c, nextHop: routerMAC, src: src, rs: tc.c.rs, tags: tc.tags})
			})
		}
	})
	t.Run("without VLAN information: tags kept", func(t *testing.T) {
		d := tunDataplane(t, 1500, nil)
		for _, tc := range []struct {
			name string
			in   []byte
			l2   int
		}{
			{"one tag", withTCI(vlanTagged(tcp(c4), 0x8100, 7), 0, prio5|7), 18},
			{"QinQ", vlanTagged(tcp(c4), 0x88a8, 10, 7), 22},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out := runCounted(t, d, tc.in, xdpTX, map[string]uint64{"fwd_tx": 1})
				checkTunnel(t, out, tc.in, tc.l2, tunWant{c: c4, nextHop: routerMAC, src: tunSrc4, rs: tunRS4, tags: tc.in[12 : tc.l2-2]})
			})
		}
	})
}

// TestTunnelFragmentsAndRedirect: every fragment of a datagram, IPv4 (to
// a GUE csum real server) and IPv6 (IP-in-IP), is encapsulated whole to
// the VIP's one real server; a real server whose next hop is behind
// another interface is redirected there.
func TestTunnelFragmentsAndRedirect(t *testing.T) {
	d := tunDataplane(t, 1500, nil)
	payload := bytes.Repeat([]byte{0x5a}, 200)
	whole4 := packet.UDPFrame(lbMAC, clientMAC, tunClient4, netip.AddrPortFrom(fragVIP4, 53), payload)
	whole6 := packet.UDPFrame(lbMAC, clientMAC, tunClient6, netip.AddrPortFrom(fragVIP6, 53), payload)
	gue := tunWant{c: tunCase{typ: lvs.TunnelGUE, csum: lvs.TunnelCsum}, nextHop: routerMAC, src: tunSrc4, rs: tunRS4}
	ipip6 := tunWant{c: tunCase{typ: lvs.TunnelIPIP}, nextHop: routerMAC, src: tunSrc6, rs: tunRS6}
	for _, tc := range []struct {
		name string
		in   []byte
		w    tunWant
	}{
		{"IPv4 first", fragment4(whole4, true, 0, 11), gue},
		{"IPv4 middle", fragment4(whole4, true, 9, 11), gue},
		{"IPv4 last", fragment4(whole4, false, 18, 11), gue},
		{"IPv6 first", withExt6(whole6, fragExt(0, true, 12)), ipip6},
		{"IPv6 later", withExt6(whole6, fragExt(9, false, 12)), ipip6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runCounted(t, d, tc.in, xdpTX, map[string]uint64{"fwd_tx": 1})
			checkTunnel(t, out, tc.in, 14, tc.w)
		})
	}
	t.Run("next hop behind another interface", func(t *testing.T) {
		in := packet.TCPFrame(lbMAC, clientMAC, tunClient4, netip.AddrPortFrom(svcVIP4, 90), packet.SYN, nil)
		out := runCounted(t, d, in, xdpRedirect, map[string]uint64{"fwd_redirect": 1})
		checkTunnel(t, out, in, 14, tunWant{c: tunCase{typ: lvs.TunnelIPIP}, nextHop: router2MAC, src: tunSrc4Far, rs: tunRS4Far})
	})
}

// TestTunnelApply: what Apply writes for TUN real servers (type, port in
// network order, checksum flag, source, MTU, the next hop's MAC), which
// ones it skips (NAT, remcsum, GUE without a port) and which it
// keeps out of the table until they resolve (no route, no source of the
// real server's family, a path MTU that leaves IPv6 less than 1280 bytes).
func TestTunnelApply(t *testing.T) {
	noRoute := netip.MustParseAddr("203.0.113.99")
	narrow6 := netip.MustParseAddr("2001:db8:3::1") // MTU 1300 over IPv6: 1260 for IPv6 inside
	res := tunResolver(1500)
	res[noRoute] = fakeNeigh{mac: routerMAC, ifindex: lbIfindex} // no source: no route
	res[narrow6] = fakeNeigh{mac: routerMAC, ifindex: lbIfindex, src: tunSrc6, mtu: 1300}
	d := newTestDataplane(t, 251, res)
	gre := tunDest(tunRS4, 85, lvs.TunnelGRE, lvs.TunnelCsum)
	remcsum := tunDest(tunRS4, 86, lvs.TunnelGUE, lvs.TunnelRemCsum)
	noPort := tunDest(tunRS4, 87, lvs.TunnelGUE, "")
	noPort.Tunnel.Port = 0
	nat := lvs.Dest{Addr: rs2, Port: 88, Weight: 1, Method: "NAT"}
	svcs := []lvs.Service{
		tcpService(svcVIP4, 80, tunDest(tunRS4, 80, lvs.TunnelGUE, lvs.TunnelCsum), tunDest(tunRS6, 80, "", ""), gre, remcsum, noPort, nat, tunDest(noRoute, 80, "", "")),
		tcpService(svcVIP6, 80, tunDest(narrow6, 80, "", ""), tunDest(tunRS4, 80, "", "")),
		tcpService(svcVIP4, 81, tunDest(narrow6, 81, "", "")), // IPv4 inside: 1260 is plenty
	}
	if err := d.Apply(svcs); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(d.Unresolved()), fmt.Sprint([]netip.Addr{noRoute, narrow6}); got != want {
		t.Errorf("Unresolved() = %s, want %s", got, want)
	}
	e := d.lvs.services[svcIdent{proto: lvs.ProtoTCP, addr: svcVIP4, port: 80}]
	if len(e.reals) != 4 {
		t.Errorf("service has real servers %v, want the GUE, IP-in-IP, GRE and unroutable ones (remcsum, GUE without a port, NAT skipped)", e.reals)
	}
	var r xdpvipReal
	if err := d.objs.Reals.Lookup(e.reals[netip.AddrPortFrom(tunRS4, 80)], &r); err != nil {
		t.Fatal(err)
	}
	want := xdpvipReal{Mac: [6]byte(routerMAC), Flags: realValid | realTunCsum, Family: 4, Ifindex: lbIfindex, SvcId: e.id,
		Addr: addr16(tunRS4), Port: 80, TunType: tunGUE, TunPort: htons(guePort), TunSrc: addr16(tunSrc4), Mtu: 1500}
	if r != want {
		t.Errorf("GUE real server entry\n got %+v\nwant %+v", r, want)
	}
	if err := d.objs.Reals.Lookup(e.reals[netip.AddrPortFrom(noRoute, 80)], &r); err != nil || r.Flags&realValid != 0 {
		t.Errorf("unroutable real server entry %+v, %v: want not valid", r, err)
	}
	// A route appears: the refresh puts it in the table.
	res[noRoute] = fakeNeigh{mac: routerMAC, ifindex: lbIfindex, src: tunSrc4, mtu: 1500}
	d.refreshNeighbours()
	if got, want := fmt.Sprint(d.Unresolved()), fmt.Sprint([]netip.Addr{narrow6}); got != want {
		t.Errorf("after the route appeared, Unresolved() = %s, want %s", got, want)
	}
	// Direct routing still needs the service's family.
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs6, 80, 1))}); err == nil {
		t.Error("Apply accepted an IPv6 DR real server of an IPv4 service")
	}
}

// TestTunnelBadHeaders: an IP header claiming more than the frame holds,
// or a version that is not the EtherType's, is left to the kernel:
// neither encapsulated nor answered.
func TestTunnelBadHeaders(t *testing.T) {
	d := tunDataplane(t, 1400, nil)
	c4, c6 := tunCases[0], tunCases[1]
	long4 := tcpOfLen(c4, 200)
	binary.BigEndian.PutUint16(long4[14+2:], 1500) // more than the frame, and too big for the path
	long6 := tcpOfLen(c6, 200)
	binary.BigEndian.PutUint16(long6[14+4:], 0xffff)
	v2 := tcpOfLen(c4, 200)
	v2[14] = 0x25
	for name, in := range map[string][]byte{"IPv4 total length past the frame": long4, "IPv6 payload length 0xffff": long6} {
		t.Run(name, func(t *testing.T) {
			out := runCounted(t, d, in, xdpPass, map[string]uint64{"fwd_no_real": 1})
			if !bytes.Equal(out, in) {
				t.Errorf("passed frame changed")
			}
		})
	}
	if out := runCounted(t, d, v2, xdpPass, map[string]uint64{}); !bytes.Equal(out, v2) {
		t.Errorf("IP version 2 frame changed")
	}
}
