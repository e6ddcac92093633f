// Package vrrpnet is the VRRP transport: a raw IP socket for protocol 112 on
// one interface, IPv4 or IPv6, multicast (224.0.0.18 / ff02::12) or unicast
// (unicast_peer + unicast_src_ip). It moves payload bytes only; encoding and
// validating adverts is pkg/vrrp's job.
//
// What the socket is set up to do, as keepalived does:
//   - bound to the interface (SO_BINDTODEVICE), multicast sent through it
//     (IP_MULTICAST_IF / IPV6_MULTICAST_IF) and the group joined on it;
//   - TTL / hop limit 255 on every advert sent (unicast: unicast_ttl when
//     configured), multicast loop off, TOS / traffic class 0xc0
//     (internetwork control);
//   - received TTL / hop limit reported so the caller can drop adverts that
//     crossed a router (RFC 5798 §5.1.1.3).
package vrrpnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Protocol is the IP protocol number of VRRP.
const Protocol = 112

// TTL is the TTL / hop limit VRRP adverts are sent with and must arrive with.
const TTL = 255

// tos is IPTOS_PREC_INTERNETCONTROL, the TOS keepalived sends adverts with.
const tos = 0xc0

// The VRRP multicast groups (RFC 5798 §5.1.1.2, §5.1.2.2).
var (
	GroupV4 = netip.MustParseAddr("224.0.0.18")
	GroupV6 = netip.MustParseAddr("ff02::12")
)

var (
	// ErrNoSource means the interface has no address to send adverts from
	// (no IPv4 address, or no IPv6 link-local address).
	ErrNoSource = errors.New("vrrpnet: no source address on interface")
	// ErrFamily means an address of the wrong family for the connection.
	ErrFamily = errors.New("vrrpnet: address family does not match the connection")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("vrrpnet: connection closed")
	// ErrTruncated means a received datagram was larger than the buffer.
	ErrTruncated = errors.New("vrrpnet: datagram truncated")
)

// Config selects the interface, the family and the mode of a Conn.
type Config struct {
	// Iface is the interface adverts are sent and received on.
	Iface string
	// IPv6 selects IPv6 (VRRPv3 only); otherwise IPv4.
	IPv6 bool
	// Source is unicast_src_ip. If zero, the interface's primary IPv4
	// address (first non-secondary) or its IPv6 link-local address is used.
	Source netip.Addr
	// Peers are the unicast_peer addresses. When empty the Conn runs in
	// multicast mode and joins the VRRP group on Iface.
	Peers []netip.Addr
	// UnicastTTL is unicast_ttl: the IPv4 TTL / IPv6 hop limit of the
	// adverts sent to Peers, 1..255; 0 means TTL. Multicast adverts always
	// go with TTL (RFC 5798 §5.1.1.3).
	UnicastTTL int
}

// ErrTTL means a UnicastTTL outside 0..255.
var ErrTTL = errors.New("vrrpnet: unicast TTL out of range 0..255")

// Packet is one received VRRP datagram.
type Packet struct {
	Payload []byte     // VRRP header and body (IP header removed)
	Src     netip.Addr // IP source address
	Dst     netip.Addr // IP destination address (group or our address)
	TTL     int        // IPv4 TTL or IPv6 hop limit as received
	Ifindex int        // interface it arrived on
	// Received is when the kernel received it (SO_TIMESTAMPNS), carried
	// onto the monotonic clock as of the read; zero when the kernel gave
	// no stamp.
	Received time.Time
}

// Conn is a VRRP raw socket bound to one interface.
type Conn struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
	iface   string
	v6      bool
	src     netip.Addr
	dsts    []netip.Addr

	closed atomic.Bool

	recvMu sync.Mutex
	buf    []byte
	oob    []byte
}

