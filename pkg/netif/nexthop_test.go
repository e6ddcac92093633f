package netif

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

var (
	nhFar1 = netip.MustParseAddr("198.51.100.31")
	nhFar2 = netip.MustParseAddr("198.51.100.32")
	nhFar6 = netip.MustParseAddr("2001:db8:99::33")
	nhGw2  = netip.MustParseAddr("192.0.2.2")
	nhGw6  = netip.MustParseAddr("fe80::1")
	nhSrc  = netip.MustParseAddr("192.0.2.11")
	nhSrc6 = netip.MustParseAddr("2001:db8::11")
)

func wantNextHop(t *testing.T, c *NeighCache, a netip.Addr, want NextHop) {
	t.Helper()
	got, err := c.LookupNextHop(a)
	if err != nil {
		t.Fatalf("LookupNextHop(%v): %v, want %+v", a, err, want)
	}
	if !sameNextHop(got, want) {
		t.Fatalf("LookupNextHop(%v) = %+v, want %+v", a, got, want)
	}
}

func sameNextHop(a, b NextHop) bool {
	return a.MAC.String() == b.MAC.String() && a.Ifindex == b.Ifindex && a.Gateway == b.Gateway && a.Src == b.Src && a.MTU == b.MTU
}

func mustChange(t *testing.T, c *NeighCache, what string) {
	t.Helper()
	if !changedNow(c) {
		t.Fatalf("no Changed after %s", what)
	}
}

func (k *fakeNeighKernel) solicitedOn() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]string, len(k.solicited))
	for i, a := range k.solicited {
		out[i] = a.String() + "%" + strconv.Itoa(k.soliIdx[i])
	}
	return out
}

