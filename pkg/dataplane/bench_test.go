package dataplane

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// passProgram is the baseline: an XDP program that only returns XDP_PASS.
func passProgram(b *testing.B) *ebpf.Program {
	b.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
	})
	if err != nil {
		b.Fatalf("baseline program: %v", err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// BenchmarkXDP reports ns/packet of the program through prog.Run for each
// path, and the ratio to a return-XDP_PASS program on the same frame
// measured in the same run (x-baseline): the cost of the program itself
// on top of the test-run harness.
func BenchmarkXDP(b *testing.B) {
	requireBPF(b)
	// With repeat > 1, test_run feeds the program the frame it rewrote in
	// the previous round. Give every real server the LB's own MAC so the
	// rewritten frame is still addressed to us and each round takes the full
	// forwarding path (the rewrite writes the same number of bytes).
	res := testResolver()
	for a, n := range res {
		res[a] = fakeNeigh{mac: lbMAC, ifindex: n.ifindex}
	}
	d := newTestDataplane(b, DefaultTableSize, res)
	configureTestVRIDs(b, d)
	if err := d.Apply(benchServices()); err != nil {
		b.Fatal(err)
	}
	for _, v := range []netip.Addr{svcVIP4, svcVIP6} {
		if err := d.SetVIPActive(v, true); err != nil {
			b.Fatal(err)
		}
	}
	base := passProgram(b)
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	client6 := netip.MustParseAddrPort("[2001:db8:1::7]:40000")
	udp := packet.UDPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 53), make([]byte, 64))
	tcp6 := packet.TCPFrame(lbMAC, clientMAC, client6, netip.AddrPortFrom(svcVIP6, 443), packet.ACK, make([]byte, 64))
	cases := []struct {
		name    string
		frame   []byte
		verdict uint32
	}{
		{"non-VIP-pass", packet.TCPFrame(lbMAC, clientMAC, client, netip.MustParseAddrPort("192.0.2.1:22"), packet.ACK, nil), xdpPass},
		{"dr-tx-flow-hit", packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 80), packet.ACK, make([]byte, 64)), xdpTX},
		{"dr-tx-persist-hit", packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 8443), packet.ACK, make([]byte, 64)), xdpTX},
		{"dr-tx-vlan-kept", vlanTagged(packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 80), packet.ACK, make([]byte, 64)), 0x8100, 100), xdpTX},
		{"dr-tx-ipv4-fragment", fragment4(udp, false, 9, 1), xdpTX},
		{"dr-tx-ipv6-flow-hit", tcp6, xdpTX},
		{"dr-tx-ipv6-hbh-dstopts", withExt6(tcp6, hopByHop(1), destOpts(1)), xdpTX},
		{"vrrp-foreign-vrid-drop", advertFrame(b, v3adv(99, vip4), peer4, vrrp.Group4, 255, nil), xdpDrop},
		{"vrrp-bad-checksum-drop", advertFrame(b, v3adv(51, vip4), peer4, vrrp.Group4, 255, func(m []byte) { m[7] ^= 1 }), xdpDrop},
		{"vrrp-valid-v3", advertFrame(b, v3adv(51, vip4), peer4, vrrp.Group4, 255, nil), xdpDrop},
		{"vrrp-valid-v2-auth", advertFrame(b, v2adv(52, "secret", time.Second, vip4), peer4, vrrp.Group4, 255, nil), xdpDrop},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			const baseRuns = 200000
			_, baseT, err := base.Benchmark(c.frame, baseRuns, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			ret, per, err := d.objs.XdpVip.Benchmark(c.frame, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			if ret != c.verdict {
				b.Fatalf("verdict %s, want %s", verdictNames[ret], verdictNames[c.verdict])
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/pkt")
			if baseT > 0 {
				b.ReportMetric(float64(per)/float64(baseT), "x-baseline")
			}
		})
	}
}

// benchServices are the benchmarks' virtual servers: TCP and UDP on
// svcVIP4 (three reals), a persistent one, and IPv6 TCP.
func benchServices() []lvs.Service {
	persistent := tcpService(svcVIP4, 8443, dest(rs1, 8443, 1), dest(rs2, 8443, 1))
	persistent.PersistenceTimeout = time.Minute
	return []lvs.Service{
		tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs2, 80, 2), dest(rs3, 80, 3)),
		udpService(svcVIP4, 53, dest(rs1, 53, 1), dest(rs2, 53, 1)),
		persistent,
		tcpService(svcVIP6, 443, dest(rs6, 443, 1)),
	}
}

