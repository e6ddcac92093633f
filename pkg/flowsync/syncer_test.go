package flowsync

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/dataplane"
)

// fakeTable is a flow table in memory.
type fakeTable struct {
	mu    sync.Mutex
	flows map[netip.AddrPort]dataplane.Flow
}

func newFakeTable(fs ...dataplane.Flow) *fakeTable {
	t := &fakeTable{flows: map[netip.AddrPort]dataplane.Flow{}}
	for _, f := range fs {
		t.flows[f.Client] = f
	}
	return t
}

func (t *fakeTable) Flows(int) ([]dataplane.Flow, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]dataplane.Flow, 0, len(t.flows))
	for _, f := range t.flows {
		out = append(out, f)
	}
	return out, nil
}

func (t *fakeTable) PinFlows(fs []dataplane.Flow) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, f := range fs {
		if _, ok := t.flows[f.Client]; !ok {
			t.flows[f.Client] = f
			n++
		}
	}
	return n, nil
}

func (t *fakeTable) get(c netip.AddrPort) (dataplane.Flow, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.flows[c]
	return f, ok
}

func freePort(t *testing.T) int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestSyncersExchangeFlows: a syncer whose peer is itself (127.0.0.1)
// reads flows from table a and pins what it receives into table b: every
// flow arrives once, and known flows are not sent again.
func TestSyncersExchangeFlows(t *testing.T) {
	port := freePort(t)
	var fs []dataplane.Flow
	for i := range 60 {
		fs = append(fs, flow("10.78.50.2:"+strconv.Itoa(40000+i), "10.78.9.1:80", "10.78.1.21:80"))
	}
	a, b := newFakeTable(fs...), newFakeTable()
	s, err := Start(Config{Table: tableSplit{read: a, pin: b}, Peers: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Port: port, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := b.get(fs[59].Client); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flows not synced: %+v", s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f, _ := b.get(fs[7].Client); f != fs[7] {
		t.Errorf("synced %v, want %v", f, fs[7])
	}
	time.Sleep(100 * time.Millisecond)
	st := s.Stats()
	if st.Pinned != 60 || st.Sent != 60 {
		t.Errorf("stats %+v: want 60 sent once and 60 pinned (no resend of known flows)", st)
	}
}

func TestSyncerDropsStrangers(t *testing.T) {
	port := freePort(t)
	b := newFakeTable()
	s, err := Start(Config{Table: b, Peers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, _ := Marshal([]dataplane.Flow{flow("10.0.0.1:1", "10.0.0.2:80", "10.0.0.3:80")})
	if _, err := c.Write(d); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Dropped == 0 {
		if time.Now().After(deadline) {
			t.Fatal("datagram from a stranger not counted as dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(b.flows) != 0 {
		t.Errorf("a stranger's flow was pinned")
	}
}

// tableSplit reads flows from one table and pins into another.
type tableSplit struct{ read, pin *fakeTable }

func (t tableSplit) Flows(n int) ([]dataplane.Flow, error)    { return t.read.Flows(n) }
func (t tableSplit) PinFlows(f []dataplane.Flow) (int, error) { return t.pin.PinFlows(f) }
