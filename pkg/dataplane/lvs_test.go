package dataplane

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

var (
	svcVIP4 = netip.MustParseAddr("192.0.2.100")
	svcVIP6 = netip.MustParseAddr("2001:db8::100")
	rs1     = netip.MustParseAddr("192.0.2.11")
	rs2     = netip.MustParseAddr("192.0.2.12")
	rs3     = netip.MustParseAddr("192.0.2.13")
	rsFar   = netip.MustParseAddr("198.51.100.14")
	rs6     = netip.MustParseAddr("2001:db8::11")
	rsMAC   = map[netip.Addr]net.HardwareAddr{
		rs1:   mustMAC("02:00:00:00:01:11"),
		rs2:   mustMAC("02:00:00:00:01:12"),
		rs3:   mustMAC("02:00:00:00:01:13"),
		rsFar: mustMAC("02:00:00:00:01:14"),
		rs6:   mustMAC("02:00:00:00:06:11"),
	}
	vmac4 = mustMAC("00:00:5e:00:01:33")
	vmac6 = mustMAC("00:00:5e:00:02:33")
)

const farIfindex = 9

func testResolver() fakeResolver {
	r := fakeResolver{}
	for a, m := range rsMAC {
		r[a] = fakeNeigh{mac: m, ifindex: lbIfindex}
	}
	r[rsFar] = fakeNeigh{mac: rsMAC[rsFar], ifindex: farIfindex}
	return r
}

func dest(a netip.Addr, port uint16, w int) lvs.Dest {
	return lvs.Dest{Addr: a, Port: port, Weight: w, Method: "DR"}
}

func tcpService(vip netip.Addr, port uint16, dests ...lvs.Dest) lvs.Service {
	return lvs.Service{Key: lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: vip, Port: port}, Scheduler: "wrr", Dests: dests}
}

// macOwner maps a rewritten destination MAC back to its real server.
func macOwner(mac []byte) netip.Addr {
	for a, m := range rsMAC {
		if bytes.Equal(m, mac) {
			return a
		}
	}
	return netip.Addr{}
}

func TestDRFixtures(t *testing.T) {
	d := newTestDataplane(t, 251, testResolver())
	err := d.Apply([]lvs.Service{
		tcpService(svcVIP4, 80, dest(rs1, 80, 1)),
		{Key: lvs.ServiceKey{Proto: lvs.ProtoUDP, Addr: svcVIP4, Port: 53}, Scheduler: "rr", Dests: []lvs.Dest{dest(rsFar, 53, 1)}},
		tcpService(svcVIP6, 443, dest(rs6, 443, 1)),
		tcpService(netip.MustParseAddr("192.0.2.101"), 80, dest(rs1, 80, 1)),
	})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, v := range []netip.Addr{svcVIP4, svcVIP6} {
		if err := d.SetVIPActive(v, true); err != nil {
			t.Fatal(err)
		}
	}
	client4 := netip.MustParseAddrPort("198.51.100.7:40000")
	client6 := netip.MustParseAddrPort("[2001:db8:1::7]:40000")
	tcp4 := func(dstMAC net.HardwareAddr, port uint16) []byte {
		return packet.TCPFrame(dstMAC, clientMAC, client4, netip.AddrPortFrom(svcVIP4, port), packet.SYN, nil)
	}
	tests := []struct {
		name    string
		frame   []byte
		verdict uint32
		toMAC   net.HardwareAddr // expected destination MAC after rewrite (nil: unchanged frame)
		counter string
	}{
		{"IPv4 to our MAC while MASTER", tcp4(lbMAC, 80), xdpTX, rsMAC[rs1], "fwd_tx"},
		{"IPv4 to the VRRP virtual MAC", tcp4(vmac4, 80), xdpTX, rsMAC[rs1], "fwd_tx"},
		{"IPv4 with a payload", packet.TCPFrame(lbMAC, clientMAC, client4, netip.AddrPortFrom(svcVIP4, 80), packet.ACK|packet.PSH, []byte("GET / HTTP/1.0\r\n\r\n")), xdpTX, rsMAC[rs1], "fwd_tx"},
		{"IPv6 to our MAC", packet.TCPFrame(lbMAC, clientMAC, client6, netip.AddrPortFrom(svcVIP6, 443), packet.SYN, nil), xdpTX, rsMAC[rs6], "fwd_tx"},
		{"IPv6 to the IPv6 virtual MAC", packet.TCPFrame(vmac6, clientMAC, client6, netip.AddrPortFrom(svcVIP6, 443), packet.SYN, nil), xdpTX, rsMAC[rs6], "fwd_tx"},
		{"real server behind another interface", packet.UDPFrame(lbMAC, clientMAC, client4, netip.AddrPortFrom(svcVIP4, 53), []byte("q")), xdpRedirect, rsMAC[rsFar], "fwd_redirect"},
		{"another host's MAC (bridge flooding)", tcp4(otherMAC, 80), xdpPass, nil, ""},
		{"IPv6 virtual MAC on an IPv4 frame", tcp4(vmac6, 80), xdpPass, nil, ""},
		{"port without a service", tcp4(lbMAC, 8080), xdpPass, nil, ""},
		{"UDP to a TCP service port", packet.UDPFrame(lbMAC, clientMAC, client4, netip.AddrPortFrom(svcVIP4, 80), nil), xdpPass, nil, ""},
		{"VIP not active (BACKUP)", packet.TCPFrame(lbMAC, clientMAC, client4, netip.MustParseAddrPort("192.0.2.101:80"), packet.SYN, nil), xdpPass, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counters(t, d)
			v, out := run(t, d, tt.frame)
			if v != tt.verdict {
				t.Fatalf("verdict %s, want %s", verdictNames[v], verdictNames[tt.verdict])
			}
			want := tt.frame
			if tt.toMAC != nil {
				want = append(append(append([]byte{}, tt.toMAC...), lbMAC...), tt.frame[12:]...)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output frame\n got % x\nwant % x", out[:min(len(out), 34)], want[:min(len(want), 34)])
			}
			delta := counterDelta(before, counters(t, d))
			wantDelta := map[string]uint64{}
			if tt.counter != "" {
				wantDelta[tt.counter] = 1
			}
			if fmt.Sprint(delta) != fmt.Sprint(wantDelta) {
				t.Errorf("counters changed by %v, want %v", delta, wantDelta)
			}
		})
	}

	// BACKUP again: the same frame that was forwarded now goes to the kernel.
	if err := d.SetVIPActive(svcVIP4, false); err != nil {
		t.Fatal(err)
	}
	if v, out := run(t, d, tcp4(lbMAC, 80)); v != xdpPass || !bytes.Equal(out, tcp4(lbMAC, 80)) {
		t.Errorf("after SetVIPActive(false): verdict %s (frame changed: %v), want untouched PASS", verdictNames[v], !bytes.Equal(out, tcp4(lbMAC, 80)))
	}
}

