package healthcheck

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// PingSpec is a PING_CHECK: one ICMP (or ICMPv6) echo must be answered.
// Target's port, bind_port, bind_if and fwmark are not used.
type PingSpec struct {
	Target Target
}

// PingCheck is the PING_CHECK checker. It uses an unprivileged ICMP
// socket when net.ipv4.ping_group_range allows one and a raw socket (root)
// otherwise.
type PingCheck struct {
	spec PingSpec
	id   uint16
	seq  atomic.Uint32
}

// NewPingCheck validates spec and returns its checker.
func NewPingCheck(spec PingSpec) (*PingCheck, error) {
	if err := spec.Target.validate(); err != nil {
		return nil, err
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	return &PingCheck{spec: spec, id: binary.BigEndian.Uint16(b[:])}, nil
}

// Check sends one echo request and waits for its reply.
func (c *PingCheck) Check(ctx context.Context) error {
	dst := c.spec.Target.Addr.Addr().Unmap()
	v6 := dst.Is6()
	var (
		udpNet, rawNet, bind           = "udp4", "ip4:icmp", "0.0.0.0"
		reqType              icmp.Type = ipv4.ICMPTypeEcho
		replyType            icmp.Type = ipv4.ICMPTypeEchoReply
		proto                          = 1
	)
	if v6 {
		udpNet, rawNet, bind = "udp6", "ip6:ipv6-icmp", "::"
		reqType, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	if c.spec.Target.BindTo.IsValid() {
		bind = c.spec.Target.BindTo.Unmap().String()
	}
	raw := false
	conn, err := icmp.ListenPacket(udpNet, bind)
	if err != nil {
		if conn, err = icmp.ListenPacket(rawNet, bind); err != nil {
			return fmt.Errorf("%w: icmp socket: %w", ErrConnect, err)
		}
		raw = true
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	defer context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })()

	seq := int(uint16(c.seq.Add(1)))
	body := &icmp.Echo{ID: int(c.id), Seq: seq, Data: []byte("xdpvip-healthcheck")}
	msg, err := (&icmp.Message{Type: reqType, Body: body}).Marshal(nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	var to net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if raw {
		to = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	if _, err := conn.WriteTo(msg, to); err != nil {
		return fmt.Errorf("%w: icmp echo to %v: %w", ErrConnect, dst, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return ioError("icmp echo reply", err)
		}
		if fromAddr(from) != dst.String() {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		// An unprivileged socket's id is rewritten by the kernel, which
		// also filters replies by it: only the sequence can be checked.
		if !ok || echo.Seq != seq || (raw && echo.ID != int(c.id)) {
			continue
		}
		return nil
	}
}

func fromAddr(a net.Addr) string {
	switch a := a.(type) {
	case *net.UDPAddr:
		if ip4 := a.IP.To4(); ip4 != nil {
			return ip4.String()
		}
		return a.IP.String()
	case *net.IPAddr:
		if ip4 := a.IP.To4(); ip4 != nil {
			return ip4.String()
		}
		return a.IP.String()
	}
	return ""
}
