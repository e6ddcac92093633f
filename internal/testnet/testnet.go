// Package testnet builds throw-away test networks out of network namespaces,
// veth pairs and a Linux bridge, so end-to-end tests never touch the host's
// own interfaces, addresses or routes.
//
// Layout of one test network (prefix P is unique per test, e.g. "xv3f9a1c"):
//
//	namespace P-sw:    bridge br0, one port pN per host (veth, the switch side)
//	namespace P-NAME:  lo + the host side of the veth ("eth0" unless WithIface)
//
// Every veth pair is created inside the switch namespace and its host end is
// moved straight into the host namespace, so nothing is ever created in the
// root namespace. Everything is deleted in t.Cleanup, also when the test fails.
//
// Usage:
//
//	n := testnet.New(t)
//	a := n.AddHost("lvs1", "192.0.2.11/24")
//	b := n.AddHost("client", "192.0.2.100/24", testnet.WithMAC("02:00:00:00:00:64"))
//	out, err := b.Exec(ctx, "ping", "-c1", "192.0.2.11")
package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdpvip/xdpvip/internal/nsutil"
)

// BridgeName is the name of the bridge inside the switch namespace.
const BridgeName = "br0"

// DefaultIface is the name of a host's interface inside its namespace.
const DefaultIface = "eth0"

// Net is one test network: a switch namespace with a bridge and the hosts
// plugged into it.
type Net struct {
	t      testing.TB
	prefix string
	swNS   string

	mu    sync.Mutex
	hosts []*Host
}

// Host is one network namespace with one interface plugged into the bridge.
type Host struct {
	net    *Net
	name   string
	ns     string // namespace name, as in /var/run/netns
	iface  string
	port   string // switch-side veth name
	mac    net.HardwareAddr
	prefix []netip.Prefix
}

// HostOption changes how AddHost builds a host.
type HostOption func(*hostConfig)

type hostConfig struct {
	mac   net.HardwareAddr
	iface string
	addrs []netip.Prefix
}

// WithMAC gives the host's interface a fixed MAC address. It panics on a
// malformed address: that is a bug in the test, not a runtime condition.
func WithMAC(mac string) HostOption {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(fmt.Sprintf("testnet.WithMAC(%q): %v", mac, err))
	}
	return func(c *hostConfig) { c.mac = hw }
}

// WithAddr adds one more address (CIDR form, e.g. "2001:db8::11/64") to the
// host's interface.
func WithAddr(prefix string) HostOption {
	p := netip.MustParsePrefix(prefix)
	return func(c *hostConfig) { c.addrs = append(c.addrs, p) }
}

