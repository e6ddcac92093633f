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

// Errors of Lookup and LookupNextHop (wrapped).
var (
	ErrNotOnLink  = errors.New("netif: address is not on a directly connected network")
	ErrUnresolved = errors.New("netif: neighbour not resolved (yet)")
	ErrNoRoute    = errors.New("netif: no route to address")
)

// NextHop is where the kernel would send a packet for an address.
type NextHop struct {
	MAC     net.HardwareAddr // link-layer address of the neighbour that takes it (the address itself when on link, else the gateway)
	Ifindex int              // egress interface
	Gateway netip.Addr       // the route's gateway; zero when the address is on link
	Src     netip.Addr       // the source address the kernel would use towards it (RouteGet's prefsrc)
	MTU     int              // the route's mtu metric when set, else the egress link's MTU
}

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

// NeighCache answers "which MAC, through which interface" from memory:
// Lookup for on-link addresses (direct routing), LookupNextHop for any
// routed address (the gateway's MAC when it is behind one, with the
// route's source address and MTU, for tunnels). It mirrors the kernel neighbour table from
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

// neighRoute is what the kernel's route lookup says about an address.
type neighRoute struct {
	ifindex int
	gateway netip.Addr // zero when on link
	src     netip.Addr
	mtu     int // the route's mtu metric, else the egress link's MTU
}

// neighbour is the address whose link-layer address carries packets to
// the routed address: the gateway, or the address itself when on link.
func (r neighRoute) neighbour(addr netip.Addr) netip.Addr {
	if r.gateway.IsValid() {
		return r.gateway
	}
	return addr
}

// neighTarget is a tracked address and how it is routed.
type neighTarget struct {
	route    neighRoute
	routeErr error // ErrNoRoute (wrapped) when the kernel has no usable route
	solicit  bool  // the resolver should ask the kernel to resolve its neighbour
	// nextHop: LookupNextHop was asked about it, so a gateway is resolved
	// too; an address only asked by Lookup (direct routing) needs no more
	// than to be on link.
	nextHop bool
}

// neighAnswer is what Lookup (or LookupNextHop, for a target asked by it)
// says about an address, comparable.
type neighAnswer struct {
	mac     string
	ifindex int
	gateway netip.Addr
	src     netip.Addr
	mtu     int
	usable  bool
}

// neighKernel is what the cache needs from the kernel (netlink in
// production, a fake in tests).
type neighKernel interface {
	// route returns how addr is routed (egress interface, gateway,
	// preferred source, MTU), or an error wrapping ErrNoRoute.
	route(addr netip.Addr) (neighRoute, error)
	// solicit asks the kernel to resolve addr (a neighbour) on ifindex.
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
// error wrapping ErrNotOnLink (reached via a gateway, or not routed at
// all: then it wraps ErrNoRoute too) or ErrUnresolved. It does not wait
// for resolution: an address without a usable entry is resolved in the
// background and Changed fires when it is.
func (c *NeighCache) Lookup(addr netip.Addr) (net.HardwareAddr, int, error) {
	addr = addr.Unmap()
	t := c.track(addr, false)
	c.mu.Lock()
	mac, idx, err := c.lookupLocked(addr, t)
	resolve := c.markUnresolvedLocked(t, err)
	c.mu.Unlock()
	if resolve {
		c.wake()
	}
	return mac, idx, err
}

// LookupNextHop is Lookup for any routed address (on link or via a
// gateway); it never waits: errors wrap ErrNoRoute (no route /
// unreachable) or ErrUnresolved (the neighbour has no usable entry yet;
// it is resolved in the background and Changed fires when the answer
// changes).
func (c *NeighCache) LookupNextHop(addr netip.Addr) (NextHop, error) {
	addr = addr.Unmap()
	t := c.track(addr, true)
	c.mu.Lock()
	nh, err := c.nextHopLocked(addr, t)
	resolve := c.markUnresolvedLocked(t, err)
	c.mu.Unlock()
	if resolve {
		c.wake()
	}
	return nh, err
}

// track returns addr's target, reading its route (no lock held) the first
// time it is asked about.
func (c *NeighCache) track(addr netip.Addr, nextHop bool) *neighTarget {
	c.mu.Lock()
	t, ok := c.targets[addr]
	if ok {
		// A direct-routing address now also asked for its next hop: the
		// answers Changed reports about it grow the route's fields.
		t.nextHop = t.nextHop || nextHop
		c.mu.Unlock()
		return t
	}
	c.mu.Unlock()
	r, rerr := c.k.route(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok = c.targets[addr]; !ok {
		t = &neighTarget{route: r, routeErr: rerr}
		c.targets[addr] = t
	}
	t.nextHop = t.nextHop || nextHop
	return t
}

// markUnresolvedLocked marks t for the resolver when err says its
// neighbour is not resolved; it reports whether to wake the resolver.
func (c *NeighCache) markUnresolvedLocked(t *neighTarget, err error) bool {
	if !errors.Is(err, ErrUnresolved) || t.solicit {
		return false
	}
	t.solicit = true
	return true
}

// Keep forgets every tracked address not in addrs: they are no longer
// resolved nor reported by Changed. The gateways of the kept addresses
// stay resolved (they are tracked as the kept addresses' neighbours).
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

// Changed receives a value (coalesced) after the answer of Lookup or
// LookupNextHop for a tracked address changed: it was resolved, its MAC,
// interface, gateway, source address or MTU changed, or it became
// unusable.
func (c *NeighCache) Changed() <-chan struct{} { return c.changed }

// Close stops the goroutines and closes the netlink sockets.
func (c *NeighCache) Close() {
	c.closed.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.k.close()
	})
}

