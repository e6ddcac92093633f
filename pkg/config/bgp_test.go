package config

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBGPExample(t *testing.T) {
	cfg, diags, err := Load("../../examples/bgp-ecmp.conf")
	if err != nil {
		t.Fatalf("%v\n%s", err, dumpDiags(diags))
	}
	g := cfg.BGP
	if g == nil {
		t.Fatal("no bgp block")
	}
	if g.RouterID != netip.MustParseAddr("10.78.1.101") || g.Interface != "eth0" || g.LocalAS != 65010 {
		t.Errorf("bgp = %+v", g)
	}
	if len(g.Neighbors) != 1 {
		t.Fatalf("neighbors = %d", len(g.Neighbors))
	}
	nb := g.Neighbors[0]
	want := BGPNeighbor{Pos: Pos{"../../examples/bgp-ecmp.conf", 12}, Addr: netip.MustParseAddr("10.78.1.1"),
		RemoteAS: 65000, HoldTime: 3 * time.Second, BFD: true, Password: "SECRET", GracefulRestart: 30 * time.Second}
	if *nb != want {
		t.Errorf("neighbor = %+v, want %+v", *nb, want)
	}
	if len(cfg.VirtualServers) != 2 {
		t.Fatalf("virtual servers = %d", len(cfg.VirtualServers))
	}
	if len(g.FlowSyncPeers) != 2 || g.FlowSyncPeers[0] != netip.MustParseAddr("10.78.1.102") {
		t.Errorf("flow sync peers %v", g.FlowSyncPeers)
	}
	if a := cfg.VirtualServers[0].Announce; a.Mode != AnnounceECMP || a.Instance != "" || a.Line != 36 {
		t.Errorf("first announce = %+v", a)
	}
	if a := cfg.VirtualServers[1].Announce; a.Mode != AnnounceVRRP || a.Instance != "VI_1" {
		t.Errorf("second announce = %+v", a)
	}
	for _, d := range diags {
		t.Errorf("unexpected diagnostic %v", d)
	}
}

func TestBGPDefaults(t *testing.T) {
	src := "bgp {\n local_as 4200000000\n neighbor 2001:db8::1 {\n  remote_as 65000\n  graceful_restart\n }\n neighbor 10.0.0.9 {\n  remote_as 65000\n  graceful_restart 30\n }\n flow_sync_peer 10.0.0.2\n flow_sync_peer 10.0.0.3\n}\n"
	cfg, diags, err := Parse("d.conf", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, dumpDiags(diags))
	}
	g := cfg.BGP
	if g.RouterID.IsValid() || g.Interface != "" || g.LocalAS != 4200000000 {
		t.Errorf("bgp = %+v", g)
	}
	if len(g.FlowSyncPeers) != 2 || g.FlowSyncPeers[1] != netip.MustParseAddr("10.0.0.3") {
		t.Errorf("flow sync peers %v", g.FlowSyncPeers)
	}
	if g.Neighbors[0].GracefulRestart != DefaultGracefulRestart || g.Neighbors[1].GracefulRestart != 30*time.Second {
		t.Errorf("graceful restart %v %v", g.Neighbors[0].GracefulRestart, g.Neighbors[1].GracefulRestart)
	}
	nb := g.Neighbors[0]
	if nb.HoldTime != DefaultBGPHoldTime || nb.BFD || nb.Password != "" || nb.Addr != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("neighbor = %+v", nb)
	}
}

