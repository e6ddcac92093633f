package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

// XDP verdicts (enum xdp_action).
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

var verdictNames = map[uint32]string{0: "ABORTED", 1: "DROP", 2: "PASS", 3: "TX", 4: "REDIRECT"}

// lbMAC and lbIfindex are the fake interface prog.Run tests load against.
var (
	lbMAC     = mustMAC("02:00:00:00:0a:01")
	clientMAC = mustMAC("02:00:00:00:0c:01")
	otherMAC  = mustMAC("02:00:00:00:99:99")
)

const lbIfindex = 7

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// requireBPF skips unless the test can load BPF programs.
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs (run the dataplane tests as root)")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Skipf("cannot lift RLIMIT_MEMLOCK for BPF: %v", err)
	}
}

// fakeResolver answers from a table instead of the neighbour table.
type fakeResolver map[netip.Addr]fakeNeigh

// fakeNeigh is a neighbour entry (DR: Lookup) or, with src set, a route's
// next hop (TUN: LookupNextHop; mac is then the next hop's).
type fakeNeigh struct {
	mac     net.HardwareAddr
	ifindex int
	src     netip.Addr // the route's source address; zero: no route (LookupNextHop fails)
	mtu     int
}

var (
	errFakeUnknown = errors.New("fake resolver: unknown address")
	errFakeNoRoute = errors.New("fake resolver: no route")
)

func (f fakeResolver) Lookup(a netip.Addr) (net.HardwareAddr, int, error) {
	n, ok := f[a]
	if !ok {
		return nil, 0, fmt.Errorf("%w: %v", errFakeUnknown, a)
	}
	return n.mac, n.ifindex, nil
}

func (f fakeResolver) LookupNextHop(a netip.Addr) (nextHop, error) {
	n, ok := f[a]
	if !ok {
		return nextHop{}, fmt.Errorf("%w: %v", errFakeUnknown, a)
	}
	if !n.src.IsValid() {
		return nextHop{}, fmt.Errorf("%w: %v", errFakeNoRoute, a)
	}
	return nextHop{MAC: n.mac, Ifindex: n.ifindex, Src: n.src, MTU: n.mtu}, nil
}

// newTestDataplane loads the program without pins or an interface.
func newTestDataplane(t testing.TB, m uint32, res neighbours) *Dataplane {
	t.Helper()
	requireBPF(t)
	d, err := load(loadOptions{tableSize: m, ifindex: lbIfindex, ifname: "fake0", mac: lbMAC})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if res != nil {
		d.lvs.resolve = res
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// run passes frame through the program once and returns verdict and the
// (possibly rewritten) frame.
func run(t testing.TB, d *Dataplane, frame []byte) (uint32, []byte) {
	t.Helper()
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	ret, err := d.objs.XdpVip.Run(&opts)
	if err != nil {
		t.Fatalf("prog.Run: %v", err)
	}
	return ret, opts.DataOut
}

func counters(t testing.TB, d *Dataplane) map[string]uint64 {
	t.Helper()
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counterDelta returns the counters that changed between a and b.
func counterDelta(a, b map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range b {
		if v != a[k] {
			out[k] = v - a[k]
		}
	}
	return out
}
