// Package vrrp holds the VRRP wire codec (RFC 3768 VRRPv2, RFC 5798
// VRRPv3), the receive checks, the election state machine and the
// effective-priority computation. It is pure: no sockets, no netlink, no
// real timers. The runtime that does the I/O drives it.
package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Protocol is the IP protocol number of VRRP (RFC 3768 §5.2.4).
const Protocol = 112

// TTL is the IPv4 TTL / IPv6 hop limit every advert is sent with and must
// arrive with (RFC 3768 §5.2.3, RFC 5798 §5.1.1.3).
const TTL = 255

// Multicast groups adverts are sent to (RFC 3768 §5.2.2, RFC 5798 §5.1.2.2).
var (
	Group4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	Group6 = netip.MustParseAddr("ff02::12")
)

// Packet type, versions and authentication types.
const (
	TypeAdvertisement = 1

	Version2 = 2
	Version3 = 3

	AuthNone = 0 // no authentication
	AuthPass = 1 // simple text password (keepalived auth_type PASS)
	AuthAH   = 2 // IPsec AH (keepalived auth_type AH); not supported here
)

// Priority values with a meaning of their own (RFC 5798 §5.2.4).
const (
	PriorityStop  = 0   // the MASTER is leaving: BACKUPs take over after Skew_Time
	PriorityOwner = 255 // the address owner
)

// Wire layout of a VRRP message (the IP payload). Offsets are in bytes.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|  0..3
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	v2: |   Auth Type   |   Adver Int   |          Checksum             |  4..7
//	v3: |(rsvd) |     Max Adver Int     |          Checksum             |  4..7
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 IP Address(es): Count × 4 (IPv4) or × 16 (IPv6)  |  8..
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Authentication Data (8 bytes; VRRPv2 over IPv4 only)      |  end-8..end
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// v2 Adver Int is in seconds; v3 Max Adver Int is 12 bits of centiseconds
// whose upper 4 reserved bits are sent as zero and ignored on receipt.
// VRRPv2 over IPv6 (a keepalived extension) carries no authentication data,
// as keepalived sends it.
//
// Checksum: VRRPv2 over IPv4 sums the VRRP message alone (RFC 3768 §5.3.8).
// VRRPv3, and any version over IPv6, sums the IPv4 or IPv6 pseudo-header
// (RFC 5798 §5.2.8) followed by the VRRP message.
const (
	offVersionType = 0
	offVRID        = 1
	offPriority    = 2
	offCount       = 3
	offAuthType    = 4 // v2
	offAdverInt2   = 5 // v2, one byte of seconds
	offAdverInt3   = 4 // v3, two bytes, low 12 bits centiseconds
	offChecksum    = 6
	offAddrs       = 8

	HeaderLen = offAddrs
	AuthLen   = 8

	maxInterval3 = 0x0fff // centiseconds
)

// Errors returned by Decode, Marshal and Validate. Each maps to one
// DropReason through ReasonOf. Truncated input is io.ErrUnexpectedEOF.
var (
	ErrTTL         = errors.New("vrrp: TTL/hop limit is not 255")
	ErrVersion     = errors.New("vrrp: bad version")
	ErrType        = errors.New("vrrp: bad packet type")
	ErrVRID        = errors.New("vrrp: VRID not configured")
	ErrLength      = errors.New("vrrp: length does not match the address count")
	ErrAddrCount   = errors.New("vrrp: address list does not match the configured VIPs")
	ErrChecksum    = errors.New("vrrp: bad checksum")
	ErrAuthType    = errors.New("vrrp: authentication type mismatch")
	ErrAuth        = errors.New("vrrp: authentication failure")
	ErrInterval    = errors.New("vrrp: advertisement interval mismatch or unrepresentable")
	ErrUnicastPeer = errors.New("vrrp: source is not a configured unicast peer")
	ErrFamily      = errors.New("vrrp: address family mismatch")
)

