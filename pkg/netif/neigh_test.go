package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// fakeNeighKernel routes from a table, records solicitations and hands the
// test the subscription channel.
type fakeNeighKernel struct {
	mu        sync.Mutex
	routes    map[netip.Addr]int        // on-link addresses → ifindex
	full      map[netip.Addr]neighRoute // complete routes (gateway, src, MTU), before routes
	unrouted  map[netip.Addr]bool       // no route at all
	solicited []netip.Addr
	soliIdx   []int // the interface of each solicitation
	solicitCh chan netip.Addr
	table     []netlink.Neigh // what list returns
	subs      chan chan<- netlink.NeighUpdate
	listErr   error
}

// fakeGateway is the gateway of every address the fake has no route for.
var fakeGateway = netip.MustParseAddr("192.0.2.1")

func newFakeNeighKernel() *fakeNeighKernel {
	return &fakeNeighKernel{
		routes:    map[netip.Addr]int{},
		full:      map[netip.Addr]neighRoute{},
		unrouted:  map[netip.Addr]bool{},
		solicitCh: make(chan netip.Addr, 64),
		subs:      make(chan chan<- netlink.NeighUpdate, 4),
	}
}

func (k *fakeNeighKernel) route(a netip.Addr) (neighRoute, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r, ok := k.full[a]; ok {
		return r, nil
	}
	if i, ok := k.routes[a]; ok {
		return neighRoute{ifindex: i, mtu: 1500}, nil
	}
	if k.unrouted[a] {
		return neighRoute{}, fmt.Errorf("%w: %v", ErrNoRoute, a)
	}
	return neighRoute{ifindex: 3, gateway: fakeGateway, mtu: 1500}, nil
}

func (k *fakeNeighKernel) setRoute(a netip.Addr, r neighRoute) {
	k.mu.Lock()
	k.full[a] = r
	k.mu.Unlock()
}

func (k *fakeNeighKernel) solicit(ifindex int, a netip.Addr) error {
	k.mu.Lock()
	k.solicited = append(k.solicited, a)
	k.soliIdx = append(k.soliIdx, ifindex)
	k.mu.Unlock()
	select {
	case k.solicitCh <- a:
	default:
	}
	return nil
}

func (k *fakeNeighKernel) subscribe(ch chan<- netlink.NeighUpdate, done <-chan struct{}) error {
	k.subs <- ch
	return nil
}

func (k *fakeNeighKernel) list() ([]netlink.Neigh, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]netlink.Neigh(nil), k.table...), k.listErr
}

func (k *fakeNeighKernel) close() {}

func (k *fakeNeighKernel) solicitations() []netip.Addr {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]netip.Addr(nil), k.solicited...)
}

var (
	nbA    = netip.MustParseAddr("192.0.2.21")
	nbB    = netip.MustParseAddr("2001:db8::22")
	nbFar  = netip.MustParseAddr("198.51.100.23")
	nbMAC1 = net.HardwareAddr{2, 0, 0, 0, 0x21, 1}
	nbMAC2 = net.HardwareAddr{2, 0, 0, 0, 0x21, 2}
)

func neighEvent(typ uint16, ifindex int, a netip.Addr, state int, mac net.HardwareAddr) netlink.NeighUpdate {
	fam := netlink.FAMILY_V4
	if a.Is6() {
		fam = netlink.FAMILY_V6
	}
	return netlink.NeighUpdate{Type: typ, Neigh: netlink.Neigh{LinkIndex: ifindex, Family: fam, IP: net.IP(a.AsSlice()), State: state, HardwareAddr: mac}}
}

func changedNow(c *NeighCache) bool {
	select {
	case <-c.Changed():
		return true
	default:
		return false
	}
}

