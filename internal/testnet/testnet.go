// Package testnet is internal/netlab for tests: a lab network whose steps
// fail the test instead of returning errors, whose processes log into
// t.TempDir() and are killed at cleanup, and which is deleted in
// t.Cleanup, also when the test fails.
//
// Layout of one test network (prefix P is unique per test, e.g. "xv3f9a1c"):
//
//	namespace P-sw:    bridge br0, one port pN per host (veth, the switch side)
//	namespace P-NAME:  lo + the host side of the veth ("eth0" unless WithIface)
//
// Usage:
//
//	n := testnet.New(t)
//	a := n.AddHost("lvs1", "192.0.2.11/24")
//	b := n.AddHost("client", "192.0.2.100/24", testnet.WithMAC("02:00:00:00:00:64"))
//	out, err := b.Exec(ctx, "ping", "-c1", "192.0.2.11")
package testnet

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdpvip/xdpvip/internal/netlab"
)

// BridgeName is the name of the bridge inside the switch namespace.
const BridgeName = netlab.BridgeName

// DefaultIface is the name of a host's interface inside its namespace.
const DefaultIface = netlab.DefaultIface

// Net is one test network: a switch namespace with a bridge and the hosts
// plugged into it.
type Net struct {
	t   testing.TB
	lab *netlab.Net
}

// Host is one network namespace with one interface plugged into the
// bridge: a netlab.Host whose Must* steps, Start and Handle are tied to
// the test.
type Host struct {
	*netlab.Host
	net *Net
}

// HostOption changes how AddHost builds a host.
type HostOption = netlab.HostOption

// Process is a command started in a host's namespace by Start.
type Process = netlab.Process

// Neighbor is one entry of a host's neighbour (ARP / NDP) table.
type Neighbor = netlab.Neighbor

// ErrNoNeighbor is returned by Neigh when the host has no entry for the address.
var ErrNoNeighbor = netlab.ErrNoNeighbor

// WithMAC gives the host's interface a fixed MAC address. It panics on a
// malformed address: that is a bug in the test, not a runtime condition.
func WithMAC(mac string) HostOption { return netlab.WithMAC(mac) }

// WithAddr adds one more address (CIDR form, e.g. "2001:db8::11/64") to the
// host's interface.
func WithAddr(prefix string) HostOption { return netlab.WithAddr(prefix) }

// WithIface names the host's interface (default "eth0"; at most 15 bytes).
func WithIface(name string) HostOption { return netlab.WithIface(name) }

// Require skips the test unless it runs as root with the ip command available
// and without -short.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("testnet: skipped in -short mode (needs network namespaces)")
	}
	if os.Geteuid() != 0 {
		t.Skip("testnet: needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("testnet: needs the ip command (iproute2)")
	}
}

// New creates the switch namespace and its bridge. It skips the test when it
// cannot run (see Require).
func New(t testing.TB) *Net {
	t.Helper()
	Require(t)
	lab, err := netlab.New("xv")
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	n := &Net{t: t, lab: lab}
	t.Cleanup(func() {
		// Processes still inside were killed by their own cleanups
		// (registered later, so run earlier).
		if err := lab.Close(); err != nil {
			t.Errorf("testnet: %v", err)
		}
	})
	return n
}

// Prefix is the unique name prefix of this network's namespaces.
func (n *Net) Prefix() string { return n.lab.Prefix() }

// SwitchNS is the name of the namespace holding the bridge.
func (n *Net) SwitchNS() string { return n.lab.SwitchNS() }

// Lab is the network as a netlab.Net.
func (n *Net) Lab() *netlab.Net { return n.lab }

// AddHost creates a namespace named after the host, plugs it into the bridge
// and gives its interface addr (CIDR form; "" for none) plus any WithAddr
// addresses. IPv6 duplicate address detection is off inside the namespace so
// addresses, link-local included, are usable at once.
func (n *Net) AddHost(name, addr string, opts ...HostOption) *Host {
	n.t.Helper()
	h, err := n.lab.AddHost(name, addr, opts...)
	if err != nil {
		n.t.Fatalf("testnet: %v", err)
	}
	return &Host{Host: h, net: n}
}

// SetLink brings the switch side of host's cable down or up, which the host
// sees as carrier loss (a cut cable), without touching the host's own
// interface flags.
func (n *Net) SetLink(h *Host, up bool) {
	n.t.Helper()
	if err := n.lab.SetLink(h.Host, up); err != nil {
		n.t.Fatalf("testnet: %v", err)
	}
}

// AttachSwitchPass puts an XDP pass program on the switch side of h's
// cable (see netlab.Net.AttachSwitchPass): XDP_TX into a veth needs one
// on its peer.
func (n *Net) AttachSwitchPass(h *Host) {
	n.t.Helper()
	if err := n.lab.AttachSwitchPass(h.Host); err != nil {
		n.t.Fatalf("testnet: %v", err)
	}
}

// MustExec is Exec that fails the test on error.
func (h *Host) MustExec(name string, args ...string) []byte {
	h.net.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, name, args...)
	if err != nil {
		h.net.t.Fatalf("testnet: %v", err)
	}
	return out
}

// Start runs a command in the background inside the host's namespace. Its
// stdout and stderr go to a file under t.TempDir(), printed in the test log
// if the test fails. The process (and its process group) is killed at
// cleanup if still running.
func (h *Host) Start(name string, args ...string) *Process {
	t := h.net.t
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), h.Name()+"-"+filepath.Base(name)+"-*.log")
	if err != nil {
		t.Fatalf("testnet: Start: %v", err)
	}
	logf.Close()
	p, err := h.Host.Start(logf.Name(), name, args...)
	if err != nil {
		t.Fatalf("testnet: Start %s in %s: %v", name, h.NS(), err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("testnet: output of %s %s in %s:\n%s", name, strings.Join(args, " "), h.NS(), p.Log())
		}
	})
	return p
}

// MustDo is Do that fails the test on error.
func (h *Host) MustDo(f func() error) {
	h.net.t.Helper()
	if err := h.Do(f); err != nil {
		h.net.t.Fatal(err)
	}
}

// ServeTCP listens on addr (host:port, TCP over IPv4; over IPv6 when host
// is a bracketed IPv6 address) in h's namespace until t ends and hands
// each connection to handle in a goroutine of its own.
func (h *Host) ServeTCP(t testing.TB, addr string, handle func(net.Conn)) {
	t.Helper()
	network := "tcp4"
	if strings.HasPrefix(addr, "[") {
		network = "tcp6"
	}
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	}); err != nil {
		t.Fatalf("testnet: %s: %v", h.Name(), err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
}

// Handle returns a netlink handle bound to the host's namespace; it is
// closed at cleanup.
func (h *Host) Handle() (*netlink.Handle, error) {
	nh, err := h.Host.Handle()
	if err != nil {
		return nil, err
	}
	h.net.t.Cleanup(nh.Close)
	return nh, nil
}

// Eventually calls f until it returns nil or timeout passes, then fails the
// test with f's last error. It polls with a short back-off, not a fixed sleep.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := Poll(timeout, f); err != nil {
		t.Fatalf("testnet: condition not met within %v: %v", timeout, err)
	}
}

// Poll calls f until it returns nil or timeout passes and returns f's last
// error (nil on success).
func Poll(timeout time.Duration, f func() error) error { return netlab.Poll(timeout, f) }
