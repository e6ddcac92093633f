package netif

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultNeighRefresh is how often a NeighCache re-reads the routes of the
// addresses it tracks and solicits again the ones without a usable entry.
const DefaultNeighRefresh = 5 * time.Second

// resubscribeWait is the pause before the cache subscribes again after the
// kernel dropped its neighbour subscription (e.g. a receive-buffer overflow).
const resubscribeWait = time.Second

// Errors of Lookup (wrapped).
var (
	ErrNotOnLink  = errors.New("netif: address is not on a directly connected network")
	ErrUnresolved = errors.New("netif: neighbour not resolved (yet)")
)

// usableNUD are the neighbour states whose link-layer address can be used
// to send to the neighbour (what the kernel itself would send with).
const usableNUD = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE |
	netlink.NUD_PERMANENT | netlink.NUD_NOARP

// NeighOptions configure NewNeighCache.
type NeighOptions struct {
	// Refresh is the period of route re-reads and repeated solicitations
	// (DefaultNeighRefresh when 0).
	Refresh time.Duration
	// Logger receives subscription and solicitation problems.
	Logger *slog.Logger
}

// NeighCache answers "which MAC, through which interface" for on-link
// addresses from memory. It mirrors the kernel neighbour table from
// netlink neighbour events and, in the background, asks the kernel to
// resolve addresses it was asked about and has no usable entry for.
//
// Lookup never waits for the network: the first Lookup of an address reads
// its route (one netlink request, answered by the kernel from its FIB) and
// then answers from the mirrored table; an unresolved address makes the
// background resolver set an NTF_USE neighbour entry, which makes the
// kernel send ARP requests / neighbour solicitations as it would for its
// own traffic (netlink neigh-add with NTF_USE, the same as `ip neigh
// replace ... use`). The kernel's answer comes back as a neighbour event;
// whenever the answer to Lookup of a tracked address changes, Changed
// receives a value.
type NeighCache struct {
	k       neighKernel
	log     *slog.Logger
	refresh time.Duration

	mu      sync.Mutex
	table   map[neighKey]neighEntry     // the kernel's table as last reported
	targets map[netip.Addr]*neighTarget // addresses Lookup was asked about

	kick    chan struct{} // wakes the resolver
	changed chan struct{} // coalesced "some answer changed"
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  sync.Once
}

type neighKey struct {
	ifindex int
	addr    netip.Addr
}

type neighEntry struct {
	mac   net.HardwareAddr
	state int
}

func (e neighEntry) usable() bool { return e.state&usableNUD != 0 && len(e.mac) == 6 }

// neighTarget is a tracked address and how it is routed.
type neighTarget struct {
	ifindex  int
	routeErr error // ErrNotOnLink (wrapped) when it is reached via a gateway or not at all
	solicit  bool  // the resolver should ask the kernel to resolve it
}

// neighAnswer is what Lookup says about an address, comparable.
type neighAnswer struct {
	mac     string
	ifindex int
	usable  bool
}

// neighKernel is what the cache needs from the kernel (netlink in
// production, a fake in tests).
type neighKernel interface {
	// route returns the interface addr is reached through, or an error
	// wrapping ErrNotOnLink.
	route(addr netip.Addr) (ifindex int, err error)
	// solicit asks the kernel to resolve addr on ifindex.
	solicit(ifindex int, addr netip.Addr) error
	// subscribe starts neighbour events into ch until done is closed;
	// ch is closed when the subscription ends.
	subscribe(ch chan<- netlink.NeighUpdate, done <-chan struct{}) error
	// list returns the current neighbour table.
	list() ([]netlink.Neigh, error)
	close()
}

// NewNeighCache starts a cache for the network namespace of the calling
// thread (its netlink sockets stay there, whatever thread later uses it).
func NewNeighCache(opts NeighOptions) (*NeighCache, error) {
	k, err := newNetlinkNeighKernel()
	if err != nil {
		return nil, err
	}
	c := newNeighCache(k, opts)
	if err := c.start(); err != nil {
		k.close()
		return nil, err
	}
	return c, nil
}