// sendFlows runs one SYN per flow i (source address and port derived from
// i) and returns the real server each went to.
func sendFlows(t *testing.T, d *Dataplane, vip netip.Addr, port uint16, from, to int, clients int) map[int]netip.Addr {
	t.Helper()
	got := make(map[int]netip.Addr, to-from)
	for i := from; i < to; i++ {
		c := i % clients
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(c >> 16), byte(c >> 8), byte(c)}), uint16(1024+i/clients))
		v, out := run(t, d, packet.TCPFrame(lbMAC, clientMAC, src, netip.AddrPortFrom(vip, port), packet.SYN, nil))
		if v != xdpTX {
			t.Fatalf("flow %d: verdict %s, want TX", i, verdictNames[v])
		}
		rs := macOwner(out[0:6])
		if !rs.IsValid() {
			t.Fatalf("flow %d: unknown destination MAC % x", i, out[0:6])
		}
		got[i] = rs
	}
	return got
}

func TestMaglevDistributionFollowsWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("100 000 prog.Run calls; skipped with -short")
	}
	d := newTestDataplane(t, DefaultTableSize, testResolver())
	weights := map[netip.Addr]int{rs1: 1, rs2: 2, rs3: 3}
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs2, 80, 2), dest(rs3, 80, 3))}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		t.Fatal(err)
	}
	const flows = 100000
	got := map[netip.Addr]int{}
	for _, rs := range sendFlows(t, d, svcVIP4, 80, 0, flows, 1000) {
		got[rs]++
	}
	for rs, w := range weights {
		want := float64(flows) * float64(w) / 6
		if dev := math.Abs(float64(got[rs])-want) / want; dev > 0.05 {
			t.Errorf("%v (weight %d): %d flows, want %.0f ±5%% (off by %.1f%%)", rs, w, got[rs], want, dev*100)
		}
	}
	t.Logf("flows per real server: %v", got)

	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Conns != flows || st[0].PktsIn != flows || len(st[0].Dests) != 3 {
		t.Fatalf("Stats = %+v, want one service with %d new flows and packets over 3 real servers", st, flows)
	}
	for _, ds := range st[0].Dests {
		if int(ds.Conns) != got[ds.Addr] || int(ds.PktsIn) != got[ds.Addr] || ds.BytesIn != ds.PktsIn*54 {
			t.Errorf("stats of %v: %+v, want %d flows/packets of 54 bytes", ds.Addr, ds, got[ds.Addr])
		}
	}
}