// Advert is one VRRP ADVERTISEMENT.
type Advert struct {
	Version  uint8         // 2 or 3
	Type     uint8         // 1 = ADVERTISEMENT
	VRID     uint8         // virtual router ID
	Priority uint8         // 0 = MASTER leaving, 255 = address owner
	AuthType uint8         // v2 only: 0 none, 1 simple text password, 2 AH
	AuthData [8]byte       // v2 over IPv4 only
	Interval time.Duration // v2: whole seconds (Adver Int); v3: centiseconds (Max Adver Int)
	Addrs    []netip.Addr  // IPv4 or IPv6, all one family
	Checksum uint16        // as read by Decode; Marshal computes it
}

// hasAuthData reports whether the message carries the 8 authentication
// bytes: only VRRPv2 over IPv4 does.
func hasAuthData(version uint8, v4 bool) bool { return version == Version2 && v4 }

func addrLen(v4 bool) int {
	if v4 {
		return 4
	}
	return 16
}

// family checks that src and dst are one valid family and reports whether
// it is IPv4.
func family(src, dst netip.Addr) (v4 bool, err error) {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return false, fmt.Errorf("%w: source %v, destination %v", ErrFamily, src, dst)
	}
	return src.Is4(), nil
}

// MessageLen is the length of a VRRP message of this version carrying
// count addresses of the given family.
func MessageLen(version uint8, v4 bool, count int) int {
	n := HeaderLen + count*addrLen(v4)
	if hasAuthData(version, v4) {
		n += AuthLen
	}
	return n
}

// Marshal encodes the advert as the IP payload sent from src to dst (the
// multicast group or a unicast peer) and computes its checksum. The
// Checksum field is ignored.
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	v4, err := family(src, dst)
	if err != nil {
		return nil, err
	}
	if a.Version != Version2 && a.Version != Version3 {
		return nil, fmt.Errorf("%w: %d", ErrVersion, a.Version)
	}
	if a.Type > 0x0f {
		return nil, fmt.Errorf("%w: %d", ErrType, a.Type)
	}
	if len(a.Addrs) > 255 {
		return nil, fmt.Errorf("%w: %d addresses, at most 255", ErrLength, len(a.Addrs))
	}
	for _, ip := range a.Addrs {
		// In an IPv6 message an IPv4-mapped address (::ffff:a.b.c.d) is an
		// IPv6 address: Decode yields one from 16 bytes on the wire.
		if !ip.IsValid() || (v4 && !ip.Unmap().Is4()) || (!v4 && !ip.Is6()) {
			return nil, fmt.Errorf("%w: address %v in a message from %v", ErrFamily, ip, src)
		}
	}
	b := make([]byte, MessageLen(a.Version, v4, len(a.Addrs)))
	b[offVersionType] = a.Version<<4 | a.Type
	b[offVRID] = a.VRID
	b[offPriority] = a.Priority
	b[offCount] = uint8(len(a.Addrs))
	switch a.Version {
	case Version2:
		if a.Interval%time.Second != 0 || a.Interval < 0 || a.Interval > 255*time.Second {
			return nil, fmt.Errorf("%w: VRRPv2 needs whole seconds 0..255, got %v", ErrInterval, a.Interval)
		}
		b[offAuthType] = a.AuthType
		b[offAdverInt2] = uint8(a.Interval / time.Second)
	case Version3:
		cs := a.Interval / (10 * time.Millisecond)
		if a.Interval%(10*time.Millisecond) != 0 || cs < 0 || cs > maxInterval3 {
			return nil, fmt.Errorf("%w: VRRPv3 needs centiseconds 0..4095, got %v", ErrInterval, a.Interval)
		}
		binary.BigEndian.PutUint16(b[offAdverInt3:], uint16(cs))
	}
	off := offAddrs
	for _, ip := range a.Addrs {
		if v4 {
			off += copy(b[off:], ip.Unmap().AsSlice())
		} else {
			a16 := ip.As16()
			off += copy(b[off:], a16[:])
		}
	}
	if hasAuthData(a.Version, v4) {
		copy(b[off:], a.AuthData[:])
	}
	binary.BigEndian.PutUint16(b[offChecksum:], checksum(a.Version, src, dst, b))
	return b, nil
}

