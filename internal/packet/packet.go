// Package packet builds Ethernet frames (IPv4, IPv6, TCP, UDP and any other
// IP payload) with correct lengths and checksums, for BPF fixture tests,
// end-to-end tests and traffic generators.
//
//	seg := packet.TCP{SrcPort: 40000, DstPort: 80, Flags: packet.SYN}.Marshal(src, dst, nil)
//	ip := packet.IPv4{Src: src, Dst: dst, Proto: packet.ProtoTCP}.Marshal(seg)
//	frame := packet.Ethernet{Dst: lbMAC, Src: clientMAC, Type: packet.EtherTypeIPv4}.Marshal(ip)
package packet

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// EtherTypes and IP protocol numbers.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeIPv6 uint16 = 0x86dd

	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoVRRP uint8 = 112
)

// TCP flags.
const (
	FIN uint8 = 0x01
	SYN uint8 = 0x02
	RST uint8 = 0x04
	PSH uint8 = 0x08
	ACK uint8 = 0x10
)

// Header lengths.
const (
	EthernetLen = 14
	IPv4Len     = 20
	IPv6Len     = 40
	TCPLen      = 20
	UDPLen      = 8
)

// Ethernet is an Ethernet II header.
type Ethernet struct {
	Dst, Src net.HardwareAddr
	Type     uint16
}

// Marshal returns the frame: header then payload.
//
//	0: destination MAC (6)   6: source MAC (6)   12: EtherType (2)
func (e Ethernet) Marshal(payload []byte) []byte {
	b := make([]byte, EthernetLen+len(payload))
	copy(b[0:6], e.Dst)
	copy(b[6:12], e.Src)
	binary.BigEndian.PutUint16(b[12:14], e.Type)
	copy(b[EthernetLen:], payload)
	return b
}

// IPv4 is an IPv4 header without options. TTL 0 means 64.
type IPv4 struct {
	Src, Dst netip.Addr
	Proto    uint8
	TTL      uint8
	ID       uint16
	// TotalLen overrides the total length when non-zero (to build bad frames).
	TotalLen uint16
}

// Marshal returns header and payload with the header checksum set.
//
//	0: version/IHL   1: TOS   2: total length   4: ID   6: flags/fragment
//	8: TTL   9: protocol   10: checksum   12: source   16: destination
func (h IPv4) Marshal(payload []byte) []byte {
	b := make([]byte, IPv4Len+len(payload))
	b[0] = 0x45
	tot := uint16(len(b))
	if h.TotalLen != 0 {
		tot = h.TotalLen
	}
	binary.BigEndian.PutUint16(b[2:4], tot)
	binary.BigEndian.PutUint16(b[4:6], h.ID)
	b[6] = 0x40 // don't fragment
	b[8] = h.TTL
	if b[8] == 0 {
		b[8] = 64
	}
	b[9] = h.Proto
	src, dst := h.Src.As4(), h.Dst.As4()
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	binary.BigEndian.PutUint16(b[10:12], Checksum(b[:IPv4Len], 0))
	copy(b[IPv4Len:], payload)
	return b
}

// IPv6 is an IPv6 header without extension headers. HopLimit 0 means 64.
type IPv6 struct {
	Src, Dst   netip.Addr
	NextHeader uint8
	HopLimit   uint8
}

// Marshal returns header and payload.
//
//	0: version/class/flow (4)   4: payload length   6: next header
//	7: hop limit   8: source (16)   24: destination (16)
func (h IPv6) Marshal(payload []byte) []byte {
	b := make([]byte, IPv6Len+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], uint16(len(payload)))
	b[6] = h.NextHeader
	b[7] = h.HopLimit
	if b[7] == 0 {
		b[7] = 64
	}
	src, dst := h.Src.As16(), h.Dst.As16()
	copy(b[8:24], src[:])
	copy(b[24:40], dst[:])
	copy(b[IPv6Len:], payload)
	return b
}

