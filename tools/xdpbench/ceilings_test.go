package main

import (
	"bytes"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

func TestParseNftCounter(t *testing.T) {
	listing := "table netdev xdpbench {\n\tchain ingress {\n\t\ttype filter hook ingress device \"lb0\" priority filter; policy accept;\n" +
		"\t\tip daddr 198.18.0.100 counter packets 123456 bytes 7407360 fwd ip to 198.18.0.3 device \"lb0\"\n\t}\n}\n"
	n, err := parseNftCounter(listing)
	if err != nil || n != 123456 {
		t.Errorf("parseNftCounter = %d, %v; want 123456", n, err)
	}
	for _, bad := range []string{"", "table netdev xdpbench {\n}\n", "counter packets 1 bytes 2\ncounter packets 3 bytes 4\n"} {
		if n, err := parseNftCounter(bad); err == nil {
			t.Errorf("parseNftCounter(%q) = %d, want an error", bad, n)
		}
	}
}

func FuzzParseNftCounter(f *testing.F) {
	f.Add("counter packets 1 bytes 2")
	f.Add("counter packets 99999999999999999999999 bytes 2")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := parseNftCounter(s); err == nil && !strings.Contains(s, "counter packets") {
			t.Errorf("a count from text without a counter: %q", s)
		}
	})
}

func TestNftFwdRuleset(t *testing.T) {
	r := nftFwdRuleset("lb0", net.ParseIP("198.18.0.100"), net.ParseIP("198.18.0.3"))
	for _, want := range []string{"table netdev " + nftTable, "hook ingress device lb0", "ip daddr 198.18.0.100 counter fwd ip to 198.18.0.3 device lb0"} {
		if !strings.Contains(r, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, r)
		}
	}
}

// TestMacSwapProgram runs the ceiling with prog.Run: MACs swapped, XDP_TX,
// counted once (test_run refuses frames shorter than an Ethernet header,
// so the program's runt check is not reachable from here).
func TestMacSwapProgram(t *testing.T) {
	prog, c := loadCounting(t, macSwapProgram)
	in := udpFrames(1, lbMAC, genMAC, genAddr.Addr(), firstSrcPort, netip.AddrPortFrom(vipAddr, vipPort))[0]
	out := make([]byte, len(in))
	ret, err := prog.Run(&ebpf.RunOptions{Data: in, DataOut: out})
	if err != nil {
		t.Fatal(err)
	}
	const xdpTX = 3
	if ret != xdpTX {
		t.Errorf("verdict %d, want XDP_TX", ret)
	}
	if !bytes.Equal(out[0:6], genMAC) || !bytes.Equal(out[6:12], lbMAC) || !bytes.Equal(out[12:], in[12:]) {
		t.Errorf("frame after the program:\n% x\nwant the MACs of\n% x swapped, the rest unchanged", out, in)
	}
	if n, err := c.handled(); err != nil || n != 1 {
		t.Errorf("counted %d, %v; want 1", n, err)
	}
}

// loadCounting loads a counting program (macSwapProgram, sinkProgram)
// for prog.Run, freed at cleanup.
func loadCounting(t *testing.T, load func(*ebpf.Map) (*ebpf.Program, error)) (*ebpf.Program, *ceiling) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading a BPF program needs root")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	count, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { count.Close() })
	prog, err := load(count)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog, &ceiling{count: count, prog: prog}
}

// TestSinkProgram: the generator-only baseline drops every frame
// untouched and counts it once.
func TestSinkProgram(t *testing.T) {
	prog, c := loadCounting(t, sinkProgram)
	in := udpFrames(1, lbMAC, genMAC, genAddr.Addr(), firstSrcPort, netip.AddrPortFrom(vipAddr, vipPort))[0]
	out := make([]byte, len(in))
	for i := 0; i < 2; i++ {
		ret, err := prog.Run(&ebpf.RunOptions{Data: in, DataOut: out})
		if err != nil {
			t.Fatal(err)
		}
		const xdpDrop = 1
		if ret != xdpDrop {
			t.Errorf("verdict %d, want XDP_DROP", ret)
		}
		if !bytes.Equal(out, in) {
			t.Errorf("frame after the program:\n% x\nwant it unchanged:\n% x", out, in)
		}
	}
	if n, err := c.handled(); err != nil || n != 2 {
		t.Errorf("counted %d, %v; want 2", n, err)
	}
}

func TestGeneratorBound(t *testing.T) {
	for _, tc := range []struct {
		offered, handled float64
		want             bool
	}{{2.2e6, 2.2e6, true}, {2.2e6, 2.19e6, true}, {2.2e6, 1.5e6, false}, {0, 0, false}} {
		if got := generatorBound(result{OfferedPPS: tc.offered, HandledPPS: tc.handled}); got != tc.want {
			t.Errorf("generatorBound(offered %v, handled %v) = %v", tc.offered, tc.handled, got)
		}
	}
}

func TestNetCost(t *testing.T) {
	sink := result{OfferedPPS: 2.5e6, HandledPPS: 2.5e6} // 400 ns per generated frame
	for _, tc := range []struct {
		name string
		r    result
		want float64
	}{
		// Everything offered handled: 1/handled − 1/sink.
		{"generator-bound", result{OfferedPPS: 2e6, HandledPPS: 2e6}, 100},
		{"kernel-bound", result{OfferedPPS: 1e6, HandledPPS: 1e6}, 600},
		// Half the offered frames dropped at the ring: the core spent
		// 2e6·400 ns generating and the rest (0.2 s) on 1e6 frames.
		{"ring drops", result{OfferedPPS: 2e6, HandledPPS: 1e6}, 200},
		{"nothing handled", result{OfferedPPS: 2e6}, 0},
		{"faster than the sink (noise)", result{OfferedPPS: 2.6e6, HandledPPS: 2.6e6}, 0},
	} {
		if got := netCost(tc.r, sink); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("%s: netCost = %v ns; want %v", tc.name, got, tc.want)
		}
	}
	if got := netCost(result{OfferedPPS: 1e6, HandledPPS: 1e6}, result{}); got != 0 {
		t.Errorf("netCost without a sink rate = %v; want 0", got)
	}
	fwd, tx := result{OfferedPPS: 1e6, HandledPPS: 1e6}, result{OfferedPPS: 2e6, HandledPPS: 2e6}
	if got := costRatio(tx, fwd, sink); math.Abs(got-6) > 1e-9 {
		t.Errorf("costRatio(tx, fwd) = %v; want 6 (600 ns / 100 ns)", got)
	}
	if got := costRatio(tx, result{}, sink); got != 0 {
		t.Errorf("costRatio with an unmeasured path = %v; want 0", got)
	}
}
