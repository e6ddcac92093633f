package healthcheck

import (
	"bufio"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// tcpServer is a loopback TCP listener whose connections are handled by
// handle (nil: accept and close at once). It records what it receives.
type tcpServer struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string // first request line/bytes of each connection
}

func startTCP(t *testing.T, handle func(c net.Conn, s *tcpServer)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{ln: ln}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				// Unblock handlers when the test ends.
				go func() { <-done; c.SetDeadline(time.Unix(1, 0)) }()
				if handle != nil {
					handle(c, s)
				}
			}()
		}
	}()
	return s
}

func (s *tcpServer) addr() netip.AddrPort { return s.ln.Addr().(*net.TCPAddr).AddrPort() }

func (s *tcpServer) record(v string) {
	s.mu.Lock()
	s.seen = append(s.seen, v)
	s.mu.Unlock()
}

func (s *tcpServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// readHead reads an HTTP request head and returns it.
func readHead(r *bufio.Reader) string {
	var head string
	for {
		l, err := r.ReadString('\n')
		head += l
		if err != nil || l == "\r\n" || l == "\n" {
			return head
		}
	}
}

// closedTCPPort returns a loopback port nobody listens on.
func closedTCPPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return ap
}

// closedUDPPort returns a loopback UDP port nobody listens on.
func closedUDPPort(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	return ap
}

// startUDP runs a loopback UDP server answering each datagram with
// reply(request); a nil reply means no answer.
func startUDP(t *testing.T, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if r := reply(append([]byte(nil), buf[:n]...)); r != nil {
				c.WriteToUDPAddrPort(r, from)
			}
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}