// lookupLocked is Lookup's answer for a tracked address.
func (c *NeighCache) lookupLocked(addr netip.Addr, t *neighTarget) (net.HardwareAddr, int, error) {
	if t.routeErr != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrNotOnLink, t.routeErr)
	}
	if t.route.gateway.IsValid() {
		return nil, 0, fmt.Errorf("%w: %v via %v", ErrNotOnLink, addr, t.route.gateway)
	}
	mac, err := c.neighbourLocked(t.route.ifindex, addr)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v: %s", ErrUnresolved, addr, err.Error())
	}
	return mac, t.route.ifindex, nil
}

// nextHopLocked is LookupNextHop's answer for a tracked address.
func (c *NeighCache) nextHopLocked(addr netip.Addr, t *neighTarget) (NextHop, error) {
	if t.routeErr != nil {
		return NextHop{}, t.routeErr
	}
	r := t.route
	nb := r.neighbour(addr)
	mac, err := c.neighbourLocked(r.ifindex, nb)
	if err != nil {
		if nb != addr {
			return NextHop{}, fmt.Errorf("%w: %v: gateway %v: %s", ErrUnresolved, addr, nb, err.Error())
		}
		return NextHop{}, fmt.Errorf("%w: %v: %s", ErrUnresolved, addr, err.Error())
	}
	return NextHop{MAC: mac, Ifindex: r.ifindex, Gateway: r.gateway, Src: r.src, MTU: r.mtu}, nil
}

// neighbourLocked is the usable MAC of nb on ifindex, or why not.
func (c *NeighCache) neighbourLocked(ifindex int, nb netip.Addr) (net.HardwareAddr, error) {
	e, ok := c.table[neighKey{ifindex, nb}]
	if !ok {
		return nil, errors.New("no neighbour entry")
	}
	if !e.usable() {
		return nil, fmt.Errorf("neighbour state %s", neighStateName(e.state))
	}
	return append(net.HardwareAddr(nil), e.mac...), nil
}

