// Package healthcheck implements keepalived's real-server health checkers
// (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, DNS_CHECK, UDP_CHECK,
// PING_CHECK, SMTP_CHECK), one per file behind the Checker interface, and
// the Monitor that runs one real server's checkers on their delay_loop with
// keepalived's retry, alpha and omega semantics.
//
// Checkers know nothing about timing: the caller bounds each check with the
// context (the Monitor puts connect_timeout on it). Monitors know nothing
// about configuration files: the daemon maps keepalived.conf onto the spec
// structs here.
package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Checker is one health check of one real server. Check returns nil when
// the service is healthy and an error saying why not otherwise. It returns
// by ctx's deadline at the latest and never panics on what a server sends.
type Checker interface {
	Check(ctx context.Context) error
}

// DynamicChecker is a Checker whose success can carry a weight for the real
// server (MISC_CHECK with misc_dynamic). dynamic is false when the check
// gives no weight (then the configured weight applies).
type DynamicChecker interface {
	Checker
	CheckWeight(ctx context.Context) (weight int, dynamic bool, err error)
}

// Errors the checkers wrap, to be tested with errors.Is.
var (
	// ErrConnect means the connection could not be made (refused,
	// unreachable, or timed out while connecting).
	ErrConnect = errors.New("connect failed")
	// ErrTimeout means the server accepted but did not answer in time.
	ErrTimeout = errors.New("no answer before the timeout")
	// ErrBadReply means the server answered something the check rejects
	// (wrong status code, wrong digest, malformed reply).
	ErrBadReply = errors.New("bad reply")
	// ErrScript means a MISC_CHECK script failed (non-zero exit, timeout,
	// cannot run).
	ErrScript = errors.New("check script failed")
	// ErrSpec means the checker's spec is unusable.
	ErrSpec = errors.New("invalid checker spec")
)

// Target is where and how a checker connects: keepalived's connect_ip,
// connect_port, bindto, bind_port, bind_if and fwmark. The config mapper
// fills Addr from the real server when connect_ip/connect_port are absent.
type Target struct {
	// Addr is connect_ip:connect_port.
	Addr netip.AddrPort
	// BindTo is the source address (bindto); zero for the kernel's choice.
	BindTo netip.Addr
	// BindPort is the source port (bind_port); 0 for any.
	BindPort uint16
	// BindIf is the interface to bind to (bind_if), needed for link-local
	// IPv6 addresses.
	BindIf string
	// Fwmark marks the checker's packets (SO_MARK); 0 for none.
	Fwmark uint32
}

func (t Target) validate() error {
	if !t.Addr.Addr().IsValid() {
		return fmt.Errorf("%w: no connect address", ErrSpec)
	}
	if t.BindTo.IsValid() && t.BindTo.Unmap().Is4() != t.Addr.Addr().Unmap().Is4() {
		return fmt.Errorf("%w: bindto %v and connect_ip %v are of different families", ErrSpec, t.BindTo, t.Addr.Addr())
	}
	return nil
}

// dialer returns a net.Dialer for network ("tcp" or "udp") with the
// target's source address, port, interface and mark.
func (t Target) dialer(network string) *net.Dialer {
	d := &net.Dialer{}
	if t.BindTo.IsValid() || t.BindPort != 0 {
		ap := netip.AddrPortFrom(t.BindTo, t.BindPort)
		if network == "udp" {
			d.LocalAddr = net.UDPAddrFromAddrPort(ap)
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(ap)
		}
	}
	if t.BindIf != "" || t.Fwmark != 0 {
		d.Control = t.control
	}
	return d
}

// control applies bind_if and fwmark to a socket before it connects.
func (t Target) control(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if t.BindIf != "" {
			if serr = unix.BindToDevice(int(fd), t.BindIf); serr != nil {
				serr = fmt.Errorf("bind_if %s: %w", t.BindIf, serr)
				return
			}
		}
		if t.Fwmark != 0 {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(t.Fwmark)); serr != nil {
				serr = fmt.Errorf("fwmark %d: %w", t.Fwmark, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// dial connects to the target, bounded by ctx.
func (t Target) dial(ctx context.Context, network string) (net.Conn, error) {
	conn, err := t.dialer(network).DialContext(ctx, network, t.Addr.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %s %v: %w", ErrConnect, network, t.Addr, err)
	}
	return conn, nil
}

// ioError classifies an error from reading or writing an established
// connection: a deadline becomes ErrTimeout, anything else ErrBadReply.
func ioError(what string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %s: %w", ErrTimeout, what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrBadReply, what, err)
}

// withDeadline sets the connection deadline from ctx and expires it at
// once if ctx is cancelled early; the returned func undoes the latter.
func withDeadline(ctx context.Context, conn net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}
