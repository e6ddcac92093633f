package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/xdpvip/xdpvip/internal/nsutil"
)

// Topology (prefix P is random, e.g. "xb3f9a1c"):
//
//	namespace P-gen:  gen0 198.18.0.1/24  (trafgen; an XDP_DROP sink takes what comes back)
//	namespace P-lb:   lb0  198.18.0.2/24  (the path under test)
//
// One veth pair, created in P-gen with its peer placed straight into P-lb,
// so nothing is ever created in the root namespace. The addresses are the
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

// topology is the two namespaces and what is known about their ends.
type topology struct {
	prefix      string
	genNS, lbNS string
	genMAC      net.HardwareAddr
	lbMAC       net.HardwareAddr
	created     []string
}

// newTopology builds the namespaces and the veth; on error it deletes
// whatever it created.
func newTopology() (_ *topology, err error) {
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("random prefix: %w", err)
	}
	t := &topology{prefix: "xb" + hex.EncodeToString(rnd[:])}
	t.genNS, t.lbNS = t.prefix+"-gen", t.prefix+"-lb"
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	for _, ns := range []string{t.genNS, t.lbNS} {
		if err := ipCmd("netns", "add", ns); err != nil {
			return nil, err
		}
		t.created = append(t.created, ns)
		if err := ipCmd("-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
	}
	steps := [][]string{
		{"-n", t.genNS, "link", "add", genIface, "type", "veth", "peer", "name", lbIface, "netns", t.lbNS},
		{"-n", t.genNS, "addr", "add", genAddr.String(), "dev", genIface},
		{"-n", t.lbNS, "addr", "add", lbAddr.String(), "dev", lbIface},
		{"-n", t.genNS, "link", "set", genIface, "up"},
		{"-n", t.lbNS, "link", "set", lbIface, "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return nil, err
		}
	}
	if t.genMAC, err = linkMAC(t.genNS, genIface); err != nil {
		return nil, err
	}
	if t.lbMAC, err = linkMAC(t.lbNS, lbIface); err != nil {
		return nil, err
	}
	// The real server, resolved for good: the benchmark measures
	// forwarding, not ARP.
	if err := ipCmd("-n", t.lbNS, "neigh", "replace", realAddr.String(), "lladdr", t.genMAC.String(),
		"dev", lbIface, "nud", "permanent"); err != nil {
		return nil, err
	}
	return t, nil
}

// Close deletes the namespaces the topology created.
func (t *topology) Close() {
	for i := len(t.created) - 1; i >= 0; i-- {
		_ = ipCmd("netns", "del", t.created[i])
	}
	t.created = nil
}

// ipCmd runs the ip command and folds its output into the error.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsOutput runs a command inside namespace ns and returns its output.
func nsOutput(ns string, name string, args ...string) ([]byte, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s in %s: %w", name, strings.Join(args, " "), ns, err)
	}
	return out, nil
}

func linkMAC(ns, iface string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := inNS(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	return mac, err
}

// inNS runs f inside namespace ns (see nsutil.Do).
func inNS(ns string, f func() error) error { return nsutil.Do(ns, f) }