// BenchmarkXDPNewFlow is the new-flow path (flow-table miss, Maglev
// lookup, flow insert): every round deletes the flow first, so each run
// is one packet (prog.Run repeat 1, timed by the kernel; the delete is
// not timed). The baseline runs the same way.
func BenchmarkXDPNewFlow(b *testing.B) {
	requireBPF(b)
	res := testResolver()
	for a, n := range res {
		res[a] = fakeNeigh{mac: lbMAC, ifindex: n.ifindex}
	}
	d := newTestDataplane(b, DefaultTableSize, res)
	if err := d.Apply(benchServices()); err != nil {
		b.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		b.Fatal(err)
	}
	base := passProgram(b)
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	frame := packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 80), packet.SYN, nil)
	key := xdpvipFlowKey{Src: addr16(client.Addr()), Dst: addr16(svcVIP4), Sport: htons(client.Port()), Dport: htons(80), Proto: 6, Family: 4}
	var prog, baseline time.Duration
	b.ResetTimer()
	for range b.N {
		if err := d.objs.Flows.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			b.Fatal(err)
		}
		ret, per, err := d.objs.XdpVip.Benchmark(frame, 1, nil)
		if err != nil || ret != xdpTX {
			b.Fatalf("verdict %d, %v; want TX", ret, err)
		}
		prog += per
		if _, per, err = base.Benchmark(frame, 1, nil); err != nil {
			b.Fatal(err)
		}
		baseline += per
	}
	var fv xdpvipFlowValue
	if err := d.objs.Flows.Lookup(&key, &fv); err != nil {
		b.Fatalf("the run inserted no flow: %v", err)
	}
	b.ReportMetric(float64(prog.Nanoseconds())/float64(b.N), "ns/pkt")
	if baseline > 0 {
		b.ReportMetric(float64(prog)/float64(baseline), "x-baseline")
	}
}

// BenchmarkXDPTunnel is the TUN flow-hit path (the flow established, the
// frame encapsulated) for each encapsulation, the too-big answer, and DR
// for comparison. An encapsulated frame is no longer addressed to a VIP,
// so prog.Run's repeat cannot feed it back: each run is one packet
// (repeat 1, timed by the kernel), the baseline run the same way.
func BenchmarkXDPTunnel(b *testing.B) {
	requireBPF(b)
	res := tunResolver(1500)
	res[netip.MustParseAddr("203.0.113.30")] = fakeNeigh{mac: routerMAC, ifindex: lbIfindex, src: tunSrc4, mtu: 576}
	d := newTestDataplane(b, DefaultTableSize, res)
	svcs := benchServices()
	for _, c := range tunCases {
		svcs = append(svcs, tcpService(c.vip, c.port, tunDest(c.rs, c.port, c.typ, c.csum)))
	}
	svcs = append(svcs, tcpService(svcVIP4, 99, tunDest(netip.MustParseAddr("203.0.113.30"), 99, lvs.TunnelIPIP, "")))
	if err := d.Apply(svcs); err != nil {
		b.Fatal(err)
	}
	for _, v := range []netip.Addr{svcVIP4, svcVIP6} {
		if err := d.SetVIPActive(v, true); err != nil {
			b.Fatal(err)
		}
	}
	base := passProgram(b)
	frame := func(vip netip.Addr, port uint16, n int) []byte {
		client := tunClient4
		if vip.Is6() {
			client = tunClient6
		}
		return packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(vip, port), packet.ACK, make([]byte, n))
	}
	// DR first, the same frame as the TUN ones, for the comparison.
	type benchCase struct {
		name  string
		frame []byte
	}
	cases := []benchCase{{"dr-tx-flow-hit", frame(svcVIP4, 80, 64)}}
	for _, c := range tunCases {
		cases = append(cases, benchCase{"tun-" + strings.ReplaceAll(strings.ToLower(c.name), " ", "-"), frame(c.vip, c.port, 64)})
	}
	// 1400 bytes to a real server behind a 576-byte path: ICMP back.
	cases = append(cases, benchCase{"tun-too-big-icmp4", frame(svcVIP4, 99, 1400)})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// The first run establishes the flow; then every run hits it.
			if ret, _, err := d.objs.XdpVip.Benchmark(c.frame, 1, nil); err != nil || ret != xdpTX {
				b.Fatalf("verdict %d, %v; want TX", ret, err)
			}
			var prog, baseline time.Duration
			b.ResetTimer()
			for range b.N {
				_, per, err := d.objs.XdpVip.Benchmark(c.frame, 1, nil)
				if err != nil {
					b.Fatal(err)
				}
				prog += per
				if _, per, err = base.Benchmark(c.frame, 1, nil); err != nil {
					b.Fatal(err)
				}
				baseline += per
			}
			b.ReportMetric(float64(prog.Nanoseconds())/float64(b.N), "ns/pkt")
			if baseline > 0 {
				b.ReportMetric(float64(prog)/float64(baseline), "x-baseline")
			}
		})
	}
}
