package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/netif"
)

// withNeighCache gives d a real neighbour cache in h's namespace and the
// refresher that follows it, as Open does.
func withNeighCache(t testing.TB, d *Dataplane, h *testnet.Host) {
	t.Helper()
	var nc *netif.NeighCache
	h.MustDo(func() (err error) {
		nc, err = netif.NewNeighCache(netif.NeighOptions{})
		return err
	})
	d.lvs.resolve = nc
	d.nl = nc
	d.startNeighbourRefresh(nc.Changed()) // stopped, and nc closed, by d.Close
}

// silentReals are n on-link addresses nobody answers ARP for.
func silentReals(n int) []lvs.Dest {
	var out []lvs.Dest
	for i := range n {
		out = append(out, dest(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}), 80, 1))
	}
	return out
}

// realEntry returns the programmed entry of the real server ap of the
// service on id.
func realEntry(t testing.TB, d *Dataplane, id svcIdent, ap netip.AddrPort) xdpvipReal {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.lvs.services[id]
	if e == nil {
		t.Fatalf("no service %v", id)
	}
	rid, ok := e.reals[ap]
	if !ok {
		t.Fatalf("no real %v", ap)
	}
	var r xdpvipReal
	if err := d.objs.Reals.Lookup(rid, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestApplyDoesNotWaitForNeighbours: Apply with many real servers nobody
// answers for returns without waiting for ARP. The synchronous resolver
// this replaced waited 500 ms per unresolved real server (32 s for these
// 64) with the dataplane lock held; the bound below is a tenth of that,
// loose enough for a loaded machine.
func TestApplyDoesNotWaitForNeighbours(t *testing.T) {
	n := testnet.New(t)
	lb := n.AddHost("lb", "192.0.2.11/24")
	d := newTestDataplane(t, 251, nil)
	withNeighCache(t, d, lb)
	const reals = 64
	svc := tcpService(svcVIP4, 80, silentReals(reals)...)
	t0 := time.Now()
	if err := d.Apply([]lvs.Service{svc}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("Apply with %d unresolved real servers: %v", reals, took)
	if limit := reals * 500 * time.Millisecond / 10; took > limit {
		t.Fatalf("Apply took %v with %d unresolved real servers, want well under %v", took, reals, limit)
	}
	if u := d.Unresolved(); len(u) != reals {
		t.Fatalf("Unresolved lists %d real servers, want all %d", len(u), reals)
	}
	id := svcIdent{proto: lvs.ProtoTCP, addr: svcVIP4, port: 80}
	for _, dst := range svc.Dests {
		if r := realEntry(t, d, id, netip.AddrPortFrom(dst.Addr, 80)); r.Flags&realValid != 0 {
			t.Fatalf("silent real server %v is marked valid", dst.Addr)
		}
	}
	// The kernel is asking for them (the cache solicited them).
	testnet.Eventually(t, 10*time.Second, func() error {
		if _, err := lb.Neigh(svc.Dests[reals-1].Addr); err != nil {
			return fmt.Errorf("no neighbour entry being resolved: %w", err)
		}
		return nil
	})
}

// TestRealServerResolvedLaterIsUsed: a real server that cannot answer ARP
// when it is applied gets its MAC programmed, without another Apply, once
// it can.
func TestRealServerResolvedLaterIsUsed(t *testing.T) {
	n := testnet.New(t)
	lb := n.AddHost("lb", "192.0.2.11/24")
	rs := n.AddHost("rs", "192.0.2.12/24")
	n.SetLink(rs, false)
	d := newTestDataplane(t, 251, nil)
	withNeighCache(t, d, lb)
	ap := netip.AddrPortFrom(rs.Addr(4), 80)
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(ap.Addr(), 80, 1))}); err != nil {
		t.Fatal(err)
	}
	id := svcIdent{proto: lvs.ProtoTCP, addr: svcVIP4, port: 80}
	if r := realEntry(t, d, id, ap); r.Flags&realValid != 0 {
		t.Fatalf("real server behind a cut cable is valid: %+v", r)
	}
	n.SetLink(rs, true)
	testnet.Eventually(t, 20*time.Second, func() error {
		r := realEntry(t, d, id, ap)
		if r.Flags&realValid == 0 || net.HardwareAddr(r.Mac[:]).String() != rs.MAC().String() {
			return fmt.Errorf("real entry %+v, want valid with MAC %v", r, rs.MAC())
		}
		return nil
	})
	if u := d.Unresolved(); len(u) != 0 {
		t.Fatalf("Unresolved = %v after the real server was programmed", u)
	}
}

// BenchmarkApplyNeighbours reports ns per Apply of one service with 64
// real servers, resolved from a table (the baseline) and unresolved in a
// real neighbour cache, and the ratio of the two (x-resolved).
func BenchmarkApplyNeighbours(b *testing.B) {
	const reals = 64
	dests := silentReals(reals)
	svc := []lvs.Service{tcpService(svcVIP4, 80, dests...)}
	res := fakeResolver{}
	for _, dst := range dests {
		res[dst.Addr] = fakeNeigh{mac: lbMAC, ifindex: lbIfindex}
	}
	base := newTestDataplane(b, 251, res)
	n := testnet.New(b)
	lb := n.AddHost("lb", "192.0.2.11/24")
	cached := newTestDataplane(b, 251, nil)
	withNeighCache(b, cached, lb)
	measure := func(d *Dataplane, runs int) time.Duration {
		t0 := time.Now()
		for range runs {
			if err := d.Apply(svc); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0) / time.Duration(runs)
	}
	measure(base, 1)
	measure(cached, 1)
	b.ResetTimer()
	per := measure(cached, b.N)
	b.StopTimer()
	basePer := measure(base, max(b.N, 20))
	b.ReportMetric(float64(per)/float64(basePer), "x-resolved")
}
