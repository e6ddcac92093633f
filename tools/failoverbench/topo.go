package main

import (
	"crypto/rand"
	"encoding/hex"
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

// Topology of one benchmark (prefix P is random, e.g. "fb3f9a1c"):
//
//	namespace P-sw:      bridge br0, ports p-client, p-lb1, p-lb2 (veth, switch side)
//	namespace P-client:  eth0 192.0.2.1/24   (probes the VIP, watches its neighbour entry)
//	namespace P-lb1:     eth0 192.0.2.11/24  (priority 100, MASTER at start)
//	namespace P-lb2:     eth0 192.0.2.12/24  (priority 90, BACKUP at start)
//
// Veth pairs are created inside the switch namespace and their host ends
// moved straight into the host namespaces, so nothing is created in the
// root namespace. Close deletes every namespace.
const (
	bridgeName = "br0"
	hostIface  = "eth0"
)

// host is one namespace plugged into the bridge.
type host struct {
	name string
	ns   string // namespace name under /var/run/netns
	port string // switch-side veth name
	addr netip.Prefix
	mac  net.HardwareAddr
}

// topology is the switch namespace and the three hosts.
type topology struct {
	prefix           string
	swNS             string
	client, lb1, lb2 *host
	created          []string // namespaces to delete, in creation order
}

// newTopology builds the namespaces, bridge and veths. On error it deletes
// whatever it created.
func newTopology() (_ *topology, err error) {
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("random prefix: %w", err)
	}
	t := &topology{prefix: "fb" + hex.EncodeToString(rnd[:])}
	t.swNS = t.prefix + "-sw"
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if err := t.addNS(t.swNS); err != nil {
		return nil, err
	}
	if err := ipCmd("netns", "exec", t.swNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"); err != nil {
		return nil, err
	}
	if err := ipCmd("-n", t.swNS, "link", "add", bridgeName, "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return nil, err
	}
	if err := ipCmd("-n", t.swNS, "link", "set", bridgeName, "up"); err != nil {
		return nil, err
	}
	mk := func(name, addr string) (*host, error) {
		h := &host{name: name, ns: t.prefix + "-" + name, port: "p-" + name, addr: netip.MustParsePrefix(addr)}
		if err := t.addNS(h.ns); err != nil {
			return nil, err
		}
		steps := [][]string{
			{"-n", t.swNS, "link", "add", h.port, "type", "veth", "peer", "name", hostIface, "netns", h.ns},
			{"-n", t.swNS, "link", "set", h.port, "master", bridgeName, "up"},
			{"-n", h.ns, "addr", "add", h.addr.String(), "dev", hostIface},
			{"-n", h.ns, "link", "set", hostIface, "up"},
		}
		for _, s := range steps {
			if err := ipCmd(s...); err != nil {
				return nil, err
			}
		}
		mac, err := h.linkMAC()
		if err != nil {
			return nil, err
		}
		h.mac = mac
		return h, nil
	}
	if t.client, err = mk("client", "192.0.2.1/24"); err != nil {
		return nil, err
	}
	if t.lb1, err = mk("lb1", "192.0.2.11/24"); err != nil {
		return nil, err
	}
	if t.lb2, err = mk("lb2", "192.0.2.12/24"); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *topology) addNS(name string) error {
	if err := ipCmd("netns", "add", name); err != nil {
		return err
	}
	t.created = append(t.created, name)
	return ipCmd("-n", name, "link", "set", "lo", "up")
}

// Close deletes every namespace the topology created; deleting a
// namespace deletes its veth ends and the bridge with it.
func (t *topology) Close() {
	for i := len(t.created) - 1; i >= 0; i-- {
		_ = ipCmd("netns", "del", t.created[i])
	}
	t.created = nil
}

// setCable brings the switch side of h's cable up or down: the host sees
// carrier loss, as if its cable were pulled or the machine had died.
func (t *topology) setCable(h *host, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ipCmd("-n", t.swNS, "link", "set", h.port, state)
}

// ipCmd runs the ip command and folds its output into the error.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// handle opens a netlink handle bound to h's namespace.
func (h *host) handle() (*netlink.Handle, error) { return nsutil.Handle(h.ns) }

func (h *host) linkMAC() (net.HardwareAddr, error) {
	nh, err := h.handle()
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	l, err := nh.LinkByName(hostIface)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", hostIface, h.ns, err)
	}
	return l.Attrs().HardwareAddr, nil
}

// do runs f on a locked OS thread switched into h's namespace
// (nsutil.Do). Sockets f opens stay in that namespace.
func (h *host) do(f func() error) error { return nsutil.Do(h.ns, f) }

// enter locks the calling goroutine to its OS thread and switches that
// thread into h's namespace for good: the goroutine must never unlock, so
// that the runtime throws the thread away when the goroutine ends.
func (h *host) enter() error {
	ns, err := netns.GetFromName(h.ns)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", h.ns, err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("enter namespace %s: %w", h.ns, err)
	}
	return nil
}

// hasAddr reports whether addr is on h's interface.
func (h *host) hasAddr(nh *netlink.Handle, addr netip.Addr) (bool, error) {
	l, err := nh.LinkByName(hostIface)
	if err != nil {
		return false, err
	}
	list, err := nh.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return false, err
	}
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			return true, nil
		}
	}
	return false, nil
}

// delAddr removes addr from h's interface if it is there (a daemon killed
// with SIGKILL leaves its VIPs behind).
func (h *host) delAddr(p netip.Prefix) error {
	err := ipCmd("-n", h.ns, "addr", "del", p.String(), "dev", hostIface)
	if err != nil && (strings.Contains(err.Error(), "Address not found") || strings.Contains(err.Error(), "Cannot assign requested address")) {
		return nil
	}
	return err
}

// errNoNeighbour is returned by neigh when there is no entry.
var errNoNeighbour = errors.New("no neighbour entry")

// neigh returns the usable MAC h's neighbour table holds for addr.
func (h *host) neigh(nh *netlink.Handle, ifindex int, addr netip.Addr) (net.HardwareAddr, error) {
	list, err := nh.NeighList(ifindex, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	for _, e := range list {
		ip, ok := netip.AddrFromSlice(e.IP)
		if ok && ip.Unmap() == addr && usableNeigh(e) {
			return e.HardwareAddr, nil
		}
	}
	return nil, errNoNeighbour
}

// usableNeigh reports whether the kernel would send to the entry's MAC.
func usableNeigh(e netlink.Neigh) bool {
	return len(e.HardwareAddr) > 0 && e.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0
}

// flushNeigh deletes h's neighbour entry for addr, if any.
func (h *host) flushNeigh(addr netip.Addr) error {
	return ipCmd("-n", h.ns, "neigh", "flush", "to", addr.String(), "dev", hostIface)
}