func TestBGPErrors(t *testing.T) {
	vs := func(body string) string {
		return "virtual_server 10.0.0.1 80 {\n" + body + "\n real_server 10.0.1.1 80 {\n }\n}\n"
	}
	const okBGP = "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 65000\n }\n}\n"
	for _, tc := range []struct {
		name, src string
		want      []string // parts of the error's String()
	}{
		{"no local_as", "bgp {\n neighbor 10.0.0.254 {\n  remote_as 1\n }\n}\n", []string{"x.conf:1: bgp: needs local_as"}},
		{"local_as zero", "bgp {\n local_as 0\n neighbor 10.0.0.254 {\n  remote_as 1\n }\n}\n", []string{"x.conf:2: local_as:", "not a number in 1..4294967295"}},
		{"local_as too big", "bgp {\n local_as 4294967296\n neighbor 10.0.0.254 {\n  remote_as 1\n }\n}\n", []string{"x.conf:2: local_as:"}},
		{"no neighbor", "bgp {\n local_as 65010\n}\n", []string{"x.conf:1: bgp: needs at least one neighbor"}},
		{"neighbor not an address", "bgp {\n local_as 65010\n neighbor router1 {\n  remote_as 1\n }\n}\n", []string{"x.conf:3: neighbor:", "not an IP address"}},
		{"neighbor without block", "bgp {\n local_as 65010\n neighbor 10.0.0.254\n}\n", []string{"x.conf:3: neighbor: needs a { } block"}},
		{"no remote_as", "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  hold_time 3\n }\n}\n", []string{"x.conf:3: neighbor: 10.0.0.254 needs remote_as"}},
		{"hold_time 2", "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 1\n  hold_time 2\n }\n}\n", []string{"x.conf:5: hold_time:", "0 or at least 3"}},
		{"hold_time huge", "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 1\n  hold_time 65536\n }\n}\n", []string{"x.conf:5: hold_time:"}},
		{"bfd value", "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 1\n  bfd maybe\n }\n}\n", []string{"x.conf:5: bfd:"}},
		{"password missing", "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 1\n  password\n }\n}\n", []string{"x.conf:5: password: missing value"}},
		{"password long", "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 1\n  password " + strings.Repeat("x", 81) + "\n }\n}\n", []string{"x.conf:5: password: longer than 80"}},
		{"duplicate neighbor", "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 1\n }\n neighbor 10.0.0.254 {\n  remote_as 1\n }\n}\n", []string{"x.conf:6: neighbor: 10.0.0.254 is already a neighbor at x.conf:3"}},
		{"router_id v6", "bgp {\n router_id 2001:db8::1\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 1\n }\n}\n", []string{"x.conf:2: router_id:", "IPv4"}},
		{"flow_sync_peer bad", "bgp {\n local_as 65010\n flow_sync_peer lb2\n neighbor 10.0.0.254 {\n  remote_as 1\n }\n}\n", []string{"x.conf:3: flow_sync_peer:", "not an IP address"}},
		{"graceful_restart zero", "bgp {\n local_as 65010\n neighbor 10.0.0.254 {\n  remote_as 1\n  graceful_restart 0\n }\n}\n", []string{"x.conf:5: graceful_restart:", "1..4095"}},
		{"second block", okBGP + okBGP, []string{"x.conf:7: bgp: a second bgp block (the first is at x.conf:1)"}},
		{"announce without bgp", vs(" announce ecmp"), []string{"x.conf:2: announce: needs a bgp { } block"}},
		{"announce bad mode", okBGP + vs(" announce anycast"), []string{"x.conf:8: announce:", `"anycast" is not ecmp or vrrp`}},
		{"announce no mode", okBGP + vs(" announce"), []string{"x.conf:8: announce: missing value"}},
		{"announce ecmp extra", okBGP + vs(" announce ecmp VI_1"), []string{"x.conf:8: announce: ecmp takes no instance"}},
		{"announce vrrp no name", okBGP + vs(" announce vrrp"), []string{"x.conf:8: announce: vrrp needs exactly one"}},
		{"announce vrrp unknown", okBGP + vs(" announce vrrp VI_9"), []string{"x.conf:8: announce:", `no vrrp_instance "VI_9"`}},
		{"announce fwmark", okBGP + "virtual_server fwmark 3 {\n announce ecmp\n}\n", []string{"x.conf:8: announce: only a virtual server given by IP and port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags, err := Parse("x.conf", []byte(tc.src))
			if err == nil {
				t.Fatalf("accepted; diagnostics:\n%s", dumpDiags(diags))
			}
			if _, ok := findDiag(diags, Error, tc.want...); !ok {
				t.Errorf("no error with %q in\n%s", tc.want, dumpDiags(diags))
			}
		})
	}
}

func TestBGPUnknownKeywordsWarn(t *testing.T) {
	src := "bgp {\n local_as 65010\n multipath on\n neighbor 10.0.0.254 {\n  remote_as 1\n  ttl 2\n }\n}\n"
	_, diags, err := Parse("w.conf", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, dumpDiags(diags))
	}
	for _, want := range []string{"w.conf:3: multipath: unknown keyword in bgp", "w.conf:6: ttl: unknown keyword in neighbor"} {
		if _, ok := findDiag(diags, Warning, want); !ok {
			t.Errorf("no warning %q in\n%s", want, dumpDiags(diags))
		}
	}
}

