package tests

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// Health checks and virtual-server policies through the daemon:
// inhibit_on_failure, quorum with a sorry server, MISC_CHECK dynamic
// weights, and checks against servers that misbehave.

// TestLVSInhibitOnFailure: a failed real server with inhibit_on_failure
// stays listed with weight 0 (text and JSON) and gets no new requests;
// back up, it gets its weight back.
func TestLVSInhibitOnFailure(t *testing.T) {
	l := newLVSLab(t)
	ng1 := l.StartNginx(l.RS1)
	l.StartNginx(l.RS2)
	n1, _ := l.StartLBs(labVS(0, "", labTCPReal(labRS1, 1, "        inhibit_on_failure\n"), labTCPReal(labRS2, 1, "")))
	waitCLIDest(t, n1, labRS1, true, 10*time.Second)
	waitCLIDest(t, n1, labRS2, true, 10*time.Second)

	ng1.Stop()
	d := waitCLIDest(t, n1, labRS1, false, drillDetectBound()+drillMargin)
	if d.State != lvs.StateInhibited || d.Weight != 0 || !d.Programmed || d.ConfiguredWeight != 1 {
		t.Errorf("inhibited rs1 in lvs --json: state %q weight %d programmed %v configured %d; want inhibited, weight 0, programmed, configured 1",
			d.State, d.Weight, d.Programmed, d.ConfiguredWeight)
	}
	text, err := n1.CLI("lvs")
	if err != nil {
		t.Fatalf("xdpvip lvs: %v\n%s", err, text)
	}
	rs1 := listedDest(t, text, "192.0.2.21:80")
	if want := []string{"Route", "0", "0", "0", "DOWN", "inhibited"}; !equalFields(rs1, want) {
		t.Errorf("xdpvip lvs lists rs1 as %q, want fields %q\n%s", rs1, want, text)
	}
	got, errs := labSplit(l.Client, l.VIP, 100)
	if len(errs) > 0 || got["rs2"] != 100 {
		t.Errorf("rs1 inhibited: 100 requests answered %v, errors %v; want all by rs2", got, errs)
	}

	ng1.Start()
	d = waitCLIDest(t, n1, labRS1, true, drillDetectBound()+drillMargin)
	if d.State != lvs.StateActive || d.Weight != 1 {
		t.Errorf("rs1 back: state %q weight %d, want active with weight 1", d.State, d.Weight)
	}
	waitServedBy(t, l.Client, l.VIP, []string{"rs1", "rs2"}, 40, 10*time.Second)
}

// TestLVSQuorumSorryServer: quorum 2 with two real servers of weight 1;
// one fails, the live weight drops below the quorum and the sorry server
// answers every request; it comes back and the real servers answer again.
func TestLVSQuorumSorryServer(t *testing.T) {
	l := newLVSLab(t)
	sorry := l.AddRealServer("sorry", labSorry)
	ng1 := l.StartNginx(l.RS1)
	l.StartNginx(l.RS2)
	l.StartNginx(sorry)
	vs := labVS(0, "    quorum 2\n    sorry_server 192.0.2.23 80\n", labTCPReal(labRS1, 1, ""), labTCPReal(labRS2, 1, ""))
	n1, _ := l.StartLBs(vs)
	waitCLIDest(t, n1, labRS1, true, 10*time.Second)
	waitCLIDest(t, n1, labRS2, true, 10*time.Second)
	waitServedBy(t, l.Client, l.VIP, []string{"rs1", "rs2"}, 40, 10*time.Second)

	ng1.Stop()
	waitCLIDest(t, n1, labRS1, false, drillDetectBound()+drillMargin)
	_, svc, err := cliDest(n1, labRS2)
	if err != nil {
		t.Fatal(err)
	}
	if svc.QuorumUp || !svc.SorryInUse || svc.LiveWeight != 1 || svc.Quorum != 2 {
		t.Errorf("quorum lost: lvs --json says quorum_up %v, sorry_server_in_use %v, live_weight %d, quorum %d",
			svc.QuorumUp, svc.SorryInUse, svc.LiveWeight, svc.Quorum)
	}
	text, _ := n1.CLI("lvs")
	if !strings.Contains(text, "[quorum lost: weight 1 < 2, sorry server in use]") {
		t.Errorf("xdpvip lvs does not show the lost quorum:\n%s", text)
	}
	if f := listedDest(t, text, "192.0.2.23:80"); len(f) < 2 || f[0] != "Route" || f[1] != "1" {
		t.Errorf("sorry server listed as %q, want Route with weight 1:\n%s", f, text)
	}
	// The switch to the sorry server is the dataplane's table swap after
	// the listing changed: wait for it, then every request must be its.
	waitServedBy(t, l.Client, l.VIP, []string{"sorry"}, 20, 5*time.Second)
	got, errs := labSplit(l.Client, l.VIP, 100)
	if len(errs) > 0 || got["sorry"] != 100 {
		t.Errorf("quorum lost: 100 requests answered %v, errors %v; want all by the sorry server", got, errs)
	}

	ng1.Start()
	waitCLIDest(t, n1, labRS1, true, drillDetectBound()+drillMargin)
	_, svc, err = cliDest(n1, labRS1)
	if err != nil {
		t.Fatal(err)
	}
	if !svc.QuorumUp || svc.SorryInUse || svc.LiveWeight != 2 {
		t.Errorf("quorum regained: quorum_up %v, sorry_server_in_use %v, live_weight %d", svc.QuorumUp, svc.SorryInUse, svc.LiveWeight)
	}
	waitServedBy(t, l.Client, l.VIP, []string{"rs1", "rs2"}, 40, 5*time.Second)
	got, errs = labSplit(l.Client, l.VIP, 100)
	if len(errs) > 0 || got["sorry"] != 0 || got["rs1"] == 0 || got["rs2"] == 0 {
		t.Errorf("quorum regained: 100 requests answered %v, errors %v; want rs1 and rs2 only", got, errs)
	}
}

