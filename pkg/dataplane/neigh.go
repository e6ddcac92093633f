package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"slices"

	"github.com/xdpvip/xdpvip/pkg/netif"
)

var errNoResolver = errors.New("dataplane: no neighbour resolver (loaded without an interface)")

// neighbours finds the MAC and egress interface of a real server without
// waiting for the network (netif.NeighCache in production): Lookup for a
// DR real server (on link), LookupNextHop for a TUN real server (any
// routed address: the next hop's MAC, the egress interface, the source
// address and MTU of the route).
type neighbours interface {
	Lookup(addr netip.Addr) (mac net.HardwareAddr, ifindex int, err error)
	LookupNextHop(addr netip.Addr) (nextHop, error)
}

// nextHop is where the kernel would send a packet for an address.
type nextHop = netif.NextHop

type noResolver struct{}

func (noResolver) Lookup(netip.Addr) (net.HardwareAddr, int, error) { return nil, 0, errNoResolver }
func (noResolver) LookupNextHop(netip.Addr) (nextHop, error)        { return nextHop{}, errNoResolver }

// startNeighbourRefresh rewrites the real servers' entries and tables
// whenever the neighbour cache's answer for one of them changes (resolved
// later, new MAC, lost).
func (d *Dataplane) startNeighbourRefresh(changed <-chan struct{}) {
	d.stopNbr = make(chan struct{})
	d.nbrDone = make(chan struct{})
	go func() {
		defer close(d.nbrDone)
		for {
			select {
			case <-d.stopNbr:
				return
			case <-changed:
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

// keepNeighbours tells the cache which addresses are real servers now, so
// it stops resolving the ones removed.
func (d *Dataplane) keepNeighbours() {
	if d.nl == nil {
		return
	}
	var addrs []netip.Addr
	for _, e := range d.lvs.services {
		for ap := range e.reals {
			addrs = append(addrs, ap.Addr())
		}
	}
	d.nl.Keep(addrs)
}

// Unresolved lists the real servers the program does not forward to yet
// because their MAC is not known (DR), or their next hop, route or a path
// MTU the tunnel fits is not (TUN): Apply returns before the neighbour
// cache resolves a new real server, and this says when it has.
func (d *Dataplane) Unresolved() []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []netip.Addr
	for _, e := range d.lvs.services {
		for ap := range e.unresolved {
			out = append(out, ap.Addr())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