// TCP is a TCP header without options. Window 0 means 65535.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
}

// Marshal returns the segment with its checksum over the pseudo-header of
// src and dst (both IPv4 or both IPv6).
//
//	0: source port   2: destination port   4: sequence   8: acknowledgment
//	12: data offset   13: flags   14: window   16: checksum   18: urgent
func (t TCP) Marshal(src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, TCPLen+len(payload))
	binary.BigEndian.PutUint16(b[0:2], t.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], t.DstPort)
	binary.BigEndian.PutUint32(b[4:8], t.Seq)
	binary.BigEndian.PutUint32(b[8:12], t.Ack)
	b[12] = (TCPLen / 4) << 4
	b[13] = t.Flags
	w := t.Window
	if w == 0 {
		w = 65535
	}
	binary.BigEndian.PutUint16(b[14:16], w)
	copy(b[TCPLen:], payload)
	binary.BigEndian.PutUint16(b[16:18], Checksum(b, PseudoHeaderSum(src, dst, ProtoTCP, len(b))))
	return b
}

// UDP is a UDP header.
type UDP struct {
	SrcPort, DstPort uint16
}

// Marshal returns the datagram with its checksum over the pseudo-header.
//
//	0: source port   2: destination port   4: length   6: checksum
func (u UDP) Marshal(src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, UDPLen+len(payload))
	binary.BigEndian.PutUint16(b[0:2], u.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], u.DstPort)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
	copy(b[UDPLen:], payload)
	c := Checksum(b, PseudoHeaderSum(src, dst, ProtoUDP, len(b)))
	if c == 0 {
		c = 0xffff // RFC 768: zero means "no checksum"
	}
	binary.BigEndian.PutUint16(b[6:8], c)
	return b
}

// PseudoHeaderSum is the unfolded one's-complement sum of the IPv4 or IPv6
// pseudo-header, to pass to Checksum as its initial value.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	sum += uint32(proto)
	sum += uint32(length) & 0xffff
	sum += uint32(length) >> 16
	return sum
}

// Checksum is the Internet checksum (RFC 1071) of b, starting from the
// unfolded sum initial.
func Checksum(b []byte, initial uint32) uint16 {
	sum := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// IPFrame wraps an L4 payload (already carrying its checksum) in an IPv4 or
// IPv6 header, chosen by the family of src, and an Ethernet header.
func IPFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, proto, ttl uint8, l4 []byte) []byte {
	if src.Is4() {
		ip := IPv4{Src: src, Dst: dst, Proto: proto, TTL: ttl}.Marshal(l4)
		return Ethernet{Dst: dstMAC, Src: srcMAC, Type: EtherTypeIPv4}.Marshal(ip)
	}
	ip := IPv6{Src: src, Dst: dst, NextHeader: proto, HopLimit: ttl}.Marshal(l4)
	return Ethernet{Dst: dstMAC, Src: srcMAC, Type: EtherTypeIPv6}.Marshal(ip)
}

// TCPFrame is a whole Ethernet frame carrying one TCP segment from src to dst.
func TCPFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.AddrPort, flags uint8, payload []byte) []byte {
	seg := TCP{SrcPort: src.Port(), DstPort: dst.Port(), Flags: flags, Seq: 1}.Marshal(src.Addr(), dst.Addr(), payload)
	return IPFrame(dstMAC, srcMAC, src.Addr(), dst.Addr(), ProtoTCP, 64, seg)
}

// UDPFrame is a whole Ethernet frame carrying one UDP datagram.
func UDPFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.AddrPort, payload []byte) []byte {
	dg := UDP{SrcPort: src.Port(), DstPort: dst.Port()}.Marshal(src.Addr(), dst.Addr(), payload)
	return IPFrame(dstMAC, srcMAC, src.Addr(), dst.Addr(), ProtoUDP, 64, dg)
}