// TestNeighCacheNextHop drives the gateway path by hand: the gateway is
// the neighbour solicited (once for the addresses sharing it) and
// resolved, Lookup's answer for direct routing is unchanged, and every
// change of gateway, source, MTU or interface fires Changed.
func TestNeighCacheNextHop(t *testing.T) {
	k := newFakeNeighKernel()
	k.setRoute(nhFar1, neighRoute{ifindex: 3, gateway: fakeGateway, src: nhSrc, mtu: 1400})
	k.setRoute(nhFar2, neighRoute{ifindex: 3, gateway: fakeGateway, src: nhSrc, mtu: 1500})
	k.routes[nbA] = 3
	k.unrouted[nbFar] = true
	c := newNeighCache(k, NeighOptions{})

	for _, a := range []netip.Addr{nhFar1, nhFar2, nbA} {
		if _, err := c.LookupNextHop(a); !errors.Is(err, ErrUnresolved) || errors.Is(err, ErrNoRoute) {
			t.Fatalf("LookupNextHop(%v) before resolution: %v, want ErrUnresolved", a, err)
		}
	}
	if _, err := c.LookupNextHop(nbFar); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("LookupNextHop of an unrouted address: %v, want ErrNoRoute", err)
	}
	// Direct routing: a gatewayed address is still "not on link", and an
	// unrouted one too.
	if _, _, err := c.Lookup(nhFar1); !errors.Is(err, ErrNotOnLink) {
		t.Fatalf("Lookup of a gatewayed address: %v, want ErrNotOnLink", err)
	}
	if _, _, err := c.Lookup(nbFar); !errors.Is(err, ErrNotOnLink) || !errors.Is(err, ErrNoRoute) {
		t.Fatalf("Lookup of an unrouted address: %v, want ErrNotOnLink and ErrNoRoute", err)
	}
	c.resolveOnce(false)
	got := k.solicitedOn()
	slices.Sort(got)
	if want := []string{"192.0.2.1%3", "192.0.2.21%3"}; !slices.Equal(got, want) {
		t.Fatalf("solicited %v, want the gateway once and the on-link address %v", got, want)
	}
	if changedNow(c) {
		t.Fatal("Changed fired before any answer changed")
	}

	// The gateway answers: both addresses behind it resolve at once.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, fakeGateway, netlink.NUD_REACHABLE, nbMAC1))
	mustChange(t, c, "the gateway resolved")
	wantNextHop(t, c, nhFar1, NextHop{MAC: nbMAC1, Ifindex: 3, Gateway: fakeGateway, Src: nhSrc, MTU: 1400})
	wantNextHop(t, c, nhFar2, NextHop{MAC: nbMAC1, Ifindex: 3, Gateway: fakeGateway, Src: nhSrc, MTU: 1500})
	if _, _, err := c.Lookup(nhFar1); !errors.Is(err, ErrNotOnLink) {
		t.Fatalf("Lookup after the gateway resolved: %v, want ErrNotOnLink still", err)
	}
	// The on-link address: itself, no gateway.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nbA, netlink.NUD_REACHABLE, nbMAC2))
	mustChange(t, c, "the on-link address resolved")
	wantNextHop(t, c, nbA, NextHop{MAC: nbMAC2, Ifindex: 3, MTU: 1500})
	if mac, idx, err := c.Lookup(nbA); err != nil || mac.String() != nbMAC2.String() || idx != 3 {
		t.Fatalf("Lookup of the on-link address: %v %d %v", mac, idx, err)
	}

	// The gateway's MAC changes: a change for the addresses behind it.
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, fakeGateway, netlink.NUD_REACHABLE, nbMAC2))
	mustChange(t, c, "the gateway's MAC changed")
	wantNextHop(t, c, nhFar1, NextHop{MAC: nbMAC2, Ifindex: 3, Gateway: fakeGateway, Src: nhSrc, MTU: 1400})

	// Each route field the refresh re-reads is a change.
	steps := []struct {
		name string
		r    neighRoute
	}{
		{"mtu", neighRoute{ifindex: 3, gateway: fakeGateway, src: nhSrc, mtu: 1300}},
		{"src", neighRoute{ifindex: 3, gateway: fakeGateway, src: nbA, mtu: 1300}},
	}
	for _, st := range steps {
		k.setRoute(nhFar1, st.r)
		c.resolveOnce(true)
		if !changedNow(c) {
			t.Fatalf("no Changed after the route's %s changed", st.name)
		}
		wantNextHop(t, c, nhFar1, NextHop{MAC: nbMAC2, Ifindex: 3, Gateway: fakeGateway, Src: st.r.src, MTU: st.r.mtu})
	}
	c.resolveOnce(true)
	if changedNow(c) {
		t.Fatal("a refresh without a route change fired Changed")
	}
	// Another gateway: unresolved (a change), and it is the one solicited.
	n := len(k.solicitations())
	k.setRoute(nhFar1, neighRoute{ifindex: 3, gateway: nhGw2, src: nhSrc, mtu: 1400})
	c.resolveOnce(true)
	if _, err := c.LookupNextHop(nhFar1); !errors.Is(err, ErrUnresolved) || !changedNow(c) {
		t.Fatalf("after the gateway moved: %v, want ErrUnresolved and a change", err)
	}
	if got := k.solicitations()[n:]; len(got) != 1 || got[0] != nhGw2 {
		t.Fatalf("solicited %v after the gateway moved, want [%v]", got, nhGw2)
	}
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, nhGw2, netlink.NUD_STALE, nbMAC1))
	mustChange(t, c, "the new gateway resolved")
	wantNextHop(t, c, nhFar1, NextHop{MAC: nbMAC1, Ifindex: 3, Gateway: nhGw2, Src: nhSrc, MTU: 1400})
	// Another interface: the gateway's entry there is another entry.
	k.setRoute(nhFar1, neighRoute{ifindex: 4, gateway: nhGw2, src: nhSrc, mtu: 1400})
	c.resolveOnce(true)
	if _, err := c.LookupNextHop(nhFar1); !errors.Is(err, ErrUnresolved) || !changedNow(c) {
		t.Fatalf("after the interface changed: %v, want ErrUnresolved and a change", err)
	}
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 4, nhGw2, netlink.NUD_REACHABLE, nbMAC2))
	mustChange(t, c, "the gateway resolved on the new interface")
	wantNextHop(t, c, nhFar1, NextHop{MAC: nbMAC2, Ifindex: 4, Gateway: nhGw2, Src: nhSrc, MTU: 1400})
	// The route goes away: ErrNoRoute, a change; it comes back.
	k.mu.Lock()
	delete(k.full, nhFar1)
	k.unrouted[nhFar1] = true
	k.mu.Unlock()
	c.resolveOnce(true)
	if _, err := c.LookupNextHop(nhFar1); !errors.Is(err, ErrNoRoute) || !changedNow(c) {
		t.Fatalf("after the route went: %v, want ErrNoRoute and a change", err)
	}
	k.mu.Lock()
	delete(k.unrouted, nhFar1)
	k.mu.Unlock()
	k.setRoute(nhFar1, neighRoute{ifindex: 4, gateway: nhGw2, src: nhSrc, mtu: 1400})
	c.resolveOnce(true)
	mustChange(t, c, "the route came back")
	wantNextHop(t, c, nhFar1, NextHop{MAC: nbMAC2, Ifindex: 4, Gateway: nhGw2, Src: nhSrc, MTU: 1400})

	// Keep keeps the gateway of a kept address: its deletion still wakes
	// the resolver, which solicits it, and its answer is still a change.
	c.Keep([]netip.Addr{nhFar2})
	changedNow(c)
	for len(c.kick) > 0 {
		<-c.kick
	}
	c.handle(neighEvent(unix.RTM_DELNEIGH, 3, fakeGateway, netlink.NUD_REACHABLE, nbMAC2))
	select {
	case <-c.kick:
	default:
		t.Fatal("deleting a kept address's gateway did not wake the resolver")
	}
	if _, err := c.LookupNextHop(nhFar2); !errors.Is(err, ErrUnresolved) || !changedNow(c) {
		t.Fatalf("gateway deleted: %v, want ErrUnresolved and a change", err)
	}
	n = len(k.solicitations())
	c.resolveOnce(false)
	if got := k.solicitations()[n:]; len(got) != 1 || got[0] != fakeGateway {
		t.Fatalf("after Keep, solicited %v, want the kept address's gateway %v only", got, fakeGateway)
	}
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, fakeGateway, netlink.NUD_REACHABLE, nbMAC1))
	if !changedNow(c) {
		t.Fatal("the kept address's gateway resolving did not fire Changed")
	}
	wantNextHop(t, c, nhFar2, NextHop{MAC: nbMAC1, Ifindex: 3, Gateway: fakeGateway, Src: nhSrc, MTU: 1500})
	// The forgotten ones: their gateway (nhGw2 on 4) is no longer solicited.
	c.handle(neighEvent(unix.RTM_DELNEIGH, 4, nhGw2, netlink.NUD_REACHABLE, nbMAC2))
	n = len(k.solicitations())
	c.resolveOnce(true)
	if changedNow(c) || len(k.solicitations()) != n {
		t.Fatalf("a forgotten address's gateway is still resolved or reported: %v", k.solicitations()[n:])
	}
}

