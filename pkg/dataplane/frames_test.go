package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/xdpvip/xdpvip/internal/packet"
)

// Frame kinds the plain builders of internal/packet do not make, for the
// fixtures: IPv4 fragments, IPv6 extension headers, VLAN tags; and
// checkFrame, which decodes a frame and verifies every checksum in it.

// fragment4 turns an unfragmented IPv4 frame into one fragment of a
// datagram: mf sets More Fragments, offset8 is the offset in 8-octet
// units. A fragment with a non-zero offset carries no L4 header: its
// payload is overwritten with filler (which a port parser would misread).
func fragment4(frame []byte, mf bool, offset8, id uint16) []byte {
	b := append([]byte(nil), frame...)
	ip := b[packet.EthernetLen:]
	v := offset8 & 0x1fff
	if mf {
		v |= 0x2000
	}
	binary.BigEndian.PutUint16(ip[4:6], id)
	binary.BigEndian.PutUint16(ip[6:8], v)
	if offset8 != 0 {
		for i := packet.IPv4Len; i < len(ip); i++ {
			ip[i] = byte(0xa0 + i)
		}
	}
	binary.BigEndian.PutUint16(ip[10:12], 0)
	binary.BigEndian.PutUint16(ip[10:12], packet.Checksum(ip[:packet.IPv4Len], 0))
	return b
}

// ext6 is one IPv6 extension header: its type and its bytes (the first,
// the next-header octet, is filled in by withExt6).
type ext6 struct {
	typ  uint8
	body []byte
}

// optsExt is a hop-by-hop or destination-options header of units*8 octets
// padded with one PadN option.
func optsExt(typ uint8, units int) ext6 {
	b := make([]byte, units*8)
	b[1] = byte(units - 1)
	b[2] = 1 // PadN
	b[3] = byte(len(b) - 4)
	return ext6{typ: typ, body: b}
}

func hopByHop(units int) ext6 { return optsExt(0, units) }
func destOpts(units int) ext6 { return optsExt(60, units) }

// routingExt is a segment routing header (type 4) listing final as its
// one segment, with segLeft segments left.
func routingExt(final netip.Addr, segLeft uint8) ext6 {
	b := make([]byte, 8+16)
	b[1] = 2 // (24 - 8) / 8
	b[2] = 4 // segment routing
	b[3] = segLeft
	a := final.As16()
	copy(b[8:], a[:])
	return ext6{typ: 43, body: b}
}

// fragExt is a fragment header: offset in 8-octet units, m = more.
func fragExt(offset8 uint16, m bool, id uint32) ext6 {
	b := make([]byte, 8)
	v := offset8 << 3
	if m {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:4], v)
	binary.BigEndian.PutUint32(b[4:8], id)
	return ext6{typ: 44, body: b}
}

// withExt6 inserts exts, in order, between the IPv6 header of frame and
// its payload, chaining the next-header fields and fixing the payload
// length. The L4 checksum stays valid: its pseudo-header does not change.
func withExt6(frame []byte, exts ...ext6) []byte {
	const ipOff = packet.EthernetLen
	hdr := append([]byte(nil), frame[:ipOff+packet.IPv6Len]...)
	upper := hdr[ipOff+6]
	var mid []byte
	for i, e := range exts {
		b := append([]byte(nil), e.body...)
		if i+1 < len(exts) {
			b[0] = exts[i+1].typ
		} else {
			b[0] = upper
		}
		mid = append(mid, b...)
	}
	if len(exts) > 0 {
		hdr[ipOff+6] = exts[0].typ
	}
	out := append(append(hdr, mid...), frame[ipOff+packet.IPv6Len:]...)
	binary.BigEndian.PutUint16(out[ipOff+4:ipOff+6], uint16(len(out)-ipOff-packet.IPv6Len))
	return out
}

// vlanTagged inserts one 802.1Q tag per VID after the MAC addresses, the
// outermost first, with outerTPID (0x8100 or 0x88a8) on the first and
// 0x8100 on the others.
func vlanTagged(frame []byte, outerTPID uint16, vids ...uint16) []byte {
	out := append([]byte(nil), frame[:12]...)
	for i, vid := range vids {
		tpid := uint16(0x8100)
		if i == 0 {
			tpid = outerTPID
		}
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, vid&0x0fff)
	}
	return append(out, frame[12:]...)
}

// checkFrame decodes frame (Ethernet, VLAN tags, IPv4 or IPv6 with
// extension headers, TCP or UDP) and reports every checksum that does not
// verify: the IPv4 header's, and the L4 checksum of every unfragmented
// datagram. Fragments' L4 checksums cover the whole datagram, so only
// their IPv4 header is checked.
func checkFrame(t *testing.T, frame []byte) {
	t.Helper()
	off := 12
	for {
		if len(frame) < off+2 {
			t.Fatalf("frame of %d bytes ends in the Ethernet header", len(frame))
		}
		et := binary.BigEndian.Uint16(frame[off:])
		off += 2
		if et == 0x8100 || et == 0x88a8 {
			off += 2
			continue
		}
		switch et {
		case packet.EtherTypeIPv4:
			checkIPv4(t, frame[off:])
		case packet.EtherTypeIPv6:
			checkIPv6(t, frame[off:])
		default:
			t.Fatalf("EtherType %#04x", et)
		}
		return
	}
}

func checkIPv4(t *testing.T, ip []byte) {
	t.Helper()
	if len(ip) < packet.IPv4Len || ip[0]>>4 != 4 {
		t.Fatalf("not an IPv4 header: % x", ip[:min(len(ip), 20)])
	}
	hlen := int(ip[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:4]))
	if packet.Checksum(ip[:hlen], 0) != 0 {
		t.Errorf("IPv4 header checksum %#04x does not verify", binary.BigEndian.Uint16(ip[10:12]))
	}
	if tot > len(ip) || tot < hlen {
		t.Fatalf("IPv4 total length %d, %d bytes there", tot, len(ip))
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // a fragment
		return
	}
	src, _ := netip.AddrFromSlice(ip[12:16])
	dst, _ := netip.AddrFromSlice(ip[16:20])
	checkL4(t, ip[9], src, dst, ip[hlen:tot])
}

func checkIPv6(t *testing.T, ip []byte) {
	t.Helper()
	if len(ip) < packet.IPv6Len || ip[0]>>4 != 6 {
		t.Fatalf("not an IPv6 header")
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if packet.IPv6Len+plen > len(ip) {
		t.Fatalf("IPv6 payload length %d, %d bytes there", plen, len(ip)-packet.IPv6Len)
	}
	src, _ := netip.AddrFromSlice(ip[8:24])
	dst, _ := netip.AddrFromSlice(ip[24:40])
	nh, off := ip[6], packet.IPv6Len
	for nh == 0 || nh == 43 || nh == 60 || nh == 44 {
		if nh == 44 {
			return // a fragment: the L4 checksum covers the reassembled datagram
		}
		nh, off = ip[off], off+(int(ip[off+1])+1)*8
	}
	checkL4(t, nh, src, dst, ip[off:packet.IPv6Len+plen])
}

func checkL4(t *testing.T, proto uint8, src, dst netip.Addr, seg []byte) {
	t.Helper()
	if proto != packet.ProtoTCP && proto != packet.ProtoUDP {
		return
	}
	if packet.Checksum(seg, packet.PseudoHeaderSum(src, dst, proto, len(seg))) != 0 {
		t.Errorf("protocol %d checksum does not verify (%v -> %v, %d bytes)", proto, src, dst, len(seg))
	}
}
