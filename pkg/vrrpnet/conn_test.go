package vrrpnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"golang.org/x/sys/unix"
)

// pair is two hosts on one bridge, each with IPv4 and IPv6 addresses.
func pair(t *testing.T) (a, b *testnet.Host) {
	n := testnet.New(t)
	a = n.AddHost("a", "192.0.2.1/24", testnet.WithAddr("192.0.2.3/24"), testnet.WithAddr("2001:db8::1/64"))
	b = n.AddHost("b", "192.0.2.2/24", testnet.WithAddr("2001:db8::2/64"))
	return a, b
}

func open(t *testing.T, h *testnet.Host, cfg Config) *Conn {
	t.Helper()
	var c *Conn
	h.MustDo(func() (err error) {
		c, err = Open(cfg)
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func ifindex(t *testing.T, h *testnet.Host) int {
	t.Helper()
	var idx int
	h.MustDo(func() error {
		ifi, err := net.InterfaceByName(h.Iface())
		if ifi != nil {
			idx = ifi.Index
		}
		return err
	})
	return idx
}

func linkLocal(t *testing.T, h *testnet.Host) netip.Addr {
	t.Helper()
	var ll netip.Addr
	h.MustDo(func() error {
		ifi, err := net.InterfaceByName(h.Iface())
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		for _, a := range addrs {
			ip, _ := netip.AddrFromSlice(a.(*net.IPNet).IP)
			if ip.Is6() && ip.IsLinkLocalUnicast() {
				ll = ip
			}
		}
		return err
	})
	if !ll.IsValid() {
		t.Fatalf("%s has no link-local address", h.Name())
	}
	return ll
}

func recvWithin(t *testing.T, c *Conn, d time.Duration) (Packet, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Recv(ctx)
}

// exchange sends payload from snd until rcv gets one: the first multicast
// packet may race the receiver's group join on a fresh bridge.
func exchange(t *testing.T, snd, rcv *Conn, payload []byte) Packet {
	t.Helper()
	var got Packet
	testnet.Eventually(t, 5*time.Second, func() error {
		if err := snd.Advertise(payload); err != nil {
			return err
		}
		var err error
		got, err = recvWithin(t, rcv, 200*time.Millisecond)
		return err
	})
	return got
}

func TestSendRecv(t *testing.T) {
	a, b := pair(t)
	bIdx := ifindex(t, b)
	aLL := linkLocal(t, a)
	tests := []struct {
		name      string
		send, rcv Config
		wantSrc   netip.Addr
		wantDst   netip.Addr
	}{
		{"v4 multicast",
			Config{Iface: "eth0"}, Config{Iface: "eth0"},
			netip.MustParseAddr("192.0.2.1"), GroupV4},
		{"v4 unicast from unicast_src_ip",
			Config{Iface: "eth0", Source: netip.MustParseAddr("192.0.2.3"), Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
			Config{Iface: "eth0", Peers: []netip.Addr{netip.MustParseAddr("192.0.2.3")}},
			netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.2")},
		{"v6 multicast from link-local",
			Config{Iface: "eth0", IPv6: true}, Config{Iface: "eth0", IPv6: true},
			aLL, GroupV6},
		{"v6 unicast",
			Config{Iface: "eth0", IPv6: true, Source: netip.MustParseAddr("2001:db8::1"), Peers: []netip.Addr{netip.MustParseAddr("2001:db8::2")}},
			Config{Iface: "eth0", IPv6: true, Peers: []netip.Addr{netip.MustParseAddr("2001:db8::1")}},
			netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snd := open(t, a, tc.send)
			rcv := open(t, b, tc.rcv)
			if snd.Source() != tc.wantSrc {
				t.Fatalf("Source() = %s, want %s", snd.Source(), tc.wantSrc)
			}
			payload := []byte{0x31, byte(51 + i), 100, 1, 0, 100, 0, 0, 192, 0, 2, 100}
			got := exchange(t, snd, rcv, payload)
			if !bytes.Equal(got.Payload, payload) {
				t.Errorf("payload = %x, want %x", got.Payload, payload)
			}
			if got.Src != tc.wantSrc || got.Dst != tc.wantDst {
				t.Errorf("src/dst = %s -> %s, want %s -> %s", got.Src, got.Dst, tc.wantSrc, tc.wantDst)
			}
			if age := time.Since(got.Received); got.Received.IsZero() || age < 0 || age > 5*time.Second {
				t.Errorf("Received = %v (age %v), want the kernel's SO_TIMESTAMPNS stamp of just now", got.Received, age)
			}
			if got.TTL != TTL {
				t.Errorf("TTL = %d, want %d", got.TTL, TTL)
			}
			if got.Ifindex != bIdx {
				t.Errorf("ifindex = %d, want %d", got.Ifindex, bIdx)
			}
			// Multicast loop is off: the sender never hears itself.
			if p, err := recvWithin(t, snd, 150*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("sender received %+v, %v; want nothing", p, err)
			}
		})
	}
}

// unicast_ttl sets the TTL / hop limit of unicast adverts; multicast
// adverts keep 255 whatever it says.
func TestUnicastTTL(t *testing.T) {
	a, b := pair(t)
	tests := []struct {
		name      string
		send, rcv Config
		want      int
	}{
		{"v4 unicast_ttl 7",
			Config{Iface: "eth0", Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")}, UnicastTTL: 7},
			Config{Iface: "eth0", Peers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}, 7},
		{"v6 unicast_ttl 9",
			Config{Iface: "eth0", IPv6: true, Source: netip.MustParseAddr("2001:db8::1"), Peers: []netip.Addr{netip.MustParseAddr("2001:db8::2")}, UnicastTTL: 9},
			Config{Iface: "eth0", IPv6: true, Peers: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}, 9},
		{"v4 unicast default",
			Config{Iface: "eth0", Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
			Config{Iface: "eth0", Peers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}, TTL},
		{"v4 multicast ignores it",
			Config{Iface: "eth0", UnicastTTL: 7}, Config{Iface: "eth0"}, TTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snd := open(t, a, tc.send)
			rcv := open(t, b, tc.rcv)
			got := exchange(t, snd, rcv, []byte{0x31, 60, 100, 1, 0, 100, 0, 0, 192, 0, 2, 100})
			if got.TTL != tc.want {
				t.Errorf("TTL = %d, want %d", got.TTL, tc.want)
			}
		})
	}
}

// sendLowTTL sends one protocol-112 datagram with TTL / hop limit 1 from a
// plain socket, as a packet that crossed a router would arrive.
func sendLowTTL(h *testnet.Host, v6 bool, payload []byte) error {
	return h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Iface())
		if err != nil {
			return err
		}
		dom, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL
		var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: GroupV4.As4()}
		if v6 {
			dom, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS
			sa = &unix.SockaddrInet6{Addr: GroupV6.As16(), ZoneId: uint32(ifi.Index)}
		}
		fd, err := unix.Socket(dom, unix.SOCK_RAW|unix.SOCK_CLOEXEC, Protocol)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.BindToDevice(fd, ifi.Name); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
			return err
		}
		return unix.Sendto(fd, payload, 0, sa)
	})
}

