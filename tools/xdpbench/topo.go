package main

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/xdpvip/xdpvip/internal/netlab"
	"github.com/xdpvip/xdpvip/internal/nsutil"
)

// Topology (prefix P is random, e.g. "xb3f9a1c"):
//
//	namespace P-gen:  gen0 198.18.0.1/24  (trafgen; an XDP_DROP sink takes what comes back)
//	namespace P-lb:   lb0  198.18.0.2/24  (the path under test)
//
// One veth pair (netlab.NewPair), created in P-gen with its peer placed
// straight into P-lb, so nothing is ever created in the root namespace. The addresses are the
// benchmarking range of RFC 2544 (198.18.0.0/15). The "real server"
// 198.18.0.3 is a permanent neighbour entry on lb0 holding gen0's MAC:
// what the XDP program sends on with XDP_TX goes back down the veth to
// the sink. Close deletes both namespaces (and the veth with them).
const (
	genIface = "gen0"
	lbIface  = "lb0"
)

var (
	genAddr  = netip.MustParsePrefix("198.18.0.1/24")
	lbAddr   = netip.MustParsePrefix("198.18.0.2/24")
	realAddr = netip.MustParseAddr("198.18.0.3")
	vipAddr  = netip.MustParseAddr("198.18.0.100")
)

// topology is the two namespaces (a netlab pair) and what is known
// about their ends.
type topology struct {
	*netlab.Pair
	prefix      string
	genNS, lbNS string
	genMAC      net.HardwareAddr
	lbMAC       net.HardwareAddr
}

// newTopology builds the namespaces and the veth; on error it deletes
// whatever it created.
func newTopology() (*topology, error) {
	p, err := netlab.NewPair("xb",
		netlab.PairEnd{Name: "gen", Iface: genIface, Addr: genAddr},
		netlab.PairEnd{Name: "lb", Iface: lbIface, Addr: lbAddr})
	if err != nil {
		return nil, err
	}
	t := &topology{Pair: p, prefix: p.Prefix(), genNS: p.A.NS(), lbNS: p.B.NS(), genMAC: p.A.MAC(), lbMAC: p.B.MAC()}
	// The real server, resolved for good: the benchmark measures
	// forwarding, not ARP.
	if err := netlab.IP("-n", t.lbNS, "neigh", "replace", realAddr.String(), "lladdr", t.genMAC.String(),
		"dev", lbIface, "nud", "permanent"); err != nil {
		_ = p.Close()
		return nil, err
	}
	return t, nil
}

// nsOutput runs a command inside namespace ns and returns its output.
func nsOutput(ns string, name string, args ...string) ([]byte, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s in %s: %w", name, strings.Join(args, " "), ns, err)
	}
	return out, nil
}

// inNS runs f inside namespace ns (see nsutil.Do).
func inNS(ns string, f func() error) error { return nsutil.Do(ns, f) }
