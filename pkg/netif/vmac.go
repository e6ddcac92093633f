package netif

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// ErrVMACConflict means an interface with the VMAC's name exists but is not
// the macvlan we would have created.
var ErrVMACConflict = errors.New("netif: interface exists and is not the expected VMAC")

// VMACName is keepalived's default name for a VMAC interface: vrrp.<VRID>.
func VMACName(vrid uint8) string { return fmt.Sprintf("vrrp.%d", vrid) }

// VMACAddr is the virtual router MAC address (RFC 5798 §7.3):
// 00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6.
func VMACAddr(vrid uint8, ipv6 bool) net.HardwareAddr {
	kind := byte(1)
	if ipv6 {
		kind = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, kind, vrid}
}

// VMACConfig describes a use_vmac interface.
type VMACConfig struct {
	Parent string // the instance's interface
	VRID   uint8
	IPv6   bool
	Name   string // default VMACName(VRID)
	// Bridge selects macvlan bridge mode; keepalived's default is private.
	Bridge bool
}

func (c VMACConfig) name() string {
	if c.Name != "" {
		return c.Name
	}
	return VMACName(c.VRID)
}

// VMACs creates and deletes VMAC interfaces, and deletes only those it
// created.
type VMACs struct {
	h       *netlink.Handle
	created map[string]bool
	// parentOf maps each VMAC in use (created or reused) to its parent;
	// parents holds the parents' ARP settings to restore.
	parentOf map[string]string
	parents  map[string]*parentARP
}

// parentARP is a VMAC parent's ARP configuration before we changed it,
// and how many VMACs on it are in use.
type parentARP struct {
	users int
	prev  map[string]string // sysctl → value before
}

// NewVMACs uses h, or the calling thread's namespace when h is nil.
func NewVMACs(h *netlink.Handle) *VMACs {
	if h == nil {
		h = &netlink.Handle{}
	}
	return &VMACs{h: h, created: map[string]bool{}, parentOf: map[string]string{}, parents: map[string]*parentARP{}}
}

// Create makes the macvlan cfg describes on its parent, with the virtual
// router MAC, and brings it up. If the same macvlan already exists (a
// restarted daemon) it is reused and created is false; an interface of that
// name with a different MAC or parent is ErrVMACConflict.
//
// As keepalived does, the VMAC answers ARP only for its own addresses
// (arp_ignore=1), accepts packets from local addresses (accept_local=1) and
// has reverse-path filtering off (rp_filter=0). These sysctls are set for
// the calling thread's namespace.
func (m *VMACs) Create(cfg VMACConfig) (link netlink.Link, created bool, err error) {
	name := cfg.name()
	if len(name) > 15 {
		return nil, false, fmt.Errorf("netif: VMAC name %q longer than 15 bytes", name)
	}
	parent, err := m.h.LinkByName(cfg.Parent)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrNoLink, cfg.Parent, err)
	}
	mac := VMACAddr(cfg.VRID, cfg.IPv6)
	if l, err := m.h.LinkByName(name); err == nil {
		mv, ok := l.(*netlink.Macvlan)
		if !ok || mv.Attrs().HardwareAddr.String() != mac.String() || mv.Attrs().ParentIndex != parent.Attrs().Index {
			return nil, false, fmt.Errorf("%w: %s (%s, %s)", ErrVMACConflict, name, l.Type(), l.Attrs().HardwareAddr)
		}
		if err := m.useParent(name, cfg.Parent); err != nil {
			return l, false, err
		}
		return l, false, m.up(l)
	}
	mode := netlink.MACVLAN_MODE_PRIVATE
	if cfg.Bridge {
		mode = netlink.MACVLAN_MODE_BRIDGE
	}
	mv := &netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{
			Name:         name,
			ParentIndex:  parent.Attrs().Index,
			HardwareAddr: mac,
		},
		Mode: mode,
	}
	if err := m.h.LinkAdd(mv); err != nil {
		return nil, false, fmt.Errorf("netif: create VMAC %s on %s: %w", name, cfg.Parent, err)
	}
	m.created[name] = true
	l, err := m.h.LinkByName(name)
	if err != nil {
		return nil, true, fmt.Errorf("netif: VMAC %s: %w", name, err)
	}
	for _, s := range []struct{ key, val string }{
		{"arp_ignore", "1"}, {"accept_local", "1"}, {"rp_filter", "0"},
	} {
		p := filepath.Join("/proc/sys/net/ipv4/conf", name, s.key)
		if err := os.WriteFile(p, []byte(s.val), 0o644); err != nil {
			return l, true, fmt.Errorf("netif: VMAC %s: %w", name, err)
		}
	}
	if !cfg.IPv6 {
		// No IPv6 link-local on an IPv4 VMAC, as keepalived: the BACKUP's
		// idle VMAC would otherwise send router solicitations from the
		// virtual MAC and pull the switch's forwarding entry away from the
		// MASTER.
		p := filepath.Join("/proc/sys/net/ipv6/conf", name, "addr_gen_mode")
		if _, err := os.Stat(p); err == nil {
			if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
				return l, true, fmt.Errorf("netif: VMAC %s: %w", name, err)
			}
		}
	}
	if err := m.useParent(name, cfg.Parent); err != nil {
		return l, true, err
	}
	return l, true, m.up(l)
}