// TestLVSMiscDynamicWeight: MISC_CHECK with misc_dynamic sets the real
// servers' weights from the script's exit code (2 + weight) and the split
// of new requests follows: 1:1, then 3:1.
func TestLVSMiscDynamicWeight(t *testing.T) {
	l := newLVSLab(t)
	l.StartNginx(l.RS1)
	l.StartNginx(l.RS2)
	dir := t.TempDir()
	exitFile := func(name string) string { return filepath.Join(dir, name+".exit") }
	setExit := func(name string, code int) {
		t.Helper()
		if err := os.WriteFile(exitFile(name), []byte(strconv.Itoa(code)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := writeScript(t, dir, "weight.sh", `exit "$(cat "$1")"`)
	misc := func(name string) string {
		return fmt.Sprintf(`        MISC_CHECK {
            misc_path "%s %s"
            misc_timeout 2
            misc_dynamic
        }
`, script, exitFile(name))
	}
	setExit("rs1", 3) // weight 1
	setExit("rs2", 3)
	real := func(addr, name string) string {
		return fmt.Sprintf("    real_server %s 80 {\n        weight 1\n%s    }\n", strings.Split(addr, "/")[0], misc(name))
	}
	n1, _ := l.StartLBs(labVS(0, "", real(labRS1, "rs1"), real(labRS2, "rs2")))
	waitCLIWeight(t, n1, labRS1, 1, 10*time.Second)
	waitCLIWeight(t, n1, labRS2, 1, 10*time.Second)
	const n = 400
	share := measureShare(t, l, n, "rs1")
	t.Logf("weights 1:1: rs1 answered %.1f%% of %d requests", 100*share, n)
	// Binomial spread of 400 flows at p = 0.5 is ±2.5 % (1σ); ±8 % is
	// over 3σ, and Maglev's own error is under 1 %.
	if share < 0.42 || share > 0.58 {
		t.Errorf("weights 1:1: rs1 got %.1f%% of requests, want 50%% ± 8", 100*share)
	}

	setExit("rs1", 5) // weight 3
	d := waitCLIWeight(t, n1, labRS1, 3, 3*drillDelayLoop+drillMargin)
	if d.ConfiguredWeight != 1 || d.EffectiveWeight != 3 {
		t.Errorf("rs1: configured weight %d effective %d, want 1 and 3", d.ConfiguredWeight, d.EffectiveWeight)
	}
	text, _ := n1.CLI("lvs")
	if f := listedDest(t, text, "192.0.2.21:80"); len(f) < 2 || f[1] != "3" {
		t.Errorf("xdpvip lvs lists rs1 as %q, want weight 3:\n%s", f, text)
	}
	share = measureShare(t, l, n, "rs1")
	t.Logf("weights 3:1: rs1 answered %.1f%% of %d requests", 100*share, n)
	// p = 0.75: 1σ is ±2.2 %.
	if share < 0.67 || share > 0.83 {
		t.Errorf("weights 3:1: rs1 got %.1f%% of requests, want 75%% ± 8", 100*share)
	}
}

// TestLVSCheckFailuresBounded: a server that accepts and never answers
// (HTTP_GET), an address nobody has and a refusing port (TCP_CHECK), and a
// MISC_CHECK script that hangs are all reported down, each within one
// delay_loop plus its timeout; the hung script is killed at misc_timeout;
// the daemon keeps running.
func TestLVSCheckFailuresBounded(t *testing.T) {
	l := newLVSLab(t)
	silent := l.AddRealServer("silent", "192.0.2.31/24")
	serveSilently(t, silent, 80)
	// rs2 runs nothing: its port 80 refuses. 192.0.2.99 is nobody's.
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "hang.pid")
	hang := writeScript(t, dir, "hang.sh", `echo $$ >> "$1"; exec sleep 300`)
	// A run still in flight when the test ends (the daemon is killed at
	// cleanup) would outlive the test.
	t.Cleanup(func() {
		for _, pid := range readPIDs(pidFile) {
			if pidAlive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	const (
		connectTimeout = 2 * time.Second
		miscTimeout    = 2 * time.Second
	)
	vs := labVS(0, "",
		`    real_server 192.0.2.31 80 {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 2
            retry 0
        }
    }
`, `    real_server 192.0.2.99 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
            retry 0
        }
    }
`, `    real_server 192.0.2.22 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
            retry 0
        }
    }
`, fmt.Sprintf(`    real_server 192.0.2.21 80 {
        weight 1
        MISC_CHECK {
            misc_path "%s %s"
            misc_timeout 2
            retry 0
        }
    }
`, hang, pidFile))
	t0 := time.Now()
	n1 := l.StartNode(l.LVS1, labConf("lvs1", "MASTER", 100, vs), "--dataplane", "xdp")
	cases := []struct {
		name, rs string
		timeout  time.Duration
		// slow: the check can only fail once its timeout has run out.
		slow bool
	}{
		{"accepts and never answers (HTTP_GET)", "192.0.2.31", connectTimeout, true},
		{"unreachable address (TCP_CHECK)", "192.0.2.99", connectTimeout, false},
		{"refusing port (TCP_CHECK)", "192.0.2.22", connectTimeout, false},
		{"hanging script (MISC_CHECK)", "192.0.2.21", miscTimeout, true},
	}
	// Poll all four at once and note when each is first listed down.
	downAt := map[string]time.Duration{}
	deadline := drillDelayLoop + max(connectTimeout, miscTimeout) + drillMargin
	testnet.Eventually(t, max(deadline-time.Since(t0), 100*time.Millisecond), func() error {
		if n1.Proc.Exited() {
			return fmt.Errorf("xdpvip exited:\n%s", n1.Proc.Log())
		}
		l, err := cliLVS(n1)
		if err != nil {
			return err
		}
		now := time.Since(t0)
		for _, s := range l.Services {
			for _, d := range s.Dests {
				if _, seen := downAt[d.Addr.String()]; !seen && !d.Up {
					downAt[d.Addr.String()] = now
				}
			}
		}
		for _, c := range cases {
			if _, ok := downAt[c.rs]; !ok {
				return fmt.Errorf("%s (%s) not listed down yet", c.name, c.rs)
			}
		}
		return nil
	})
	for _, c := range cases {
		// warmup (≤ delay_loop) + one check bounded by its timeout.
		bound := drillDelayLoop + c.timeout
		took := downAt[c.rs]
		reason := downReason(n1, c.rs)
		t.Logf("%s: down %v after start (bound %v): %s", c.name, took, bound, reason)
		if took > bound+drillMargin {
			t.Errorf("%s: down after %v, want within %v (+%v margin)", c.name, took, bound, drillMargin)
		}
		if reason == "" {
			t.Errorf("%s: no \"real server down\" transition logged for %s (was it ever up?)", c.name, c.rs)
		}
		if c.slow && took < c.timeout {
			t.Errorf("%s: down after %v, before its %v timeout could run out", c.name, took, c.timeout)
		}
	}

	// The hung script was killed at misc_timeout: wait for the next run
	// (its pid is appended), then the first one must be gone.
	var pids []int
	testnet.Eventually(t, 2*(drillDelayLoop+miscTimeout)+drillMargin, func() error {
		pids = readPIDs(pidFile)
		if len(pids) < 2 {
			return fmt.Errorf("hang.sh ran %d times, waiting for a second run", len(pids))
		}
		return nil
	})
	if pidAlive(pids[0]) {
		t.Errorf("hung MISC_CHECK script (pid %d) still running after its misc_timeout", pids[0])
	}
	if n1.Proc.Exited() {
		t.Fatalf("xdpvip exited:\n%s", n1.Proc.Log())
	}
	for _, c := range cases {
		d, _, err := cliDest(n1, c.rs)
		if err != nil || d.Up {
			t.Errorf("%s: after further checks: %+v %v, want still down", c.name, d, err)
		}
	}
	if _, err := n1.StatusErr(); err != nil {
		t.Errorf("status after the failing checks: %v", err)
	}

	// A graceful stop ends the checks, the script in flight included:
	// stop while a run is in flight.
	testnet.Eventually(t, 2*(drillDelayLoop+miscTimeout), func() error {
		pids := readPIDs(pidFile)
		if last := pids[len(pids)-1]; !pidAlive(last) {
			return fmt.Errorf("no MISC_CHECK run in flight (last pid %d)", last)
		}
		return nil
	})
	n1.Stop(syscall.SIGTERM)
	testnet.Eventually(t, 5*time.Second, func() error {
		for _, pid := range readPIDs(pidFile) {
			if pidAlive(pid) {
				return fmt.Errorf("MISC_CHECK script pid %d still running after xdpvip stopped", pid)
			}
		}
		return nil
	})
}

// serveSilently listens on port in h's namespace, accepts every
// connection and never writes: a server that hangs.
func serveSilently(t testing.TB, h *testnet.Host, port int) {
	t.Helper()
	serveTCP(t, h, port, func(c net.Conn) {
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	})
}

// readPIDs reads one pid a line.
func readPIDs(path string) []int {
	b, _ := os.ReadFile(path)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// downLine matches the daemon's log line for a real server going down.
var downLine = regexp.MustCompile(`msg="real server down".* real_server=([0-9.]+):\d+ .*reason=("[^"]*"|\S+)`)

// downReason is the reason of the last "real server down" line the
// daemon logged for rs, "" if none.
func downReason(n *Node, rs string) string {
	reason := ""
	for _, m := range downLine.FindAllStringSubmatch(n.Proc.Log(), -1) {
		if m[1] == rs {
			reason = m[2]
		}
	}
	return reason
}

// waitCLIWeight waits until `xdpvip lvs --json` lists rs with the given
// weight in force.
func waitCLIWeight(t testing.TB, node *Node, rs string, weight int, timeout time.Duration) lvs.DestView {
	t.Helper()
	var last lvs.DestView
	testnet.Eventually(t, timeout, func() error {
		d, _, err := cliDest(node, rs)
		if err != nil {
			return err
		}
		last = d
		if !d.Up || d.Weight != weight {
			return fmt.Errorf("%s: real server %s up=%v weight %d, want up with weight %d", node.Host.Name(), rs, d.Up, d.Weight, weight)
		}
		return nil
	})
	return last
}

// measureShare sends n requests and returns the share answered by name;
// every request must be answered.
func measureShare(t testing.TB, l *lvsLab, n int, name string) float64 {
	t.Helper()
	got, errs := labSplit(l.Client, l.VIP, n)
	if len(errs) > 0 {
		t.Fatalf("%d requests: answered %v, errors %v", n, got, errs)
	}
	return float64(got[name]) / float64(n)
}

// listedDest returns the fields after "->" and the address of the real
// server line for addrPort in `xdpvip lvs` text output.
func listedDest(t testing.TB, text, addrPort string) []string {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "->" && f[1] == addrPort {
			return f[2:]
		}
	}
	t.Errorf("xdpvip lvs does not list %s:\n%s", addrPort, text)
	return nil
}

func equalFields(a, b []string) bool {
	return strings.Join(a, " ") == strings.Join(b, " ")
}