// TestNeighCacheEvents drives the cache by hand (no goroutines): each
// event, route read and solicitation step is checked.
func TestNeighCacheEvents(t *testing.T) {
	k := newFakeNeighKernel()
	k.routes[nbA] = 3
	k.routes[nbB] = 3
	c := newNeighCache(k, NeighOptions{})

	// Unknown: not resolved, and the resolver is woken to solicit it.
	if _, _, err := c.Lookup(nbA); !errors.Is(err, ErrUnresolved) {
		t.Fatalf("Lookup of an unknown neighbour: %v, want ErrUnresolved", err)
	}
	if _, _, err := c.Lookup(nbFar); !errors.Is(err, ErrNotOnLink) {
		t.Fatalf("Lookup of an address via a gateway: %v, want ErrNotOnLink", err)
	}
	c.resolveOnce(false)
	if got := k.solicitations(); len(got) != 1 || got[0] != nbA {
		t.Fatalf("solicited %v, want [%v] (the gateway-routed address is never solicited)", got, nbA)
	}
	if changedNow(c) {
		t.Fatal("Changed fired before any answer changed")
	}

	// INCOMPLETE (the kernel is asking) is not usable; REACHABLE is.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_INCOMPLETE, nil))
	if _, _, err := c.Lookup(nbA); !errors.Is(err, ErrUnresolved) || changedNow(c) {
		t.Fatalf("INCOMPLETE: %v (changed %v), want ErrUnresolved without a change", err, false)
	}
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_REACHABLE, nbMAC1))
	if !changedNow(c) {
		t.Fatal("no Changed after the neighbour resolved")
	}
	mac, idx, err := c.Lookup(nbA)
	if err != nil || mac.String() != nbMAC1.String() || idx != 3 {
		t.Fatalf("after REACHABLE: %v %d %v, want %v 3", mac, idx, err, nbMAC1)
	}

	// An entry on another interface than the route's is not the answer.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 4, nbA, netlink.NUD_REACHABLE, nbMAC2))
	if mac, _, _ := c.Lookup(nbA); mac.String() != nbMAC1.String() || changedNow(c) {
		t.Fatalf("entry on another interface changed the answer to %v", mac)
	}

	// STALE keeps the MAC usable (as the kernel would send with it);
	// a new MAC is a change.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_STALE, nbMAC1))
	if _, _, err := c.Lookup(nbA); err != nil || changedNow(c) {
		t.Fatalf("STALE: %v, want the same usable answer without a change", err)
	}
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_REACHABLE, nbMAC2))
	if mac, _, _ := c.Lookup(nbA); mac.String() != nbMAC2.String() || !changedNow(c) {
		t.Fatalf("MAC change: answer %v, want %v and a change", mac, nbMAC2)
	}

	// FAILED is unusable (a change); the next refresh solicits again.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_FAILED, nil))
	if _, _, err := c.Lookup(nbA); !errors.Is(err, ErrUnresolved) || !changedNow(c) {
		t.Fatalf("FAILED: %v, want ErrUnresolved and a change", err)
	}
	c.resolveOnce(true)
	if got := k.solicitations(); len(got) != 2 {
		t.Fatalf("refresh solicited %v, want a second solicitation of %v", got, nbA)
	}

	// Deleted (gc, flush): the resolver is woken at once.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_REACHABLE, nbMAC1))
	changedNow(c)
	c.handle(neighEvent(unix.RTM_DELNEIGH, 3, nbA, netlink.NUD_REACHABLE, nbMAC1))
	if _, _, err := c.Lookup(nbA); !errors.Is(err, ErrUnresolved) || !changedNow(c) {
		t.Fatalf("deleted: %v, want ErrUnresolved and a change", err)
	}
	select {
	case <-c.kick:
	default:
		t.Fatal("deleting a tracked entry did not wake the resolver")
	}

	// IPv6, already in the table before the first Lookup: answered at once.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbB, netlink.NUD_PERMANENT, nbMAC1))
	if mac, idx, err := c.Lookup(nbB); err != nil || mac.String() != nbMAC1.String() || idx != 3 {
		t.Fatalf("known IPv6 neighbour: %v %d %v", mac, idx, err)
	}

	// Events for untracked addresses and other families change nothing.
	changedNow(c)
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, netip.MustParseAddr("192.0.2.99"), netlink.NUD_REACHABLE, nbMAC1))
	c.handle(netlink.NeighUpdate{Type: unix.RTM_NEWNEIGH, Neigh: netlink.Neigh{Family: unix.AF_BRIDGE, HardwareAddr: nbMAC1}})
	if changedNow(c) {
		t.Fatal("an untracked address changed the answers")
	}

	// Keep forgets the others: no more solicitation, no more changes.
	c.Keep([]netip.Addr{nbB})
	n := len(k.solicitations())
	c.resolveOnce(true)
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_REACHABLE, nbMAC1))
	if len(k.solicitations()) != n || changedNow(c) {
		t.Fatalf("a forgotten address is still resolved or reported")
	}
}

// TestNeighCacheRouteChange: the refresh re-reads routes, so a real server
// that moves behind a gateway becomes unusable (and back).
func TestNeighCacheRouteChange(t *testing.T) {
	k := newFakeNeighKernel()
	k.routes[nbA] = 3
	c := newNeighCache(k, NeighOptions{})
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_REACHABLE, nbMAC1))
	if _, _, err := c.Lookup(nbA); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	delete(k.routes, nbA)
	k.mu.Unlock()
	c.resolveOnce(true)
	if _, _, err := c.Lookup(nbA); !errors.Is(err, ErrNotOnLink) || !changedNow(c) {
		t.Fatalf("after the route moved: %v, want ErrNotOnLink and a change", err)
	}
	k.mu.Lock()
	k.routes[nbA] = 3
	k.mu.Unlock()
	c.resolveOnce(true)
	if _, _, err := c.Lookup(nbA); err != nil || !changedNow(c) {
		t.Fatalf("route back: %v, want the entry again and a change", err)
	}
}

