package vrrpnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// ErrBadIPv4Header is returned for a received datagram whose IPv4 header is
// not one the kernel could have delivered to a protocol-112 raw socket.
var ErrBadIPv4Header = errors.New("vrrpnet: bad IPv4 header")

// ipv4Header is the part of an IPv4 header the transport reports.
type ipv4Header struct {
	TTL      uint8
	Protocol uint8
	Src, Dst netip.Addr
}

// parseIPv4 splits what an IPv4 raw socket returns into header fields and
// the payload after the header (options skipped).
//
// IPv4 header (RFC 791), as delivered to raw sockets:
//
//	offset  size  field
//	0       1     version (high 4 bits) | IHL in 32-bit words (low 4 bits)
//	1       1     DSCP/ECN
//	2       2     total length (bytes, header included)
//	4       2     identification
//	6       2     flags | fragment offset
//	8       1     TTL
//	9       1     protocol
//	10      2     header checksum
//	12      4     source address
//	16      4     destination address
//	20      ...   options (IHL*4 - 20 bytes), then payload
func parseIPv4(b []byte) (ipv4Header, []byte, error) {
	if len(b) < 20 {
		return ipv4Header{}, nil, fmt.Errorf("%w: %d bytes: %w", ErrBadIPv4Header, len(b), io.ErrUnexpectedEOF)
	}
	if v := b[0] >> 4; v != 4 {
		return ipv4Header{}, nil, fmt.Errorf("%w: version %d", ErrBadIPv4Header, v)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return ipv4Header{}, nil, fmt.Errorf("%w: header length %d", ErrBadIPv4Header, ihl)
	}
	if len(b) < ihl {
		return ipv4Header{}, nil, fmt.Errorf("%w: header length %d, have %d bytes: %w", ErrBadIPv4Header, ihl, len(b), io.ErrUnexpectedEOF)
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	// Linux hands raw sockets the total length as sent; trust the smaller of
	// it and what was received, but it may never cut into the header.
	if total < ihl {
		return ipv4Header{}, nil, fmt.Errorf("%w: total length %d < header length %d", ErrBadIPv4Header, total, ihl)
	}
	end := min(total, len(b))
	h := ipv4Header{
		TTL:      b[8],
		Protocol: b[9],
		Src:      netip.AddrFrom4([4]byte(b[12:16])),
		Dst:      netip.AddrFrom4([4]byte(b[16:20])),
	}
	return h, b[ihl:end], nil
}
