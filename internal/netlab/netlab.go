// Package netlab builds throw-away networks out of network namespaces,
// veth pairs and a Linux bridge, and runs lab programs in them (nginx,
// keepalived, trafgen), for the end-to-end tests (through
// internal/testnet), the demo and the benchmarks. Nothing here needs a
// testing.TB: every step returns an error, and Close removes what was made.
//
// Two layouts:
//
//	New:      namespace P-sw with bridge br0, one port per host (the switch
//	          side of a veth); namespace P-NAME per host with lo and the
//	          host side of its veth ("eth0" unless WithIface)
//	NewPair:  two namespaces P-A and P-B joined by one veth, no bridge
//
// P is a random prefix (a tag and six hex digits), unique per lab. Every
// veth is created inside a lab namespace and its other end moved straight
// into the other one, so nothing is ever created in the root namespace.
package netlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"

	"github.com/xdpvip/xdpvip/internal/nsutil"
)

// BridgeName is the name of the bridge inside the switch namespace.
const BridgeName = "br0"

// DefaultIface is the name of a host's interface inside its namespace.
const DefaultIface = "eth0"

// maxIfaceLen is IFNAMSIZ-1.
const maxIfaceLen = 15

// namespaces are the namespaces one lab created, deleted by close.
type namespaces struct {
	prefix  string
	mu      sync.Mutex
	created []string
}

func newNamespaces(tag string) (*namespaces, error) {
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("netlab: random prefix: %w", err)
	}
	return &namespaces{prefix: tag + hex.EncodeToString(rnd[:])}, nil
}

// add creates namespace prefix-name with lo up.
func (s *namespaces) add(name string) (string, error) {
	ns := s.prefix + "-" + name
	if err := IP("netns", "add", ns); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.created = append(s.created, ns)
	s.mu.Unlock()
	return ns, IP("-n", ns, "link", "set", "lo", "up")
}

// close deletes the namespaces, newest first (their veth ends and the
// bridge go with them).
func (s *namespaces) close() error {
	s.mu.Lock()
	created := s.created
	s.created = nil
	s.mu.Unlock()
	var errs []error
	for i := len(created) - 1; i >= 0; i-- {
		if err := IP("netns", "del", created[i]); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// IP runs the ip command and folds its output into the error.
func IP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Net is a bridge lab: a switch namespace and the hosts plugged into it.
type Net struct {
	ns   *namespaces
	swNS string

	mu    sync.Mutex
	hosts []*Host
}

// New creates the switch namespace (IPv6 off there) and its bridge, with
// a prefix made of tag and random hex digits. On error nothing is left.
func New(tag string) (_ *Net, err error) {
	s, err := newNamespaces(tag)
	if err != nil {
		return nil, err
	}
	n := &Net{ns: s}
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	if n.swNS, err = s.add("sw"); err != nil {
		return nil, err
	}
	if err := IP("netns", "exec", n.swNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return nil, err
	}
	if err := IP("-n", n.swNS, "link", "add", BridgeName, "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return nil, err
	}
	return n, IP("-n", n.swNS, "link", "set", BridgeName, "up")
}

// Prefix is the unique name prefix of this lab's namespaces.
func (n *Net) Prefix() string { return n.ns.prefix }

// SwitchNS is the name of the namespace holding the bridge.
func (n *Net) SwitchNS() string { return n.swNS }

// Hosts are the hosts added so far, in order.
func (n *Net) Hosts() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.hosts...)
}

// Close deletes every namespace of the lab. Processes still running in
// them should have been stopped first.
func (n *Net) Close() error { return n.ns.close() }

// HostOption changes how AddHost builds a host.
type HostOption func(*hostConfig)

type hostConfig struct {
	mac   net.HardwareAddr
	iface string
	port  string
	addrs []netip.Prefix
}

// WithMAC gives the host's interface a fixed MAC address. It panics on a
// malformed address: that is a bug in the caller, not a runtime condition.
func WithMAC(mac string) HostOption {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(fmt.Sprintf("netlab.WithMAC(%q): %v", mac, err))
	}
	return func(c *hostConfig) { c.mac = hw }
}

// WithAddr adds one more address (CIDR form, e.g. "2001:db8::11/64") to
// the host's interface. It panics on a malformed prefix.
func WithAddr(prefix string) HostOption {
	p := netip.MustParsePrefix(prefix)
	return func(c *hostConfig) { c.addrs = append(c.addrs, p) }
}

// WithIface names the host's interface (default "eth0"; at most 15 bytes).
func WithIface(name string) HostOption {
	return func(c *hostConfig) { c.iface = name }
}

// WithPort names the switch side of the host's veth (default "pN", N the
// host's number).
func WithPort(name string) HostOption {
	return func(c *hostConfig) { c.port = name }
}

