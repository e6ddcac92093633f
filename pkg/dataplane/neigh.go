package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// defaultRefresh is how often real-server MACs are re-resolved.
const defaultRefresh = 5 * time.Second

// resolveWait bounds how long one Resolve waits for ARP / ND.
const resolveWait = 500 * time.Millisecond

// Errors of neighbour resolution.
var (
	ErrNotOnLink   = errors.New("dataplane: real server is not on a directly connected network (DR needs one)")
	ErrUnresolved  = errors.New("dataplane: real server MAC not resolved")
	errNoResolver  = errors.New("dataplane: no neighbour resolver (loaded without an interface)")
	usableNUDState = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE |
		netlink.NUD_PERMANENT | netlink.NUD_NOARP
)

type noResolver struct{}

func (noResolver) Resolve(netip.Addr) (net.HardwareAddr, int, error) { return nil, 0, errNoResolver }

// netlinkResolver reads the kernel neighbour table. Its netlink handle is
// made in the network namespace Open runs in and stays there, whatever
// thread later uses it.
type netlinkResolver struct {
	h   *netlink.Handle
	log *slog.Logger
}

func newNetlinkResolver(log *slog.Logger) (*netlinkResolver, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("dataplane: netlink: %w", err)
	}
	return &netlinkResolver{h: h, log: log}, nil
}

// Resolve returns addr's MAC and the interface it is reached through,
// asking the kernel to resolve it (NTF_USE) when there is no usable entry.
func (r *netlinkResolver) Resolve(addr netip.Addr) (net.HardwareAddr, int, error) {
	ip := net.IP(addr.AsSlice())
	routes, err := r.h.RouteGet(ip)
	if err != nil || len(routes) == 0 {
		return nil, 0, fmt.Errorf("%w: %v: no route: %v", ErrNotOnLink, addr, err)
	}
	rt := routes[0]
	if rt.Gw != nil {
		return nil, 0, fmt.Errorf("%w: %v via %v", ErrNotOnLink, addr, rt.Gw)
	}
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	deadline := time.Now().Add(resolveWait)
	asked := false
	for {
		if mac, ok := r.lookup(rt.LinkIndex, fam, addr); ok {
			return mac, rt.LinkIndex, nil
		}
		if !asked {
			asked = true
			n := &netlink.Neigh{LinkIndex: rt.LinkIndex, Family: fam, IP: ip, State: netlink.NUD_NONE, Flags: netlink.NTF_USE}
			if err := r.h.NeighSet(n); err != nil {
				return nil, 0, fmt.Errorf("%w: %v: %v", ErrUnresolved, addr, err)
			}
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("%w: %v", ErrUnresolved, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *netlinkResolver) lookup(ifindex, fam int, addr netip.Addr) (net.HardwareAddr, bool) {
	list, err := r.h.NeighList(ifindex, fam)
	if err != nil {
		return nil, false
	}
	for _, n := range list {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.Unmap() != addr || len(n.HardwareAddr) != 6 {
			continue
		}
		if n.State&usableNUDState != 0 {
			return n.HardwareAddr, true
		}
	}
	return nil, false
}

func (r *netlinkResolver) close() { r.h.Close() }

// startNeighbourRefresh re-resolves every real server each interval and
// updates entries and tables that changed.
func (d *Dataplane) startNeighbourRefresh(every time.Duration) {
	d.stopNbr = make(chan struct{})
	d.nbrDone = make(chan struct{})
	go func() {
		defer close(d.nbrDone)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-d.stopNbr:
				return
			case <-t.C:
				d.refreshNeighbours()
			}
		}
	}()
}

func (d *Dataplane) refreshNeighbours() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	for id, e := range d.lvs.services {
		if err := d.lvs.refreshService(id, e); err != nil {
			d.log.Warn("xdp dataplane: neighbour refresh", "vip", id.addr, "port", id.port, "err", err)
		}
	}
}