// Open creates the socket for cfg. It must be called in the network
// namespace the interface lives in.
func Open(cfg Config) (*Conn, error) {
	ifi, err := net.InterfaceByName(cfg.Iface)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: interface %q: %w", cfg.Iface, err)
	}
	src := cfg.Source
	if src.IsValid() {
		if src.Is6() != cfg.IPv6 || src.Is4In6() {
			return nil, fmt.Errorf("%w: source %s", ErrFamily, src)
		}
	} else if src, err = interfaceSource(ifi, cfg.IPv6); err != nil {
		return nil, err
	}
	if cfg.UnicastTTL < 0 || cfg.UnicastTTL > 255 {
		return nil, fmt.Errorf("%w: %d", ErrTTL, cfg.UnicastTTL)
	}
	ttl := TTL
	if len(cfg.Peers) > 0 && cfg.UnicastTTL > 0 {
		ttl = cfg.UnicastTTL
	}
	dsts := []netip.Addr{GroupV4}
	if cfg.IPv6 {
		dsts = []netip.Addr{GroupV6}
	}
	if len(cfg.Peers) > 0 {
		dsts = nil
		for _, p := range cfg.Peers {
			p = p.Unmap()
			if p.Is6() != cfg.IPv6 {
				return nil, fmt.Errorf("%w: unicast peer %s", ErrFamily, p)
			}
			dsts = append(dsts, p)
		}
	}

	domain := unix.AF_INET
	if cfg.IPv6 {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, Protocol)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: socket: %w", err)
	}
	if err := setup(fd, ifi, cfg.IPv6, len(cfg.Peers) == 0, ttl); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrpnet: %s: %w", cfg.Iface, err)
	}
	f := os.NewFile(uintptr(fd), "vrrp:"+cfg.Iface)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("vrrpnet: %w", err)
	}
	return &Conn{
		f: f, rc: rc, ifindex: ifi.Index, iface: ifi.Name, v6: cfg.IPv6,
		src: src, dsts: dsts,
		buf: make([]byte, 65536), oob: make([]byte, 256),
	}, nil
}

type sockopt struct {
	name       string
	level, opt int
	value      int
}

// setup configures the socket; ttl is the TTL / hop limit of unicast
// sends.
func setup(fd int, ifi *net.Interface, v6, multicast bool, ttl int) error {
	if err := unix.BindToDevice(fd, ifi.Name); err != nil {
		return fmt.Errorf("SO_BINDTODEVICE: %w", err)
	}
	var opts []sockopt
	if v6 {
		opts = []sockopt{
			{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index},
			{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, TTL},
			{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl},
			{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
			{"IPV6_MULTICAST_ALL", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0},
			{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tos},
			{"IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
			{"IPV6_RECVHOPLIMIT", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
			{"SO_TIMESTAMPNS", unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1},
		}
	} else {
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF,
			&unix.IPMreqn{Ifindex: int32(ifi.Index)}); err != nil {
			return fmt.Errorf("IP_MULTICAST_IF: %w", err)
		}
		opts = []sockopt{
			{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, TTL},
			{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, ttl},
			{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
			{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
			{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, tos},
			{"IP_PKTINFO", unix.IPPROTO_IP, unix.IP_PKTINFO, 1},
			{"SO_TIMESTAMPNS", unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1},
		}
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.value); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	if !multicast {
		return nil
	}
	if v6 {
		mreq := &unix.IPv6Mreq{Multiaddr: GroupV6.As16(), Interface: uint32(ifi.Index)}
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
			return fmt.Errorf("join %s: %w", GroupV6, err)
		}
		return nil
	}
	mreq := &unix.IPMreqn{Multiaddr: GroupV4.As4(), Ifindex: int32(ifi.Index)}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
		return fmt.Errorf("join %s: %w", GroupV4, err)
	}
	return nil
}

// interfaceSource picks the address keepalived sends adverts from: the
// interface's primary IPv4 address (the kernel lists primaries first, in the
// order they were added) or its first IPv6 link-local address.
func interfaceSource(ifi *net.Interface, v6 bool) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrpnet: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case !v6 && ip.Is4():
			return ip, nil
		case v6 && ip.Is6() && ip.IsLinkLocalUnicast():
			return ip, nil
		}
	}
	fam := "IPv4"
	if v6 {
		fam = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("%w: %s has no %s address", ErrNoSource, ifi.Name, fam)
}

// Source is the address adverts are sent from; the VRRPv3 checksum's
// pseudo-header uses it.
func (c *Conn) Source() netip.Addr { return c.src }

// Destinations are where Advertise sends: the multicast group, or every
// unicast peer.
func (c *Conn) Destinations() []netip.Addr { return append([]netip.Addr(nil), c.dsts...) }

// Multicast reports whether the Conn is in multicast mode.
func (c *Conn) Multicast() bool { return len(c.dsts) == 1 && c.dsts[0].IsMulticast() }

