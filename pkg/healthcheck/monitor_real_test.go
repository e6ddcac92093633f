package healthcheck

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestMonitorRealListener runs a TCP_CHECK Monitor on the real clock
// against a loopback listener: stopping the listener takes the server down
// within delay_loop x (retry+1) + connect_timeout, starting it again brings
// it back up.
func TestMonitorRealListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go serve(ln)
	chk, err := NewTCPCheck(TCPSpec{Target: Target{Addr: addr}})
	if err != nil {
		t.Fatal(err)
	}
	timing := Timing{DelayLoop: 100 * time.Millisecond, Retry: 2, DelayBeforeRetry: 100 * time.Millisecond, ConnectTimeout: 300 * time.Millisecond}
	events := make(chan Event, 10)
	m, err := NewMonitor(MonitorConfig{VirtualServer: "vs", RealServer: addr.String(), Weight: 1,
		Checkers: []CheckerConfig{{Name: "TCP_CHECK", Checker: chk, Timing: timing, Alpha: true}},
		OnChange: func(e Event) { events <- e }, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Stop()

	wait := func(kind EventKind, bound time.Duration) Event {
		t.Helper()
		select {
		case e := <-events:
			if e.Kind != kind {
				t.Fatalf("event %v, want %v", e, kind)
			}
			return e
		case <-time.After(bound):
			t.Fatalf("no %v event within %v", kind, bound)
		}
		return Event{}
	}
	wait(ServerUp, 2*time.Second) // alpha: up after the first success

	ln.Close()
	stopped := time.Now()
	e := wait(ServerDown, 5*time.Second)
	bound := timing.DelayLoop*time.Duration(timing.Retry+1) + timing.ConnectTimeout
	if took := time.Since(stopped); took > bound+200*time.Millisecond {
		t.Errorf("down after %v, bound %v", took, bound)
	}
	if !errors.Is(e.Reason, ErrConnect) {
		t.Errorf("down reason %v, want ErrConnect", e.Reason)
	}

	var ln2 net.Listener
	testnet.Eventually(t, 5*time.Second, func() error {
		var err error
		ln2, err = net.Listen("tcp", netip.AddrPortFrom(addr.Addr(), addr.Port()).String())
		return err
	})
	defer ln2.Close()
	go serve(ln2)
	wait(ServerUp, 2*time.Second)
	if s := m.Status(); !s.Up || s.Checkers[0].LastError != nil {
		t.Errorf("status %+v", s)
	}
}
