package healthcheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
)

// UDPSpec is a UDP_CHECK: send a datagram; the service is down when an
// ICMP error comes back, or, with RequireReply, when no fitting reply does.
type UDPSpec struct {
	Target Target
	// Payload is sent; nil means 16 random bytes (keepalived sends random
	// data when no payload is configured). ParseHexString reads
	// keepalived's HEX_STR.
	Payload []byte
	// RequireReply makes a reply mandatory.
	RequireReply bool
	// ReplyPattern / ReplyMask, if set, must match the reply up to the
	// shorter of the two; a zero mask nibble is a don't-care (keepalived's
	// X). ParseHexPattern reads keepalived's require_reply HEX_STR.
	ReplyPattern, ReplyMask []byte
	// MinReplyLength and MaxReplyLength bound the reply's length when a
	// reply is required (keepalived's defaults: 0 and 255; 0 here for Max
	// means 255).
	MinReplyLength, MaxReplyLength int
}

// UDPCheck is the UDP_CHECK checker.
type UDPCheck struct {
	spec UDPSpec
}

// NewUDPCheck validates spec and returns its checker.
func NewUDPCheck(spec UDPSpec) (*UDPCheck, error) {
	if err := spec.Target.validate(); err != nil {
		return nil, err
	}
	if spec.MaxReplyLength == 0 {
		spec.MaxReplyLength = 255
	}
	if spec.MinReplyLength < 0 || spec.MinReplyLength > spec.MaxReplyLength {
		return nil, fmt.Errorf("%w: reply length bounds %d..%d", ErrSpec, spec.MinReplyLength, spec.MaxReplyLength)
	}
	if len(spec.ReplyPattern) != len(spec.ReplyMask) {
		return nil, fmt.Errorf("%w: reply pattern and mask differ in length", ErrSpec)
	}
	return &UDPCheck{spec: spec}, nil
}

// Check sends the payload and waits for a reply or an ICMP error until
// ctx's deadline. Without RequireReply, silence until the deadline is a
// success: a UDP_CHECK without reply takes connect_timeout to pass.
func (c *UDPCheck) Check(ctx context.Context) error {
	payload := c.spec.Payload
	if payload == nil {
		payload = make([]byte, 16)
		_, _ = rand.Read(payload)
	}
	conn, err := c.spec.Target.dial(ctx, "udp")
	if err != nil {
		return err
	}
	defer conn.Close()
	defer withDeadline(ctx, conn)()
	if _, err := conn.Write(payload); err != nil {
		return udpError("udp write", err)
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		var ne net.Error
		if !c.spec.RequireReply && errors.As(err, &ne) && ne.Timeout() && ctx.Err() != context.Canceled {
			return nil
		}
		return udpError("udp read", err)
	}
	if !c.spec.RequireReply {
		return nil
	}
	reply := buf[:n]
	if n < c.spec.MinReplyLength || n > c.spec.MaxReplyLength {
		return fmt.Errorf("%w: reply of %d bytes, want %d..%d", ErrBadReply, n, c.spec.MinReplyLength, c.spec.MaxReplyLength)
	}
	if !matchMasked(reply, c.spec.ReplyPattern, c.spec.ReplyMask) {
		return fmt.Errorf("%w: reply % x does not match % x", ErrBadReply, reply[:min(n, 32)], c.spec.ReplyPattern)
	}
	return nil
}

// matchMasked compares data and pattern under mask up to the shorter
// length.
func matchMasked(data, pattern, mask []byte) bool {
	for i := 0; i < len(data) && i < len(pattern); i++ {
		if data[i]&mask[i] != pattern[i]&mask[i] {
			return false
		}
	}
	return true
}

// ParseHexString reads keepalived's HEX_STR: whitespace-separated groups of
// hex digits, each group read two digits a byte, an odd last digit making
// a byte of its own ("Ab12f 3" is AB 12 0F 03).
func ParseHexString(s string) ([]byte, error) {
	data, mask, err := ParseHexPattern(s)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(mask, bytes.Repeat([]byte{0xff}, len(mask))) {
		return nil, fmt.Errorf("%w: don't-care digit in %q", ErrSpec, s)
	}
	return data, nil
}

// ParseHexPattern reads a require_reply HEX_STR, where an x or X digit
// matches anything; it returns the bytes and their mask.
func ParseHexPattern(s string) (data, mask []byte, err error) {
	for _, group := range strings.Fields(s) {
		for i := 0; i < len(group); i += 2 {
			pair := group[i:min(i+2, len(group))]
			var d, m byte
			for _, ch := range []byte(pair) {
				v, vm, ok := hexNibble(ch)
				if !ok {
					return nil, nil, fmt.Errorf("%w: %q is not a hex digit in %q", ErrSpec, ch, s)
				}
				d, m = d<<4|v, m<<4|vm
			}
			if len(pair) == 1 {
				m |= 0xf0 // the implied leading 0 digit must match
			}
			data, mask = append(data, d), append(mask, m)
		}
	}
	return data, mask, nil
}

func hexNibble(c byte) (v, mask byte, ok bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', 0xf, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, 0xf, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, 0xf, true
	case c == 'x' || c == 'X':
		return 0, 0, true
	}
	return 0, 0, false
}