// WithIface names the host's interface (default "eth0"; at most 15 bytes).
func WithIface(name string) HostOption {
	return func(c *hostConfig) { c.iface = name }
}

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
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("testnet: random prefix: %v", err)
	}
	n := &Net{t: t, prefix: "xv" + hex.EncodeToString(rnd[:])}
	n.swNS = n.prefix + "-sw"
	t.Cleanup(n.cleanup)

	n.must("ip", "netns", "add", n.swNS)
	n.must("ip", "-n", n.swNS, "link", "set", "lo", "up")
	n.must("ip", "netns", "exec", n.swNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	n.must("ip", "-n", n.swNS, "link", "add", BridgeName, "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	n.must("ip", "-n", n.swNS, "link", "set", BridgeName, "up")
	return n
}

// Prefix is the unique name prefix of this network's namespaces.
func (n *Net) Prefix() string { return n.prefix }

// SwitchNS is the name of the namespace holding the bridge.
func (n *Net) SwitchNS() string { return n.swNS }

// AddHost creates a namespace named after the host, plugs it into the bridge
// and gives its interface addr (CIDR form; "" for none) plus any WithAddr
// addresses. IPv6 duplicate address detection is off inside the namespace so
// addresses, link-local included, are usable at once.
func (n *Net) AddHost(name, addr string, opts ...HostOption) *Host {
	n.t.Helper()
	cfg := hostConfig{iface: DefaultIface}
	if addr != "" {
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			n.t.Fatalf("testnet: AddHost(%q): address %q: %v", name, addr, err)
		}
		cfg.addrs = append(cfg.addrs, p)
	}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.iface) > 15 {
		n.t.Fatalf("testnet: AddHost(%q): interface name %q longer than 15 bytes", name, cfg.iface)
	}

	n.mu.Lock()
	h := &Host{
		net:    n,
		name:   name,
		ns:     n.prefix + "-" + name,
		iface:  cfg.iface,
		port:   fmt.Sprintf("p%d", len(n.hosts)),
		prefix: cfg.addrs,
	}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()

	n.must("ip", "netns", "add", h.ns)
	n.must("ip", "-n", h.ns, "link", "set", "lo", "up")
	n.must("ip", "netns", "exec", h.ns, "sysctl", "-qw",
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	args := []string{"-n", n.swNS, "link", "add", h.port, "type", "veth", "peer", "name", h.iface, "netns", h.ns}
	if cfg.mac != nil {
		args = append(args, "address", cfg.mac.String())
	}
	n.must("ip", args...)
	n.must("ip", "-n", n.swNS, "link", "set", h.port, "master", BridgeName, "up")
	for _, p := range cfg.addrs {
		a := []string{"-n", h.ns, "addr", "add", p.String(), "dev", h.iface}
		if p.Addr().Is6() {
			a = append(a, "nodad")
		}
		n.must("ip", a...)
	}
	n.must("ip", "-n", h.ns, "link", "set", h.iface, "up")

	link, err := h.link()
	if err != nil {
		n.t.Fatalf("testnet: AddHost(%q): %v", name, err)
	}
	h.mac = link.Attrs().HardwareAddr
	return h
}

// SetLink brings the switch side of host's cable down or up, which the host
// sees as carrier loss (a cut cable), without touching the host's own
// interface flags.
func (n *Net) SetLink(h *Host, up bool) {
	n.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	n.must("ip", "-n", n.swNS, "link", "set", h.port, state)
}

func (n *Net) must(name string, args ...string) {
	n.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("testnet: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (n *Net) cleanup() {
	n.mu.Lock()
	hosts := n.hosts
	n.mu.Unlock()
	for _, h := range hosts {
		deleteNS(n.t, h.ns)
	}
	deleteNS(n.t, n.swNS)
}

// deleteNS removes a named namespace; processes still inside it were killed
// by their own cleanups (registered later, so run earlier).
func deleteNS(t testing.TB, name string) {
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		if !strings.Contains(string(out), "No such file") {
			t.Errorf("testnet: ip netns del %s: %v: %s", name, err, out)
		}
	}
}

// Name is the host's name as given to AddHost.
func (h *Host) Name() string { return h.name }

// NS is the name of the host's namespace (usable with ip -n / ip netns exec).
func (h *Host) NS() string { return h.ns }

// Iface is the name of the host's interface inside its namespace.
func (h *Host) Iface() string { return h.iface }

// MAC is the hardware address of the host's interface.
func (h *Host) MAC() net.HardwareAddr { return h.mac }

// Addrs are the addresses AddHost put on the interface.
func (h *Host) Addrs() []netip.Prefix { return append([]netip.Prefix(nil), h.prefix...) }

// Addr is the first address AddHost put on the interface of the given
// family (4 or 6); the zero Addr if there is none.
func (h *Host) Addr(family int) netip.Addr {
	for _, p := range h.prefix {
		if (family == 4) == p.Addr().Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// Exec runs a command inside the host's namespace and returns its combined
// output. A non-zero exit is an error carrying the output.
func (h *Host) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), h.ns, err, bytes.TrimSpace(out))
	}
	return out, nil
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

// Process is a command started in a host's namespace by Start.
type Process struct {
	Cmd     *exec.Cmd
	LogPath string // stdout and stderr of the process

	done chan struct{}
	err  error
}