func TestFlowKeepsRealServerWhenOneIsAdded(t *testing.T) {
	d := newTestDataplane(t, 251, testResolver())
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs2, 80, 1))}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		t.Fatal(err)
	}
	first := sendFlows(t, d, svcVIP4, 80, 0, 2000, 100)
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs2, 80, 1), dest(rs3, 80, 1))}); err != nil {
		t.Fatal(err)
	}
	again := sendFlows(t, d, svcVIP4, 80, 0, 2000, 100)
	for i, rs := range first {
		if again[i] != rs {
			t.Fatalf("flow %d moved from %v to %v after a real server was added", i, rs, again[i])
		}
	}
	fresh := map[netip.Addr]int{}
	for _, rs := range sendFlows(t, d, svcVIP4, 80, 2000, 5000, 100) {
		fresh[rs]++
	}
	if fresh[rs3] < 500 {
		t.Errorf("new flows after adding %v: %v; want about a third on it", rs3, fresh)
	}

	// Removing a real server moves only its flows.
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs3, 80, 1))}); err != nil {
		t.Fatal(err)
	}
	after := sendFlows(t, d, svcVIP4, 80, 0, 2000, 100)
	for i, rs := range first {
		if rs == rs1 && after[i] != rs1 {
			t.Fatalf("flow %d on %v moved to %v when %v was removed", i, rs1, after[i], rs2)
		}
		if after[i] == rs2 {
			t.Fatalf("flow %d still sent to removed %v", i, rs2)
		}
	}
}

func TestPersistenceAndSourceHash(t *testing.T) {
	tests := []struct {
		name string
		svc  lvs.Service
	}{
		{"persistence_timeout", lvs.Service{Key: lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: svcVIP4, Port: 80}, Scheduler: "wrr", PersistenceTimeout: 300 * time.Second,
			Dests: []lvs.Dest{dest(rs1, 80, 1), dest(rs2, 80, 1), dest(rs3, 80, 1)}}},
		{"sh", lvs.Service{Key: lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: svcVIP4, Port: 80}, Scheduler: "sh",
			Dests: []lvs.Dest{dest(rs1, 80, 1), dest(rs2, 80, 1), dest(rs3, 80, 1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDataplane(t, 251, testResolver())
			if err := d.Apply([]lvs.Service{tt.svc}); err != nil {
				t.Fatal(err)
			}
			if err := d.SetVIPActive(svcVIP4, true); err != nil {
				t.Fatal(err)
			}
			// 60 clients, 50 connections (source ports) each.
			flows := sendFlows(t, d, svcVIP4, 80, 0, 3000, 60)
			perClient := map[int]netip.Addr{}
			used := map[netip.Addr]bool{}
			for i, rs := range flows {
				c := i % 60
				if prev, ok := perClient[c]; ok && prev != rs {
					t.Fatalf("client %d went to %v and %v", c, prev, rs)
				}
				perClient[c] = rs
				used[rs] = true
			}
			if len(used) != 3 {
				t.Errorf("60 clients used %d real servers, want 3", len(used))
			}
		})
	}
}

func TestApplyRemovesServicesAndSkipsUnsupported(t *testing.T) {
	d := newTestDataplane(t, 251, testResolver())
	svcs := []lvs.Service{
		tcpService(svcVIP4, 80, dest(rs1, 80, 1)),
		{Key: lvs.ServiceKey{Fwmark: 7, Family: 4}, Dests: []lvs.Dest{dest(rs1, 0, 1)}},
		tcpService(svcVIP4, 81, lvs.Dest{Addr: rs2, Port: 81, Weight: 1, Method: "NAT"}),
	}
	if err := d.Apply(svcs); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	f80 := packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 80), packet.SYN, nil)
	f81 := packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 81), packet.SYN, nil)
	if v, _ := run(t, d, f80); v != xdpTX {
		t.Fatalf("port 80: %s, want TX", verdictNames[v])
	}
	if v, _ := run(t, d, f81); v != xdpPass {
		t.Fatalf("NAT-only service: %s, want PASS", verdictNames[v])
	}
	if err := d.Apply(nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := run(t, d, f80); v != xdpPass {
		t.Fatalf("after removing every service: %s, want PASS", verdictNames[v])
	}
	if st, err := d.Stats(); err != nil || len(st) != 0 {
		t.Fatalf("Stats after removal = %v, %v", st, err)
	}
}

func TestUnresolvedRealServerIsNotUsed(t *testing.T) {
	res := testResolver()
	delete(res, rs2)
	d := newTestDataplane(t, 251, res)
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs2, 80, 1))}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		t.Fatal(err)
	}
	for i, rs := range sendFlows(t, d, svcVIP4, 80, 0, 200, 10) {
		if rs != rs1 {
			t.Fatalf("flow %d went to unresolved %v", i, rs)
		}
	}
	// Once the neighbour table knows it, the refresh puts it in the table.
	res[rs2] = fakeNeigh{mac: rsMAC[rs2], ifindex: lbIfindex}
	d.refreshNeighbours()
	n := 0
	for _, rs := range sendFlows(t, d, svcVIP4, 80, 200, 400, 10) {
		if rs == rs2 {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no new flow went to %v after it was resolved", rs2)
	}
}
