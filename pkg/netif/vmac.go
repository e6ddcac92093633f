package netif

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

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
}

// NewVMACs uses h, or the calling thread's namespace when h is nil.
func NewVMACs(h *netlink.Handle) *VMACs {
	if h == nil {
		h = &netlink.Handle{}
	}
	return &VMACs{h: h, created: map[string]bool{}}
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
	return l, true, m.up(l)
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