func TestRecvReportsReceivedTTL(t *testing.T) {
	a, b := pair(t)
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv6=%v", v6), func(t *testing.T) {
			rcv := open(t, b, Config{Iface: "eth0", IPv6: v6})
			payload := []byte{0x31, 7, 100, 1}
			var got Packet
			testnet.Eventually(t, 5*time.Second, func() error {
				if err := sendLowTTL(a, v6, payload); err != nil {
					return err
				}
				var err error
				got, err = recvWithin(t, rcv, 200*time.Millisecond)
				return err
			})
			if got.TTL != 1 || !bytes.Equal(got.Payload, payload) {
				t.Errorf("got TTL %d payload %x, want TTL 1 payload %x", got.TTL, got.Payload, payload)
			}
		})
	}
}

func TestRecvStopsOnCancelAndClose(t *testing.T) {
	a, _ := pair(t)
	c := open(t, a, Config{Iface: "eth0"})

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Recv(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Recv after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not return after cancel")
	}

	// A later Recv with a live context is not poisoned by the earlier wake-up.
	if _, err := recvWithin(t, c, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recv with deadline = %v, want DeadlineExceeded", err)
	}

	go func() {
		_, err := c.Recv(context.Background())
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Recv after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not return after Close")
	}
	if err := c.Send([]byte{1}, GroupV4); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestOpenErrors(t *testing.T) {
	a, _ := pair(t)
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"v6 source on v4 conn", Config{Iface: "eth0", Source: netip.MustParseAddr("2001:db8::1")}, ErrFamily},
		{"v4 peer on v6 conn", Config{Iface: "eth0", IPv6: true, Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}, ErrFamily},
		{"no such interface", Config{Iface: "nosuch0"}, nil},
		{"unicast TTL 256", Config{Iface: "eth0", Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")}, UnicastTTL: 256}, ErrTTL},
		{"unicast TTL -1", Config{Iface: "eth0", Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")}, UnicastTTL: -1}, ErrTTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Do(func() error {
				c, err := Open(tc.cfg)
				if err == nil {
					c.Close()
				}
				return err
			})
			if err == nil {
				t.Fatalf("Open(%+v) succeeded", tc.cfg)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Open error = %v, want %v", err, tc.want)
			}
		})
	}
	// An interface without addresses has no source.
	a.MustExec("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	a.MustExec("ip", "link", "set", "d0", "addrgenmode", "none")
	a.MustExec("ip", "link", "set", "d0", "up")
	err := a.Do(func() error { _, err := Open(Config{Iface: "d0"}); return err })
	if !errors.Is(err, ErrNoSource) {
		t.Errorf("Open on address-less d0 = %v, want ErrNoSource", err)
	}
	c := open(t, a, Config{Iface: "eth0"})
	if err := c.Send([]byte{1}, GroupV6); !errors.Is(err, ErrFamily) {
		t.Errorf("Send v6 on v4 = %v, want ErrFamily", err)
	}
}
