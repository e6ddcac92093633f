package main

import (
	"bytes"
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
	defer count.Close()
	prog, err := macSwapProgram(count)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	c := &ceiling{count: count, prog: prog}
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
