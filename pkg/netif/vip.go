// Package netif is the link-layer plumbing of the VRRP runtime: virtual IP
// addresses (netlink), gratuitous ARP and unsolicited neighbour
// advertisements, their timing, keepalived-style VMAC interfaces and a link
// state watcher for track_interface.
//
// Everything that opens a socket does so in the calling thread's network
// namespace; a netlink.Handle passed in decides the namespace for netlink.
package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	// ErrBadVIP is returned for a VIP that cannot be put on an interface.
	ErrBadVIP = errors.New("netif: invalid virtual address")
	// ErrNoLink is returned when the VIP's interface does not exist.
	ErrNoLink = errors.New("netif: no such interface")
)

// VIP is one virtual_ipaddress entry:
//
//	<ADDR>[/<MASK>] [brd <ADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>]
type VIP struct {
	Prefix    netip.Prefix // address and prefix length (/32 or /128 when the config gives none)
	Dev       string       // interface
	Label     string       // IPv4 only; must start with Dev, at most 15 bytes (e.g. "eth0:vip")
	Broadcast netip.Addr   // IPv4 only; zero for none
	Scope     int          // unix.RT_SCOPE_* (0 = global)
	// Lifetime, when set, adds the address with preferred lifetime
	// PreferredLft (seconds) and an infinite valid lifetime: 0 makes the
	// kernel hold an IPv6 address deprecated, so it is never picked as a
	// source address (keepalived's preferred_lft). Unset: the kernel's
	// default (both forever).
	Lifetime     bool
	PreferredLft uint32
}

func (v VIP) String() string {
	s := v.Prefix.String() + " dev " + v.Dev
	if v.Label != "" {
		s += " label " + v.Label
	}
	return s
}

type vipKey struct {
	dev  string
	addr netip.Addr
}

func (v VIP) key() vipKey { return vipKey{v.Dev, v.Prefix.Addr().Unmap()} }

func (v VIP) validate() error {
	if !v.Prefix.IsValid() {
		return fmt.Errorf("%w: prefix %v", ErrBadVIP, v.Prefix)
	}
	if v.Dev == "" {
		return fmt.Errorf("%w: %s: no interface", ErrBadVIP, v.Prefix)
	}
	a := v.Prefix.Addr()
	if a.Is4In6() {
		return fmt.Errorf("%w: %s: IPv4-mapped address", ErrBadVIP, v.Prefix)
	}
	if a.Is6() && (v.Label != "" || v.Broadcast.IsValid()) {
		return fmt.Errorf("%w: %s: label and brd apply to IPv4 only", ErrBadVIP, v.Prefix)
	}
	if v.Broadcast.IsValid() && !v.Broadcast.Is4() {
		return fmt.Errorf("%w: %s: broadcast %s is not IPv4", ErrBadVIP, v.Prefix, v.Broadcast)
	}
	if v.Label != "" && (len(v.Label) > 15 || !strings.HasPrefix(v.Label, v.Dev)) {
		return fmt.Errorf("%w: %s: label %q must start with %q and be at most 15 bytes", ErrBadVIP, v.Prefix, v.Label, v.Dev)
	}
	if v.Scope < 0 || v.Scope > 255 {
		return fmt.Errorf("%w: %s: scope %d", ErrBadVIP, v.Prefix, v.Scope)
	}
	return nil
}

func (v VIP) netlinkAddr() *netlink.Addr {
	a := v.Prefix.Addr()
	na := &netlink.Addr{
		IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(v.Prefix.Bits(), a.BitLen())},
		Label: v.Label,
		Scope: v.Scope,
	}
	if v.Broadcast.IsValid() {
		na.Broadcast = v.Broadcast.AsSlice()
	}
	if a.Is6() {
		// As keepalived: a VIP is usable (and announceable) at once.
		na.Flags = unix.IFA_F_NODAD
	}
	if v.Lifetime {
		na.PreferedLft, na.ValidLft = int(v.PreferredLft), int(^uint32(0))
	}
	return na
}

// VIPs adds and removes virtual addresses and remembers which ones it added,
// so it never removes an address somebody else configured.
type VIPs struct {
	h *netlink.Handle

	mu    sync.Mutex
	owned map[vipKey]VIP
}

// NewVIPs returns a VIP manager using h, or the calling thread's namespace
// when h is nil.
func NewVIPs(h *netlink.Handle) *VIPs {
	if h == nil {
		h = &netlink.Handle{}
	}
	return &VIPs{h: h, owned: map[vipKey]VIP{}}
}

// Add puts v on its interface. existed reports that the address was already
// there before this call; an address that existed before we ever added it
// is not ours and Remove leaves it alone. Adding twice is harmless.
func (m *VIPs) Add(v VIP) (existed bool, err error) {
	if err := v.validate(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	link, err := m.link(v.Dev)
	if err != nil {
		return false, err
	}
	present, err := m.present(link, v.Prefix.Addr())
	if err != nil {
		return false, err
	}
	if present {
		return true, nil
	}
	err = m.h.AddrAdd(link, v.netlinkAddr())
	if errors.Is(err, unix.EEXIST) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("netif: add %s: %w", v, err)
	}
	m.owned[v.key()] = v
	return false, nil
}

// Claim makes v this manager's whether or not it added it, so Remove
// deletes it: the daemon owns its configured VIPs, also those a crashed
// predecessor left on the interface.
func (m *VIPs) Claim(v VIP) {
	m.mu.Lock()
	m.owned[v.key()] = v
	m.mu.Unlock()
}

// Remove takes v off its interface if this manager added it. removed
// reports whether an address was deleted. An address that is already gone
// is not an error.
func (m *VIPs) Remove(v VIP) (removed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.remove(v.key())
}

func (m *VIPs) remove(k vipKey) (bool, error) {
	v, ok := m.owned[k]
	if !ok {
		return false, nil
	}
	link, err := m.link(v.Dev)
	if errors.Is(err, ErrNoLink) {
		delete(m.owned, k) // the interface, and the address with it, is gone
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = m.h.AddrDel(link, v.netlinkAddr())
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
		delete(m.owned, k)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("netif: remove %s: %w", v, err)
	}
	delete(m.owned, k)
	return true, nil
}

// RemoveAll removes every address this manager added (on shutdown or when
// leaving MASTER). It tries all of them and joins the errors.
func (m *VIPs) RemoveAll() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for k := range m.owned {
		if _, err := m.remove(k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Present reports whether v's address is on its interface (whoever put it
// there).
func (m *VIPs) Present(v VIP) (bool, error) {
	link, err := m.link(v.Dev)
	if err != nil {
		return false, err
	}
	return m.present(link, v.Prefix.Addr())
}

func (m *VIPs) link(dev string) (netlink.Link, error) {
	l, err := m.h.LinkByName(dev)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%w: %s", ErrNoLink, dev)
		}
		return nil, fmt.Errorf("netif: interface %s: %w", dev, err)
	}
	return l, nil
}

func (m *VIPs) present(link netlink.Link, addr netip.Addr) (bool, error) {
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	list, err := m.h.AddrList(link, family)
	if err != nil {
		return false, fmt.Errorf("netif: addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.Unmap() {
			return true, nil
		}
	}
	return false, nil
}