// TestBGPKeepalivedSkipsExtension: keepalived 2.2.7 reads a file with the
// extension, warns "Unknown keyword" (or about the braces) on exactly the
// extension's lines, and nothing else changes for it.
func TestBGPKeepalivedSkipsExtension(t *testing.T) {
	kp, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived is not installed (tools/deps.sh installs it)")
	}
	iface := ""
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagMulticast != 0 {
			iface = i.Name
			break
		}
	}
	if iface == "" {
		t.Skip("no multicast interface for the vrrp_instance")
	}
	src, err := os.ReadFile("../../examples/bgp-ecmp.conf")
	if err != nil {
		t.Fatal(err)
	}
	src = bytes.ReplaceAll(src, []byte("interface eth0"), []byte("interface "+iface))
	dir := t.TempDir()
	path := filepath.Join(dir, "bgp.conf")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags, err := Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, dumpDiags(diags))
	}
	// The bgp block's lines: from its keyword to the brace that closes it.
	extLines := map[int]bool{}
	lines := strings.Split(string(src), "\n")
	depth := 0
	for l := cfg.BGP.Line; l <= len(lines); l++ {
		extLines[l] = true
		depth += strings.Count(lines[l-1], "{") - strings.Count(lines[l-1], "}")
		if depth == 0 {
			break
		}
	}
	for _, vs := range cfg.VirtualServers {
		extLines[vs.Announce.Line] = true
	}
	out, _ := exec.Command(kp, "-t", "-f", path).CombinedOutput()
	seen := map[int]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			continue
		}
		var n int
		var rest string
		if i := strings.Index(line, ": Line "); i >= 0 {
			rest = line[i+len(": Line "):]
		} else if strings.HasPrefix(line, "(Line ") {
			rest = line[len("(Line "):]
		} else {
			t.Errorf("keepalived said something about the rest of the file: %q", line)
			continue
		}
		j := strings.IndexByte(rest, ')')
		if j < 0 {
			t.Errorf("unexpected keepalived line %q", line)
			continue
		}
		for _, c := range rest[:j] {
			n = n*10 + int(c-'0')
		}
		if !extLines[n] {
			t.Errorf("keepalived complains about line %d, not part of the extension: %q", n, line)
		}
		if !strings.Contains(line, "Unknown keyword") && !strings.Contains(line, "Unexpected '{'") {
			t.Errorf("keepalived says more than Unknown keyword: %q", line)
		}
		seen[n] = true
	}
	for _, vs := range cfg.VirtualServers {
		if !seen[vs.Announce.Line] {
			t.Errorf("keepalived did not warn about announce at line %d:\n%s", vs.Announce.Line, out)
		}
	}
	if !seen[cfg.BGP.Line] {
		t.Errorf("keepalived did not warn about bgp at line %d:\n%s", cfg.BGP.Line, out)
	}
}

// FuzzBGP: bgp blocks and announce keywords never panic; every error names
// a keyword; an accepted bgp block has local_as and neighbors with remote_as.
func FuzzBGP(f *testing.F) {
	if src, err := os.ReadFile("../../examples/bgp-ecmp.conf"); err == nil {
		f.Add(src)
	}
	f.Add([]byte("bgp {\n local_as 1\n neighbor ::1 {\n  remote_as 2\n  hold_time 0\n  bfd off\n }\n}\nvirtual_server 1.2.3.4 80 {\n announce ecmp\n}\n"))
	f.Add([]byte("bgp { neighbor 1.1.1.1 { } }\nvirtual_server 1.2.3.4 80 { announce vrrp }\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags, err := Parse("fuzz.conf", src)
		for _, d := range diags {
			if d.Keyword == "" && d.Line > 0 {
				t.Fatalf("diagnostic without keyword: %v", d)
			}
		}
		if err != nil || cfg.BGP == nil {
			return
		}
		if cfg.BGP.LocalAS == 0 || len(cfg.BGP.Neighbors) == 0 {
			t.Fatalf("accepted bgp block without local_as or neighbors: %+v", cfg.BGP)
		}
		for _, nb := range cfg.BGP.Neighbors {
			if nb.RemoteAS == 0 || !nb.Addr.IsValid() || (nb.HoldTime > 0 && nb.HoldTime < 3*time.Second) {
				t.Fatalf("accepted neighbor %+v", nb)
			}
		}
	})
}