// TestNeighCacheNextHopIPv6 is the IPv6 path, with a link-local gateway
// (what router advertisements and most static routes give).
func TestNeighCacheNextHopIPv6(t *testing.T) {
	k := newFakeNeighKernel()
	k.setRoute(nhFar6, neighRoute{ifindex: 5, gateway: nhGw6, src: nhSrc6, mtu: 1280})
	c := newNeighCache(k, NeighOptions{})
	if _, err := c.LookupNextHop(nhFar6); !errors.Is(err, ErrUnresolved) {
		t.Fatalf("LookupNextHop: %v, want ErrUnresolved", err)
	}
	c.resolveOnce(false)
	if got := k.solicitedOn(); len(got) != 1 || got[0] != "fe80::1%5" {
		t.Fatalf("solicited %v, want the link-local gateway on 5", got)
	}
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 5, nhGw6, netlink.NUD_REACHABLE|netlink.NUD_NOARP, nbMAC1))
	mustChange(t, c, "the IPv6 gateway resolved")
	wantNextHop(t, c, nhFar6, NextHop{MAC: nbMAC1, Ifindex: 5, Gateway: nhGw6, Src: nhSrc6, MTU: 1280})
	if _, _, err := c.Lookup(nhFar6); !errors.Is(err, ErrNotOnLink) {
		t.Fatalf("Lookup of a gatewayed IPv6 address: %v, want ErrNotOnLink", err)
	}
}