// wantsNeighbour says whether t's answer depends on the entry of nb on
// ifindex (and so whether the resolver solicits it).
func (t *neighTarget) wantsNeighbour(addr netip.Addr, ifindex int, nb netip.Addr) bool {
	if t.routeErr != nil || t.route.ifindex != ifindex {
		return false
	}
	if t.route.gateway.IsValid() {
		return t.nextHop && t.route.gateway == nb
	}
	return addr == nb
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
	if !t.nextHop {
		mac, idx, err := c.lookupLocked(a, t)
		return neighAnswer{mac: string(mac), ifindex: idx, usable: err == nil}
	}
	nh, err := c.nextHopLocked(a, t)
	return neighAnswer{mac: string(nh.MAC), ifindex: nh.Ifindex, gateway: nh.Gateway, src: nh.Src, mtu: nh.MTU, usable: err == nil}
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
	// The targets whose answer can depend on this entry: the address
	// itself (Lookup answers "not on link" from the route alone otherwise)
	// and those routed via it as their gateway.
	var affected []netip.Addr
	var before []neighAnswer
	for ta, t := range c.targets {
		if ta == a || t.wantsNeighbour(ta, u.LinkIndex, a) {
			affected = append(affected, ta)
			before = append(before, c.answerOfLocked(ta, t))
		}
	}
	gone := u.Type == unix.RTM_DELNEIGH
	if gone {
		delete(c.table, k)
	} else {
		c.table[k] = neighEntry{mac: append(net.HardwareAddr(nil), u.HardwareAddr...), state: u.State}
	}
	changed := false
	resolveAgain := false
	for i, ta := range affected {
		t := c.targets[ta]
		if c.answerOfLocked(ta, t) != before[i] {
			changed = true
		}
		// The kernel dropped the entry (garbage collection, `ip neigh
		// flush`): ask again now rather than at the next refresh.
		if gone && t.wantsNeighbour(ta, u.LinkIndex, a) {
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
// the ones marked for solicitation) and solicits the neighbours without a
// usable entry: the address itself when on link, its gateway when it was
// asked by LookupNextHop. Each neighbour is solicited once per pass
// however many addresses share it. No lock is held during netlink calls.
func (c *NeighCache) resolveOnce(all bool) {
	c.mu.Lock()
	var work []netip.Addr
	for a, t := range c.targets {
		if all || t.solicit {
			work = append(work, a)
		}
	}
	c.mu.Unlock()
	solicited := map[neighKey]bool{}
	for _, a := range work {
		r, rerr := c.k.route(a)
		c.mu.Lock()
		t := c.targets[a]
		if t == nil { // forgotten meanwhile
			c.mu.Unlock()
			continue
		}
		before := c.answerOfLocked(a, t)
		t.route, t.routeErr, t.solicit = r, rerr, false
		after := c.answerOfLocked(a, t)
		nb := r.neighbour(a)
		want := t.wantsNeighbour(a, r.ifindex, nb)
		_, nbErr := c.neighbourLocked(r.ifindex, nb)
		c.mu.Unlock()
		if after != before {
			c.notify()
		}
		key := neighKey{r.ifindex, nb}
		if !want || nbErr == nil || solicited[key] {
			continue
		}
		solicited[key] = true
		if err := c.k.solicit(r.ifindex, nb); err != nil {
			c.log.Warn("netif: cannot ask the kernel to resolve a neighbour", "addr", a, "neighbour", nb, "ifindex", r.ifindex, "err", err)
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

func (k *netlinkNeighKernel) route(addr netip.Addr) (neighRoute, error) {
	routes, err := k.h.RouteGet(net.IP(addr.AsSlice()))
	if err != nil {
		return neighRoute{}, fmt.Errorf("%w: %v: %v", ErrNoRoute, addr, err)
	}
	if len(routes) == 0 {
		return neighRoute{}, fmt.Errorf("%w: %v", ErrNoRoute, addr)
	}
	return k.nextHopOf(addr, routes[0])
}

// nextHopOf turns RouteGet's answer into a neighRoute.
func (k *netlinkNeighKernel) nextHopOf(addr netip.Addr, rt netlink.Route) (neighRoute, error) {
	if rt.Type != unix.RTN_UNICAST {
		// local (an address of this host), blackhole, unreachable,
		// prohibit (IPv6 answers these with a route rather than an error).
		return neighRoute{}, fmt.Errorf("%w: %v: route type %d", ErrNoRoute, addr, rt.Type)
	}
	if rt.LinkIndex <= 0 {
		return neighRoute{}, fmt.Errorf("%w: %v: route without an interface", ErrNoRoute, addr)
	}
	r := neighRoute{ifindex: rt.LinkIndex, mtu: rt.MTU}
	if rt.Gw != nil {
		gw, ok := netip.AddrFromSlice(rt.Gw)
		if !ok {
			return neighRoute{}, fmt.Errorf("%w: %v: gateway %v", ErrNoRoute, addr, rt.Gw)
		}
		r.gateway = gw.Unmap()
	} else if rt.Via != nil {
		// An IPv4 route via an IPv6 gateway (RFC 5549) is not one the
		// neighbour table of the route's family answers for.
		return neighRoute{}, fmt.Errorf("%w: %v: via %v (a gateway of another family)", ErrNoRoute, addr, rt.Via)
	}
	if src, ok := netip.AddrFromSlice(rt.Src); ok {
		r.src = src.Unmap()
	}
	if r.mtu == 0 {
		l, err := k.h.LinkByIndex(rt.LinkIndex)
		if err != nil {
			return neighRoute{}, fmt.Errorf("%w: %v: interface %d: %v", ErrNoRoute, addr, rt.LinkIndex, err)
		}
		r.mtu = l.Attrs().MTU
	}
	return r, nil
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