// TestNeighCacheRunning runs the goroutines: the initial dump, a
// solicitation triggered by Lookup, the event that answers it, and a
// subscription the kernel ends (the cache subscribes again and re-dumps).
func TestNeighCacheRunning(t *testing.T) {
	k := newFakeNeighKernel()
	k.routes[nbA] = 3
	k.routes[nbB] = 3
	k.table = []netlink.Neigh{neighEvent(0, 3, nbB, netlink.NUD_REACHABLE, nbMAC2).Neigh}
	c := newNeighCache(k, NeighOptions{Refresh: time.Hour})
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub := <-k.subs
	if mac, _, err := c.Lookup(nbB); err != nil || mac.String() != nbMAC2.String() {
		t.Fatalf("entry from the initial dump: %v %v", mac, err)
	}
	if _, _, err := c.Lookup(nbA); !errors.Is(err, ErrUnresolved) {
		t.Fatalf("Lookup of an unknown neighbour: %v", err)
	}
	select {
	case a := <-k.solicitCh:
		if a != nbA {
			t.Fatalf("solicited %v, want %v", a, nbA)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lookup did not make the resolver solicit the neighbour")
	}
	sub <- neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_REACHABLE, nbMAC1)
	select {
	case <-c.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("no Changed after the kernel resolved the neighbour")
	}
	if mac, _, err := c.Lookup(nbA); err != nil || mac.String() != nbMAC1.String() {
		t.Fatalf("after the event: %v %v", mac, err)
	}

	// The kernel ends the subscription; meanwhile nbA's MAC changed.
	k.mu.Lock()
	k.table = []netlink.Neigh{neighEvent(0, 3, nbA, netlink.NUD_REACHABLE, nbMAC2).Neigh}
	k.mu.Unlock()
	close(sub)
	select {
	case <-k.subs:
	case <-time.After(10 * time.Second):
		t.Fatal("no new subscription after the old one ended")
	}
	testnet.Eventually(t, 10*time.Second, func() error {
		if mac, _, err := c.Lookup(nbA); err != nil || mac.String() != nbMAC2.String() {
			return fmt.Errorf("after resubscribing: %v %v, want %v from the new dump", mac, err, nbMAC2)
		}
		return nil
	})
}

// TestNeighCacheResolvesInKernel checks the netlink side in a namespace
// pair: a Lookup of a silent neighbour returns at once, the kernel's ARP
// exchange that NTF_USE started fills the cache, and Changed says so.
func TestNeighCacheResolvesInKernel(t *testing.T) {
	n := testnet.New(t)
	lb := n.AddHost("lb", "192.0.2.11/24", testnet.WithAddr("2001:db8::11/64"))
	rs := n.AddHost("rs", "192.0.2.12/24", testnet.WithAddr("2001:db8::12/64"))
	var c *NeighCache
	lb.MustDo(func() (err error) {
		c, err = NewNeighCache(NeighOptions{})
		return err
	})
	defer c.Close()
	for _, a := range []netip.Addr{rs.Addr(4), rs.Addr(6)} {
		t0 := time.Now()
		_, _, err := c.Lookup(a)
		if took := time.Since(t0); took > time.Second {
			t.Errorf("Lookup(%v) took %v: it must not wait for resolution", a, took)
		}
		if !errors.Is(err, ErrUnresolved) {
			t.Fatalf("first Lookup(%v): %v, want ErrUnresolved", a, err)
		}
	}
	testnet.Eventually(t, 10*time.Second, func() error {
		for _, a := range []netip.Addr{rs.Addr(4), rs.Addr(6)} {
			mac, _, err := c.Lookup(a)
			if err != nil {
				return err
			}
			if mac.String() != rs.MAC().String() {
				return fmt.Errorf("%v resolved to %v, want %v", a, mac, rs.MAC())
			}
		}
		return nil
	})
	select {
	case <-c.Changed():
	default:
		t.Error("resolution did not signal Changed")
	}
	if _, _, err := c.Lookup(netip.MustParseAddr("198.51.100.1")); !errors.Is(err, ErrNotOnLink) {
		t.Errorf("Lookup of an unrouted address: %v, want ErrNotOnLink", err)
	}
}