// Wait waits for the process to exit and returns its exit error.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Start runs a command in the background inside the host's namespace. Its
// stdout and stderr go to a file under t.TempDir(), printed in the test log
// if the test fails. The process (and its process group) is killed at
// cleanup if still running.
func (h *Host) Start(name string, args ...string) *Process {
	t := h.net.t
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), h.name+"-"+filepath.Base(name)+"-*.log")
	if err != nil {
		t.Fatalf("testnet: Start: %v", err)
	}
	// nsenter instead of "ip netns exec": the pid we get is the process itself,
	// so signals reach it directly.
	cmd := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + h.ns, "--", name}, args...)...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// No Pdeathsig: the kernel fires it when the *thread* that forked the
	// child exits, and Do throws threads away, so a later Do could kill a
	// process started here. Cleanup kills the process group instead.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("testnet: Start %s in %s: %v", name, h.ns, err)
	}
	p := &Process{Cmd: cmd, LogPath: logf.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("testnet: output of %s %s in %s:\n%s", name, strings.Join(args, " "), h.ns, p.Log())
		}
	})
	return p
}

// Do runs f on a locked OS thread switched into the host's namespace
// (nsutil.Do). Sockets f opens stay in that namespace and may be used from
// any goroutine afterwards. Goroutines f starts do NOT run in the namespace.
func (h *Host) Do(f func() error) error { return nsutil.Do(h.ns, f) }

// MustDo is Do that fails the test on error.
func (h *Host) MustDo(f func() error) {
	h.net.t.Helper()
	if err := h.Do(f); err != nil {
		h.net.t.Fatal(err)
	}
}

// Handle returns a netlink handle bound to the host's namespace; it is
// closed at cleanup.
func (h *Host) Handle() (*netlink.Handle, error) {
	nh, err := h.handle()
	if err != nil {
		return nil, err
	}
	h.net.t.Cleanup(nh.Close)
	return nh, nil
}

func (h *Host) handle() (*netlink.Handle, error) { return nsutil.Handle(h.ns) }

func (h *Host) link() (netlink.Link, error) {
	nh, err := h.handle()
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	l, err := nh.LinkByName(h.iface)
	if err != nil {
		return nil, fmt.Errorf("testnet: %s in %s: %w", h.iface, h.ns, err)
	}
	return l, nil
}

// ErrNoNeighbor is returned by Neigh when the host has no entry for the address.
var ErrNoNeighbor = errors.New("no neighbour entry")

// Neighbor is one entry of a host's neighbour (ARP / NDP) table.
type Neighbor struct {
	Addr  netip.Addr
	MAC   net.HardwareAddr
	State int // NUD_* bits (netlink.NUD_REACHABLE, ...)
}

// Usable reports whether the entry holds a MAC the kernel would send to
// (not INCOMPLETE, FAILED or NOARP-without-address).
func (n Neighbor) Usable() bool {
	return len(n.MAC) > 0 && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0
}

func (n Neighbor) String() string {
	return fmt.Sprintf("%s lladdr %s state %#x", n.Addr, n.MAC, n.State)
}

// Neigh reads the host's neighbour entry for addr on its interface (what
// `ip neigh` / `arp -n` show). It returns ErrNoNeighbor if there is none.
func (h *Host) Neigh(addr netip.Addr) (Neighbor, error) {
	nh, err := h.handle()
	if err != nil {
		return Neighbor{}, err
	}
	defer nh.Close()
	l, err := nh.LinkByName(h.iface)
	if err != nil {
		return Neighbor{}, fmt.Errorf("testnet: %s in %s: %w", h.iface, h.ns, err)
	}
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	list, err := nh.NeighList(l.Attrs().Index, family)
	if err != nil {
		return Neighbor{}, fmt.Errorf("testnet: neighbour list in %s: %w", h.ns, err)
	}
	for _, e := range list {
		a, ok := netip.AddrFromSlice(e.IP)
		if ok && a.Unmap() == addr.Unmap() {
			return Neighbor{Addr: addr, MAC: e.HardwareAddr, State: e.State}, nil
		}
	}
	return Neighbor{}, fmt.Errorf("%s on %s in %s: %w", addr, h.iface, h.ns, ErrNoNeighbor)
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
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		timer := time.NewTimer(wait)
		<-timer.C
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}