// Decode parses a VRRP message received from src and addressed to dst. It
// checks what the message alone can tell: version, type, length against
// the address count, and checksum. Checks that need local configuration
// are in RecvConfig.Validate.
func Decode(b []byte, src, dst netip.Addr) (*Advert, error) {
	v4, err := family(src, dst)
	if err != nil {
		return nil, err
	}
	if len(b) < HeaderLen {
		return nil, fmt.Errorf("vrrp: %d bytes, header needs %d: %w", len(b), HeaderLen, io.ErrUnexpectedEOF)
	}
	a := &Advert{
		Version:  b[offVersionType] >> 4,
		Type:     b[offVersionType] & 0x0f,
		VRID:     b[offVRID],
		Priority: b[offPriority],
		Checksum: binary.BigEndian.Uint16(b[offChecksum:]),
	}
	if a.Version != Version2 && a.Version != Version3 {
		return nil, fmt.Errorf("%w: %d", ErrVersion, a.Version)
	}
	if a.Type != TypeAdvertisement {
		return nil, fmt.Errorf("%w: %d", ErrType, a.Type)
	}
	count := int(b[offCount])
	want := MessageLen(a.Version, v4, count)
	if len(b) < want {
		return nil, fmt.Errorf("vrrp: %d bytes, %d addresses need %d: %w", len(b), count, want, io.ErrUnexpectedEOF)
	}
	if len(b) > want {
		return nil, fmt.Errorf("%w: %d bytes, %d addresses need %d", ErrLength, len(b), count, want)
	}
	if checksum(a.Version, src, dst, b) != 0 {
		return nil, fmt.Errorf("%w: 0x%04x", ErrChecksum, a.Checksum)
	}
	switch a.Version {
	case Version2:
		a.AuthType = b[offAuthType]
		a.Interval = time.Duration(b[offAdverInt2]) * time.Second
	case Version3:
		cs := binary.BigEndian.Uint16(b[offAdverInt3:]) & maxInterval3
		a.Interval = time.Duration(cs) * 10 * time.Millisecond
	}
	al := addrLen(v4)
	a.Addrs = make([]netip.Addr, count)
	for i := range count {
		raw := b[offAddrs+i*al : offAddrs+(i+1)*al]
		a.Addrs[i], _ = netip.AddrFromSlice(raw) // length is 4 or 16: cannot fail
	}
	if hasAuthData(a.Version, v4) {
		copy(a.AuthData[:], b[len(b)-AuthLen:])
	}
	return a, nil
}

// checksum returns the Internet checksum of msg, over the pseudo-header
// where the version and family call for one. Over a message whose checksum
// field holds the right value, it returns 0; over a message whose checksum
// field is zero, it returns the value to store.
func checksum(version uint8, src, dst netip.Addr, msg []byte) uint16 {
	src, dst = src.Unmap(), dst.Unmap()
	var sum uint32
	switch {
	case src.Is4() && version == Version2:
		// RFC 3768 §5.3.8: the VRRP message only.
	case src.Is4():
		// IPv4 pseudo-header: src(4) dst(4) zero(1) proto(1) length(2).
		s, d := src.As4(), dst.As4()
		sum = sumBytes(sum, s[:])
		sum = sumBytes(sum, d[:])
		sum += Protocol + uint32(len(msg))
	default:
		// IPv6 pseudo-header: src(16) dst(16) length(4) zero(3) next header(1).
		s, d := src.As16(), dst.As16()
		sum = sumBytes(sum, s[:])
		sum = sumBytes(sum, d[:])
		sum += uint32(len(msg)) + Protocol
	}
	sum = sumBytes(sum, msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// sumBytes adds b as big-endian 16-bit words (odd tail padded with zero).
func sumBytes(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		if sum > 0xffff_0000 {
			sum = sum&0xffff + sum>>16
		}
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// PasswordBytes returns the 8 authentication bytes keepalived sends for
// auth_pass: the password's first 8 bytes, zero padded (keepalived warns
// and truncates a longer password).
func PasswordBytes(pass string) [8]byte {
	var b [8]byte
	copy(b[:], pass)
	return b
}