// TestNeighCacheLookupThenNextHop: an address first asked by Lookup (DR,
// whose gateway is not solicited) and then by LookupNextHop (TUN) gets its
// gateway resolved.
func TestNeighCacheLookupThenNextHop(t *testing.T) {
	k := newFakeNeighKernel()
	c := newNeighCache(k, NeighOptions{})
	if _, _, err := c.Lookup(nhFar1); !errors.Is(err, ErrNotOnLink) {
		t.Fatalf("Lookup: %v, want ErrNotOnLink", err)
	}
	c.resolveOnce(true)
	if got := k.solicitations(); len(got) != 0 {
		t.Fatalf("Lookup alone solicited %v", got)
	}
	if _, err := c.LookupNextHop(nhFar1); !errors.Is(err, ErrUnresolved) {
		t.Fatalf("LookupNextHop: %v, want ErrUnresolved", err)
	}
	c.resolveOnce(false)
	if got := k.solicitations(); len(got) != 1 || got[0] != fakeGateway {
		t.Fatalf("solicited %v, want the gateway %v", got, fakeGateway)
	}
	c.handle(neighEvent(unix.RTM_NEWNEIGH, 3, fakeGateway, netlink.NUD_REACHABLE, nbMAC1))
	mustChange(t, c, "the gateway resolved")
	wantNextHop(t, c, nhFar1, NextHop{MAC: nbMAC1, Ifindex: 3, Gateway: fakeGateway, MTU: 1500})
}