// Ifindex is the index of the interface the Conn is bound to.
func (c *Conn) Ifindex() int { return c.ifindex }

// IPv6 reports whether the Conn is IPv6.
func (c *Conn) IPv6() bool { return c.v6 }

// Advertise sends payload to every destination (group or unicast peers).
// It tries all of them and returns the errors joined.
func (c *Conn) Advertise(payload []byte) error {
	var errs []error
	for _, d := range c.dsts {
		if err := c.Send(payload, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Send sends one datagram carrying payload to dst, from Source(), out of the
// bound interface, with TTL / hop limit 255 (unicast: Config.UnicastTTL
// when set).
func (c *Conn) Send(payload []byte, dst netip.Addr) error {
	dst = dst.Unmap()
	if dst.Is6() != c.v6 {
		return fmt.Errorf("%w: destination %s", ErrFamily, dst)
	}
	var sa unix.Sockaddr
	var oob []byte
	if c.v6 {
		sa = &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(c.ifindex)}
		oob = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: c.src.As16(), Ifindex: uint32(c.ifindex)})
	} else {
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
		oob = unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: int32(c.ifindex), Spec_dst: c.src.As4()})
	}
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgN(int(fd), payload, oob, sa, 0)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return c.closedOr(fmt.Errorf("vrrpnet: send to %s on %s: %w", dst, c.iface, err))
	}
	return nil
}

// Recv waits for the next datagram. It returns ctx.Err() when ctx is done
// and ErrClosed after Close, so it never holds up shutdown. An error wrapping
// ErrBadIPv4Header or ErrTruncated concerns that one datagram only: the caller
// counts it and calls Recv again. Recv is meant for one reader goroutine.
func (c *Conn) Recv(ctx context.Context) (Packet, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if err := ctx.Err(); err != nil {
		return Packet{}, err
	}
	deadline, _ := ctx.Deadline() // zero: no deadline
	if err := c.f.SetReadDeadline(deadline); err != nil {
		return Packet{}, c.closedOr(err)
	}
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		_ = c.f.SetReadDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-woken // the wake-up ran: let it finish before the next Recv resets the deadline
		}
	}()

	var n, oobn, flags int
	var from unix.Sockaddr
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, oobn, flags, from, rerr = unix.Recvmsg(int(fd), c.buf, c.oob, 0)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return Packet{}, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return Packet{}, context.DeadlineExceeded
		}
		return Packet{}, c.closedOr(fmt.Errorf("vrrpnet: receive on %s: %w", c.iface, err))
	}
	if flags&unix.MSG_TRUNC != 0 {
		return Packet{}, fmt.Errorf("%w: more than %d bytes", ErrTruncated, len(c.buf))
	}
	info, err := parseControl(c.oob[:oobn])
	if err != nil {
		return Packet{}, err
	}
	p := Packet{Ifindex: info.Ifindex, Dst: info.Dst, TTL: info.HopLimit, Received: onMonotonic(info.Stamp)}
	if p.Ifindex == 0 {
		p.Ifindex = c.ifindex
	}
	if c.v6 {
		if sa, ok := from.(*unix.SockaddrInet6); ok {
			p.Src = netip.AddrFrom16(sa.Addr)
		}
		p.Payload = append([]byte(nil), c.buf[:n]...)
		return p, nil
	}
	hdr, payload, err := parseIPv4(c.buf[:n])
	if err != nil {
		return Packet{}, err
	}
	p.Src, p.Dst, p.TTL = hdr.Src, hdr.Dst, int(hdr.TTL)
	p.Payload = append([]byte(nil), payload...)
	return p, nil
}

// onMonotonic turns the kernel's CLOCK_REALTIME receive stamp into a time
// with a monotonic reading, by its age now, so that gaps between stamps do
// not move with the wall clock (an age below zero, from a clock step, is
// taken as zero).
func onMonotonic(stamp time.Time) time.Time {
	if stamp.IsZero() {
		return time.Time{}
	}
	now := time.Now()
	return now.Add(-max(now.Sub(stamp), 0))
}

func (c *Conn) closedOr(err error) error {
	if c.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Close closes the socket (leaving the multicast group); a blocked Recv
// returns ErrClosed.
func (c *Conn) Close() error {
	c.closed.Store(true)
	if err := c.f.Close(); err != nil {
		return c.closedOr(err)
	}
	return nil
}
