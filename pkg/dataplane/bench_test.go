package dataplane

import (
	"net/netip"
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
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs2, 80, 2), dest(rs3, 80, 3))}); err != nil {
		b.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		b.Fatal(err)
	}
	base := passProgram(b)
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	cases := []struct {
		name    string
		frame   []byte
		verdict uint32
	}{
		{"non-VIP-pass", packet.TCPFrame(lbMAC, clientMAC, client, netip.MustParseAddrPort("192.0.2.1:22"), packet.ACK, nil), xdpPass},
		{"dr-tx-flow-hit", packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 80), packet.ACK, make([]byte, 64)), xdpTX},
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
