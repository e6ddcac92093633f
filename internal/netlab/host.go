package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xdpvip/xdpvip/internal/nsutil"
)

// Host is one network namespace with one interface of the lab.
type Host struct {
	name   string
	ns     string // namespace name, as in /var/run/netns
	iface  string
	port   string // switch-side veth name ("" in a Pair)
	mac    net.HardwareAddr
	prefix []netip.Prefix
}

// Name is the host's name as given to AddHost.
func (h *Host) Name() string { return h.name }

// NS is the name of the host's namespace (usable with ip -n / ip netns exec).
func (h *Host) NS() string { return h.ns }

// Iface is the name of the host's interface inside its namespace.
func (h *Host) Iface() string { return h.iface }

// MAC is the hardware address of the host's interface.
func (h *Host) MAC() net.HardwareAddr { return h.mac }

// Addrs are the addresses the lab put on the interface.
func (h *Host) Addrs() []netip.Prefix { return append([]netip.Prefix(nil), h.prefix...) }

// Addr is the first address the lab put on the interface of the given
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

// Do runs f on a locked OS thread switched into the host's namespace
// (nsutil.Do). Sockets f opens stay in that namespace and may be used from
// any goroutine afterwards. Goroutines f starts do NOT run in the namespace.
func (h *Host) Do(f func() error) error { return nsutil.Do(h.ns, f) }

// Enter locks the calling goroutine to its OS thread and switches that
// thread into the host's namespace for good: the goroutine must never
// unlock, so that the runtime throws the thread away when it ends.
func (h *Host) Enter() error {
	ns, err := netns.GetFromName(h.ns)
	if err != nil {
		return fmt.Errorf("netlab: open namespace %s: %w", h.ns, err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("netlab: enter namespace %s: %w", h.ns, err)
	}
	return nil
}

// Handle returns a netlink handle bound to the host's namespace; the
// caller closes it.
func (h *Host) Handle() (*netlink.Handle, error) { return nsutil.Handle(h.ns) }

// Link is the host's interface as netlink sees it.
func (h *Host) Link() (netlink.Link, error) {
	nh, err := h.Handle()
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	l, err := nh.LinkByName(h.iface)
	if err != nil {
		return nil, fmt.Errorf("netlab: %s in %s: %w", h.iface, h.ns, err)
	}
	return l, nil
}

// HasAddr reports whether addr is on the host's interface (nh: a handle
// in the host's namespace).
func (h *Host) HasAddr(nh *netlink.Handle, addr netip.Addr) (bool, error) {
	l, err := nh.LinkByName(h.iface)
	if err != nil {
		return false, err
	}
	list, err := nh.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return false, err
	}
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.Unmap() {
			return true, nil
		}
	}
	return false, nil
}

// DelAddr removes p from the host's interface if it is there (a daemon
// killed with SIGKILL leaves its VIPs behind).
func (h *Host) DelAddr(p netip.Prefix) error {
	err := IP("-n", h.ns, "addr", "del", p.String(), "dev", h.iface)
	if err != nil && (strings.Contains(err.Error(), "Address not found") || strings.Contains(err.Error(), "Cannot assign requested address")) {
		return nil
	}
	return err
}

// FlushNeigh deletes the host's neighbour entry for addr, if any.
func (h *Host) FlushNeigh(addr netip.Addr) error {
	return IP("-n", h.ns, "neigh", "flush", "to", addr.String(), "dev", h.iface)
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
	nh, err := h.Handle()
	if err != nil {
		return Neighbor{}, err
	}
	defer nh.Close()
	l, err := nh.LinkByName(h.iface)
	if err != nil {
		return Neighbor{}, fmt.Errorf("netlab: %s in %s: %w", h.iface, h.ns, err)
	}
	n, err := NeighOn(nh, l.Attrs().Index, addr)
	if err != nil {
		return n, fmt.Errorf("%s on %s in %s: %w", addr, h.iface, h.ns, err)
	}
	return n, nil
}

// NeighOn reads the entry for addr on interface ifindex through nh (for
// callers that poll and keep their handle). It returns ErrNoNeighbor if
// there is none.
func NeighOn(nh *netlink.Handle, ifindex int, addr netip.Addr) (Neighbor, error) {
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	list, err := nh.NeighList(ifindex, family)
	if err != nil {
		return Neighbor{}, fmt.Errorf("netlab: neighbour list: %w", err)
	}
	for _, e := range list {
		a, ok := netip.AddrFromSlice(e.IP)
		if ok && a.Unmap() == addr.Unmap() {
			return Neighbor{Addr: addr, MAC: e.HardwareAddr, State: e.State}, nil
		}
	}
	return Neighbor{}, ErrNoNeighbor
}