func newNeighCache(k neighKernel, opts NeighOptions) *NeighCache {
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultNeighRefresh
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &NeighCache{
		k:       k,
		log:     opts.Logger,
		refresh: opts.Refresh,
		table:   map[neighKey]neighEntry{},
		targets: map[netip.Addr]*neighTarget{},
		kick:    make(chan struct{}, 1),
		changed: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
}

// start subscribes (synchronously, so a failure is Open's error), loads
// the current table and starts the event and resolver goroutines.
func (c *NeighCache) start() error {
	updates, done, err := c.subscribe()
	if err != nil {
		return err
	}
	c.wg.Add(2)
	go c.watch(updates, done)
	go c.resolveLoop()
	return nil
}

// subscribe opens a subscription and then replaces the table with a
// dump: events queued while the dump runs are newer and are applied after it.
func (c *NeighCache) subscribe() (chan netlink.NeighUpdate, chan struct{}, error) {
	updates := make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	if err := c.k.subscribe(updates, done); err != nil {
		return nil, nil, fmt.Errorf("netif: neighbour subscription: %w", err)
	}
	list, err := c.k.list()
	if err != nil {
		close(done)
		drain(updates)
		return nil, nil, fmt.Errorf("netif: neighbour table: %w", err)
	}
	c.replace(list)
	return updates, done, nil
}

func drain(ch <-chan netlink.NeighUpdate) {
	go func() {
		for range ch { //nolint:revive // let the library's receiver exit
		}
	}()
}

// watch applies events until Close, subscribing again when the kernel
// ends the subscription.
func (c *NeighCache) watch(updates chan netlink.NeighUpdate, done chan struct{}) {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			close(done)
			drain(updates)
			return
		case u, ok := <-updates:
			if ok {
				c.handle(u)
				continue
			}
		}
		close(done)
		c.log.Warn("netif: neighbour subscription ended, subscribing again")
		for {
			select {
			case <-c.stop:
				return
			case <-time.After(resubscribeWait):
			}
			var err error
			if updates, done, err = c.subscribe(); err == nil {
				break
			}
			c.log.Warn("netif: neighbour subscription", "err", err)
		}
	}
}

// Lookup returns addr's MAC and the interface it is reached through, or an
// error wrapping ErrNotOnLink or ErrUnresolved. It does not wait for
// resolution: an address without a usable entry is resolved in the
// background and Changed fires when it is.
func (c *NeighCache) Lookup(addr netip.Addr) (net.HardwareAddr, int, error) {
	addr = addr.Unmap()
	c.mu.Lock()
	t, ok := c.targets[addr]
	if ok {
		defer c.mu.Unlock()
		return c.answerLocked(addr, t)
	}
	c.mu.Unlock()
	ifindex, rerr := c.k.route(addr)
	c.mu.Lock()
	if t, ok = c.targets[addr]; !ok {
		t = &neighTarget{ifindex: ifindex, routeErr: rerr}
		c.targets[addr] = t
	}
	mac, idx, err := c.answerLocked(addr, t)
	resolve := errors.Is(err, ErrUnresolved)
	if resolve {
		t.solicit = true
	}
	c.mu.Unlock()
	if resolve {
		c.wake()
	}
	return mac, idx, err
}

// Keep forgets every tracked address not in addrs: they are no longer
// resolved nor reported by Changed.
func (c *NeighCache) Keep(addrs []netip.Addr) {
	keep := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		keep[a.Unmap()] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for a := range c.targets {
		if !keep[a] {
			delete(c.targets, a)
		}
	}
}

// Changed receives a value (coalesced) after the answer of Lookup for a
// tracked address changed: it was resolved, its MAC or interface changed,
// or it became unusable.
func (c *NeighCache) Changed() <-chan struct{} { return c.changed }

// Close stops the goroutines and closes the netlink sockets.
func (c *NeighCache) Close() {
	c.closed.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.k.close()
	})
}

func (c *NeighCache) answerLocked(addr netip.Addr, t *neighTarget) (net.HardwareAddr, int, error) {
	if t.routeErr != nil {
		return nil, 0, t.routeErr
	}
	e, ok := c.table[neighKey{t.ifindex, addr}]
	if !ok {
		return nil, 0, fmt.Errorf("%w: %v: no neighbour entry", ErrUnresolved, addr)
	}
	if !e.usable() {
		return nil, 0, fmt.Errorf("%w: %v: neighbour state %s", ErrUnresolved, addr, neighStateName(e.state))
	}
	return append(net.HardwareAddr(nil), e.mac...), t.ifindex, nil
}

// answersLocked is the comparable answer for every tracked address.
func (c *NeighCache) answersLocked() map[netip.Addr]neighAnswer {
	out := make(map[netip.Addr]neighAnswer, len(c.targets))
	for a, t := range c.targets {
		out[a] = c.answerOfLocked(a, t)
	}
	return out
}

func (c *NeighCache) answerOfLocked(a netip.Addr, t *neighTarget) neighAnswer {
	mac, idx, err := c.answerLocked(a, t)
	return neighAnswer{mac: string(mac), ifindex: idx, usable: err == nil}
}

func (c *NeighCache) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *NeighCache) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// handle applies one neighbour event.
func (c *NeighCache) handle(u netlink.NeighUpdate) {
	if u.Family != netlink.FAMILY_V4 && u.Family != netlink.FAMILY_V6 {
		return // bridge FDB and the like
	}
	a, ok := netip.AddrFromSlice(u.IP)
	if !ok {
		return
	}
	a = a.Unmap()
	k := neighKey{u.LinkIndex, a}
	c.mu.Lock()
	t := c.targets[a]
	var before neighAnswer
	if t != nil {
		before = c.answerOfLocked(a, t)
	}
	gone := u.Type == unix.RTM_DELNEIGH
	if gone {
		delete(c.table, k)
	} else {
		c.table[k] = neighEntry{mac: append(net.HardwareAddr(nil), u.HardwareAddr...), state: u.State}
	}
	changed := false
	resolveAgain := false
	if t != nil {
		changed = c.answerOfLocked(a, t) != before
		// The kernel dropped the entry (garbage collection, `ip neigh
		// flush`): ask again now rather than at the next refresh.
		if gone && t.routeErr == nil && t.ifindex == u.LinkIndex {
			t.solicit, resolveAgain = true, true
		}
	}
	c.mu.Unlock()
	if changed {
		c.notify()
	}
	if resolveAgain {
		c.wake()
	}
}