// parentConf is what a VMAC's parent interface is set to while it has
// VMACs: it must not answer ARP for the VIPs on its VMACs (arp_ignore=1)
// nor for its own address on their behalf (arp_filter=1), as keepalived
// sets it; and its own ARP requests must not name a VIP as sender
// (arp_announce=2), or a reply leaving through the parent would teach
// neighbours the parent's MAC for the VIP instead of the virtual MAC.
var parentConf = []struct{ key, val string }{{"arp_ignore", "1"}, {"arp_filter", "1"}, {"arp_announce", "2"}}

// useParent sets parentConf on a VMAC's parent; the old values come back
// when its last VMAC goes.
func (m *VMACs) useParent(vmac, parent string) error {
	if _, ok := m.parentOf[vmac]; ok {
		return nil
	}
	p := m.parents[parent]
	if p == nil {
		p = &parentARP{prev: map[string]string{}}
		for _, c := range parentConf {
			b, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv4/conf", parent, c.key))
			if err != nil {
				return fmt.Errorf("netif: ARP settings of %s: %w", parent, err)
			}
			p.prev[c.key] = strings.TrimSpace(string(b))
		}
		for _, c := range parentConf {
			if err := writeConf(parent, c.key, c.val); err != nil {
				return err
			}
		}
		m.parents[parent] = p
	}
	p.users++
	m.parentOf[vmac] = parent
	return nil
}

// releaseParent undoes useParent for one VMAC.
func (m *VMACs) releaseParent(vmac string) error {
	parent, ok := m.parentOf[vmac]
	if !ok {
		return nil
	}
	delete(m.parentOf, vmac)
	p := m.parents[parent]
	if p.users--; p.users > 0 {
		return nil
	}
	delete(m.parents, parent)
	var errs []error
	for _, c := range parentConf {
		errs = append(errs, writeConf(parent, c.key, p.prev[c.key]))
	}
	return errors.Join(errs...)
}

func writeConf(iface, key, val string) error {
	p := filepath.Join("/proc/sys/net/ipv4/conf", iface, key)
	if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
		return fmt.Errorf("netif: %s: %w", p, err)
	}
	return nil
}

func (m *VMACs) up(l netlink.Link) error {
	if err := m.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("netif: set %s up: %w", l.Attrs().Name, err)
	}
	return nil
}

// Delete removes the VMAC named name if Create made it; deleted reports
// whether it did. A VMAC that is already gone is not an error.
func (m *VMACs) Delete(name string) (deleted bool, err error) {
	if err := m.releaseParent(name); err != nil {
		return false, err
	}
	if !m.created[name] {
		return false, nil
	}
	l, err := m.h.LinkByName(name)
	if err != nil {
		delete(m.created, name)
		return false, nil
	}
	if err := m.h.LinkDel(l); err != nil {
		return false, fmt.Errorf("netif: delete VMAC %s: %w", name, err)
	}
	delete(m.created, name)
	return true, nil
}