// TestNeighCacheNextHopInKernel checks the netlink side: routes via a
// gateway (IPv4 and IPv6, one with an mtu metric, one without), the
// gateway answering ARP / neighbour solicitations, and the NextHop read
// from RouteGet and the kernel's neighbour table.
func TestNeighCacheNextHopInKernel(t *testing.T) {
	n := testnet.New(t)
	lb := n.AddHost("lb", "192.0.2.11/24", testnet.WithAddr("2001:db8::11/64"))
	gw := n.AddHost("gw", "192.0.2.1/24", testnet.WithAddr("2001:db8::1/64"))
	lb.MustExec("ip", "link", "set", lb.Iface(), "mtu", "1450")
	lb.MustExec("ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.1", "mtu", "1400")
	lb.MustExec("ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.1")
	lb.MustExec("ip", "-6", "route", "add", "2001:db8:99::/64", "via", "2001:db8::1", "mtu", "1380")
	lb.MustExec("ip", "-6", "route", "add", "2001:db8:98::/64", "via", "2001:db8::1")
	link, err := lb.Link()
	if err != nil {
		t.Fatal(err)
	}
	var c *NeighCache
	lb.MustDo(func() (err error) {
		c, err = NewNeighCache(NeighOptions{Refresh: 200 * time.Millisecond})
		return err
	})
	defer c.Close()
	idx := link.Attrs().Index
	cases := []struct {
		addr netip.Addr
		want NextHop
	}{
		{netip.MustParseAddr("198.51.100.7"), NextHop{MAC: gw.MAC(), Ifindex: idx, Gateway: gw.Addr(4), Src: lb.Addr(4), MTU: 1400}},
		{netip.MustParseAddr("203.0.113.7"), NextHop{MAC: gw.MAC(), Ifindex: idx, Gateway: gw.Addr(4), Src: lb.Addr(4), MTU: 1450}},
		{netip.MustParseAddr("2001:db8:99::7"), NextHop{MAC: gw.MAC(), Ifindex: idx, Gateway: gw.Addr(6), Src: lb.Addr(6), MTU: 1380}},
		{netip.MustParseAddr("2001:db8:98::7"), NextHop{MAC: gw.MAC(), Ifindex: idx, Gateway: gw.Addr(6), Src: lb.Addr(6), MTU: 1450}},
		{gw.Addr(4), NextHop{MAC: gw.MAC(), Ifindex: idx, Src: lb.Addr(4), MTU: 1450}},
	}
	for i, tc := range cases {
		t0 := time.Now()
		_, err := c.LookupNextHop(tc.addr)
		if took := time.Since(t0); took > time.Second {
			t.Errorf("LookupNextHop(%v) took %v: it must not wait for resolution", tc.addr, took)
		}
		// The first address behind each gateway cannot be resolved yet;
		// the gateway may answer before the next one is asked.
		if first := i == 0 || i == 2; first && !errors.Is(err, ErrUnresolved) || err != nil && !errors.Is(err, ErrUnresolved) {
			t.Fatalf("first LookupNextHop(%v): %v, want ErrUnresolved", tc.addr, err)
		}
		if _, _, err := c.Lookup(tc.addr); tc.want.Gateway.IsValid() && !errors.Is(err, ErrNotOnLink) {
			t.Fatalf("Lookup(%v) via a gateway: %v, want ErrNotOnLink", tc.addr, err)
		}
	}
	testnet.Eventually(t, 10*time.Second, func() error {
		for _, tc := range cases {
			got, err := c.LookupNextHop(tc.addr)
			if err != nil {
				return err
			}
			if !sameNextHop(got, tc.want) {
				return fmt.Errorf("LookupNextHop(%v) = %+v, want %+v", tc.addr, got, tc.want)
			}
		}
		return nil
	})
	select {
	case <-c.Changed():
	default:
		t.Error("resolution did not signal Changed")
	}
	if _, err := c.LookupNextHop(netip.MustParseAddr("10.9.9.9")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("LookupNextHop of an unrouted address: %v, want ErrNoRoute", err)
	}
	lb.MustExec("ip", "route", "add", "unreachable", "10.8.0.0/16")
	lb.MustExec("ip", "-6", "route", "add", "unreachable", "2001:db8:97::/64")
	for _, a := range []string{"10.8.0.1", "2001:db8:97::1", "192.0.2.11"} {
		if _, err := c.LookupNextHop(netip.MustParseAddr(a)); !errors.Is(err, ErrNoRoute) {
			t.Errorf("LookupNextHop(%s) (unreachable or local): %v, want ErrNoRoute", a, err)
		}
	}

	// The periodic refresh re-reads the routes: a new mtu metric and src
	// are the answer, and Changed says so.
	for len(c.Changed()) > 0 {
		<-c.Changed()
	}
	lb.MustExec("ip", "addr", "add", "192.0.2.99/24", "dev", lb.Iface())
	lb.MustExec("ip", "route", "change", "198.51.100.0/24", "via", "192.0.2.1", "mtu", "1300", "src", "192.0.2.99")
	lb.MustExec("ip", "-6", "route", "change", "2001:db8:99::/64", "via", "2001:db8::1", "mtu", "1290")
	want4 := NextHop{MAC: gw.MAC(), Ifindex: idx, Gateway: gw.Addr(4), Src: netip.MustParseAddr("192.0.2.99"), MTU: 1300}
	want6 := NextHop{MAC: gw.MAC(), Ifindex: idx, Gateway: gw.Addr(6), Src: lb.Addr(6), MTU: 1290}
	select {
	case <-c.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("no Changed within 10 s of the routes' change (refresh 200 ms)")
	}
	testnet.Eventually(t, 10*time.Second, func() error {
		for _, tc := range []struct {
			addr string
			want NextHop
		}{{"198.51.100.7", want4}, {"2001:db8:99::7", want6}} {
			got, err := c.LookupNextHop(netip.MustParseAddr(tc.addr))
			if err != nil {
				return err
			}
			if !sameNextHop(got, tc.want) {
				return fmt.Errorf("after the route change LookupNextHop(%s) = %+v, want %+v", tc.addr, got, tc.want)
			}
		}
		return nil
	})
}