// replace sets the whole table (after a dump).
func (c *NeighCache) replace(list []netlink.Neigh) {
	table := make(map[neighKey]neighEntry, len(list))
	for _, n := range list {
		if n.Family != netlink.FAMILY_V4 && n.Family != netlink.FAMILY_V6 {
			continue
		}
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		table[neighKey{n.LinkIndex, a.Unmap()}] = neighEntry{mac: append(net.HardwareAddr(nil), n.HardwareAddr...), state: n.State}
	}
	c.mu.Lock()
	before := c.answersLocked()
	c.table = table
	after := c.answersLocked()
	c.mu.Unlock()
	for a, ans := range after {
		if before[a] != ans {
			c.notify()
			return
		}
	}
}

// resolveLoop solicits addresses when woken and re-reads every route each
// refresh period.
func (c *NeighCache) resolveLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.refresh)
	defer tick.Stop()
	for {
		all := false
		select {
		case <-c.stop:
			return
		case <-c.kick:
		case <-tick.C:
			all = true
		}
		c.resolveOnce(all)
	}
}

// resolveOnce re-reads the routes (all: of every tracked address; else of
// the ones marked for solicitation) and solicits those that are on-link
// without a usable entry. No lock is held during netlink calls.
func (c *NeighCache) resolveOnce(all bool) {
	c.mu.Lock()
	var work []netip.Addr
	for a, t := range c.targets {
		if all || t.solicit {
			work = append(work, a)
		}
	}
	c.mu.Unlock()
	for _, a := range work {
		ifindex, rerr := c.k.route(a)
		c.mu.Lock()
		t := c.targets[a]
		if t == nil { // forgotten meanwhile
			c.mu.Unlock()
			continue
		}
		before := c.answerOfLocked(a, t)
		t.ifindex, t.routeErr, t.solicit = ifindex, rerr, false
		after := c.answerOfLocked(a, t)
		c.mu.Unlock()
		if after != before {
			c.notify()
		}
		if rerr != nil || after.usable {
			continue
		}
		if err := c.k.solicit(ifindex, a); err != nil {
			c.log.Warn("netif: cannot ask the kernel to resolve a neighbour", "addr", a, "ifindex", ifindex, "err", err)
		}
	}
}

func neighStateName(s int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"},
		{netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"},
		{netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
	}
	for _, n := range names {
		if s&n.bit != 0 {
			return n.name
		}
	}
	return "NONE"
}

// netlinkNeighKernel is neighKernel over netlink sockets of one network
// namespace.
type netlinkNeighKernel struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

func newNetlinkNeighKernel() (*netlinkNeighKernel, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("netif: network namespace: %w", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netif: netlink: %w", err)
	}
	return &netlinkNeighKernel{ns: ns, h: h}, nil
}

func (k *netlinkNeighKernel) route(addr netip.Addr) (int, error) {
	routes, err := k.h.RouteGet(net.IP(addr.AsSlice()))
	if err != nil || len(routes) == 0 {
		return 0, fmt.Errorf("%w: %v: no route: %v", ErrNotOnLink, addr, err)
	}
	if routes[0].Gw != nil {
		return 0, fmt.Errorf("%w: %v via %v", ErrNotOnLink, addr, routes[0].Gw)
	}
	return routes[0].LinkIndex, nil
}

func (k *netlinkNeighKernel) solicit(ifindex int, addr netip.Addr) error {
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	// NTF_USE "uses" the entry as the kernel's own transmit path would:
	// it is created INCOMPLETE if missing and probed (ARP request or
	// neighbour solicitation), without touching an entry that is usable.
	return k.h.NeighSet(&netlink.Neigh{LinkIndex: ifindex, Family: fam, IP: net.IP(addr.AsSlice()), State: netlink.NUD_NONE, Flags: netlink.NTF_USE})
}

func (k *netlinkNeighKernel) subscribe(ch chan<- netlink.NeighUpdate, done <-chan struct{}) error {
	ns := k.ns
	// On a receive error the library closes ch; watch subscribes again.
	return netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{Namespace: &ns})
}

func (k *netlinkNeighKernel) list() ([]netlink.Neigh, error) {
	return k.h.NeighList(0, netlink.FAMILY_ALL)
}

func (k *netlinkNeighKernel) close() {
	k.h.Close()
	k.ns.Close()
}