// AddHost creates a namespace named after the host, plugs it into the
// bridge and gives its interface addr (CIDR form; "" for none) plus any
// WithAddr addresses. IPv6 duplicate address detection is off inside the
// namespace so addresses, link-local included, are usable at once.
func (n *Net) AddHost(name, addr string, opts ...HostOption) (*Host, error) {
	cfg := hostConfig{iface: DefaultIface}
	if addr != "" {
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return nil, fmt.Errorf("netlab: AddHost(%q): address %q: %w", name, addr, err)
		}
		cfg.addrs = append(cfg.addrs, p)
	}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.iface) > maxIfaceLen {
		return nil, fmt.Errorf("netlab: AddHost(%q): interface name %q longer than %d bytes", name, cfg.iface, maxIfaceLen)
	}
	n.mu.Lock()
	if cfg.port == "" {
		cfg.port = fmt.Sprintf("p%d", len(n.hosts))
	}
	n.mu.Unlock()
	ns, err := n.ns.add(name)
	if err != nil {
		return nil, err
	}
	h := &Host{name: name, ns: ns, iface: cfg.iface, port: cfg.port, prefix: cfg.addrs}
	link := []string{"-n", n.swNS, "link", "add", h.port, "type", "veth", "peer", "name", h.iface, "netns", h.ns}
	if cfg.mac != nil {
		link = append(link, "address", cfg.mac.String())
	}
	steps := [][]string{
		{"netns", "exec", h.ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
		link,
		{"-n", n.swNS, "link", "set", h.port, "master", BridgeName, "up"},
	}
	if err := runAll(steps); err != nil {
		return nil, fmt.Errorf("netlab: AddHost(%q): %w", name, err)
	}
	if err := h.configure(); err != nil {
		return nil, fmt.Errorf("netlab: AddHost(%q): %w", name, err)
	}
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	return h, nil
}

// configure puts the host's addresses on its interface, brings it up and
// reads its MAC.
func (h *Host) configure() error {
	var steps [][]string
	for _, p := range h.prefix {
		a := []string{"-n", h.ns, "addr", "add", p.String(), "dev", h.iface}
		if p.Addr().Is6() {
			a = append(a, "nodad")
		}
		steps = append(steps, a)
	}
	steps = append(steps, []string{"-n", h.ns, "link", "set", h.iface, "up"})
	if err := runAll(steps); err != nil {
		return err
	}
	l, err := h.Link()
	if err != nil {
		return err
	}
	h.mac = l.Attrs().HardwareAddr
	return nil
}

func runAll(steps [][]string) error {
	for _, s := range steps {
		if err := IP(s...); err != nil {
			return err
		}
	}
	return nil
}

// SetLink brings the switch side of h's cable down or up, which the host
// sees as carrier loss (a cut cable), without touching the host's own
// interface flags.
func (n *Net) SetLink(h *Host, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return IP("-n", n.swNS, "link", "set", h.port, state)
}

// AttachSwitchPass puts a program that passes every frame (native XDP) on
// the switch side of h's cable, so that the frames h's XDP program sends
// with XDP_TX are received by the bridge: XDP_TX into a veth needs a
// program on its peer.
func (n *Net) AttachSwitchPass(h *Host) error {
	if err := nsutil.AttachXDPPass(n.swNS, h.port); err != nil {
		return fmt.Errorf("netlab: switch port of %s: %w", h.name, err)
	}
	return nil
}

// PairEnd is one side of NewPair: the namespace's name (after the
// prefix), its interface and address.
type PairEnd struct {
	Name  string
	Iface string
	Addr  netip.Prefix
}

// Pair is two namespaces joined by one veth.
type Pair struct {
	ns   *namespaces
	A, B *Host
}

// NewPair creates namespaces for a and b and one veth between them (made
// in a's namespace, b's end moved straight into b's). On error nothing is
// left.
func NewPair(tag string, a, b PairEnd) (_ *Pair, err error) {
	s, err := newNamespaces(tag)
	if err != nil {
		return nil, err
	}
	p := &Pair{ns: s}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	for _, e := range []PairEnd{a, b} {
		if len(e.Iface) > maxIfaceLen || e.Iface == "" {
			return nil, fmt.Errorf("netlab: NewPair: interface name %q must have 1 to %d bytes", e.Iface, maxIfaceLen)
		}
	}
	if p.A, err = p.addEnd(a); err != nil {
		return nil, err
	}
	if p.B, err = p.addEnd(b); err != nil {
		return nil, err
	}
	if err := IP("-n", p.A.ns, "link", "add", a.Iface, "type", "veth", "peer", "name", b.Iface, "netns", p.B.ns); err != nil {
		return nil, err
	}
	for _, h := range []*Host{p.A, p.B} {
		if err := h.configure(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Pair) addEnd(e PairEnd) (*Host, error) {
	ns, err := p.ns.add(e.Name)
	if err != nil {
		return nil, err
	}
	h := &Host{name: e.Name, ns: ns, iface: e.Iface}
	if e.Addr.IsValid() {
		h.prefix = []netip.Prefix{e.Addr}
	}
	return h, nil
}

// Prefix is the unique name prefix of the pair's namespaces.
func (p *Pair) Prefix() string { return p.ns.prefix }

// Close deletes both namespaces (and the veth with them).
func (p *Pair) Close() error { return p.ns.close() }
