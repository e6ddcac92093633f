package tests

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hupMemLimit is the resident size at which a reloading daemon is taken to
// be exhausting memory (include /dev/zero) and killed before it hurts the
// machine.
const hupMemLimit = 512 << 20

// TestFaultSighupBrokenConfig: the MASTER gets a SIGHUP with a config that
// must not load, of each kind issue 10 lists. The VIP stays on the MASTER
// (no gap, no transition), the daemon keeps running and answering, and
// xdpvip reports the reload refused (log line, reload count unchanged).
// An `include` of a device is skipped with a warning, as keepalived 2.2.7
// skips it ("not a regular non-executable file - skipping"): that reload
// applies the rest of the file, which changes nothing here; what must hold
// is that the device is never read (no memory growth) and the warning names
// it. keepalived is run through the same reloads and its outcome noted.
func TestFaultSighupBrokenConfig(t *testing.T) {
	kinds := []struct {
		name, label string
		break_      func(conf string) string
		// skipped: the broken part is skipped with a warning naming it
		// (keepalived's meaning), not a refusal.
		skipped string
	}{
		{"syntax error", "", func(c string) string { return c + "\nvrrp_instance VI_3 {\n    virtual_router_id 52\n" }, ""},
		{"mistyped interface", "", func(c string) string { return strings.Replace(c, "interface eth0", "interface eht0", 1) }, ""},
		{"include /dev/zero", "", func(c string) string { return c + "\ninclude /dev/zero\n" }, "/dev/zero"},
		// No "$" or braces in the name: keepalived globs its -f path,
		// which lies under the test's name.
		{"_RANDOM bounds", "${_RANDOM 0 2^63-1}", func(c string) string {
			return strings.Replace(c, "virtual_router_id 51", "virtual_router_id ${_RANDOM 0 9223372036854775807}", 1)
		}, ""},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			label := k.label
			if label == "" {
				label = k.name
			}
			runFaultScenario(t, faultScenario{
				name: "SIGHUP " + label, runs: 2, keepalived: true,
				inject: func(r *faultRun) { hupBroken(r, k.break_, k.skipped) },
			})
		})
	}
}

// hupBroken writes the broken config, sends SIGHUP to the MASTER, waits for
// its verdict (or its exit, or 5 s) while watching its memory, checks it
// and writes the good config back.
func hupBroken(r *faultRun, breakConf func(string) string, skipped string) {
	m, _ := r.lab.roles()
	good, err := os.ReadFile(m.ConfPath())
	if err != nil {
		r.Fatal(err)
	}
	defer func() {
		if err := os.WriteFile(m.ConfPath(), good, 0o644); err != nil {
			r.Fatal(err)
		}
	}()
	if err := os.WriteFile(m.ConfPath(), []byte(breakConf(string(good))), 0o644); err != nil {
		r.Fatal(err)
	}
	before := m.Transitions()
	reloads := -1
	if x, ok := m.(faultXdpvip); ok {
		reloads = x.Status().Reloads
	}
	tail := tailLog(m.LogPath())
	if err := m.HUP(); err != nil {
		r.Fatal(err)
	}
	verdict := watchReload(r, m, tail)
	r.note("%s", verdict)
	r.expect(!m.Exited(), "run %d: %s %s", r.n+1, m.H().Name(), exitSummary(m))
	r.expect(m.Transitions() == before && m.State() == "MASTER", "run %d: %s left MASTER on a refused reload (state %q, %d transitions)",
		r.n+1, m.H().Name(), m.State(), m.Transitions()-before)
	r.expect(r.lab.vips.holds(m.H().Name(), faultVIP), "run %d: the VIP left %s on a refused reload", r.n+1, m.H().Name())
	if x, ok := m.(faultXdpvip); ok && !m.Exited() {
		st, err := x.StatusErr()
		if skipped != "" {
			r.expect(err == nil, "run %d: status after the reload: %v", r.n+1, err)
			r.expect(strings.Contains(m.Log(), skipped) && strings.Contains(m.Log(), "not a regular file"),
				"run %d: xdpvip did not warn that it skipped %s", r.n+1, skipped)
			return
		}
		r.expect(err == nil && st.Reloads == reloads, "run %d: reload count %d → %d (%v): a refused reload must not count",
			r.n+1, reloads, st.Reloads, err)
		r.expect(reloadRefused.MatchString(m.Log()), "run %d: xdpvip did not log the reload as refused", r.n+1)
	}
}

// watchReload waits up to 5 s for the daemon's verdict on a reload, killing
// it if it grows past hupMemLimit, and says what happened.
func watchReload(r *faultRun, p faultPeer, tail *logTail) string {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return exitSummary(p)
		}
		for _, pid := range daemonPIDs(p) {
			if rss := residentBytes(pid); rss > hupMemLimit {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				r.expect(false, "run %d: %s grew to %d MiB on the reload (killed)", r.n+1, p.H().Name(), rss>>20)
				return fmt.Sprintf("memory exhaustion: killed at %d MiB", rss>>20)
			}
		}
		if p.Name() == "xdpvip" {
			if _, err := tail.wait(reloadRefused, 10*time.Millisecond); err == nil {
				return "reload refused, daemon running"
			}
			if _, err := tail.wait(reloadDone, 0); err == nil {
				return "reload applied"
			}
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if p.Name() == "xdpvip" {
		return "no verdict within 5 s"
	}
	return "still running after 5 s, " + strings.ToLower(p.State())
}

// daemonPIDs are the processes a reload runs in: xdpvip's one, keepalived's
// parent and VRRP child.
func daemonPIDs(p faultPeer) []int {
	pids := []int{}
	if x, ok := p.(faultXdpvip); ok {
		return append(pids, x.Proc.Cmd.Process.Pid)
	}
	if k, ok := p.(faultKA); ok {
		pids = append(pids, k.Proc.Cmd.Process.Pid)
	}
	if pid, err := p.VRRPPID(); err == nil {
		pids = append(pids, pid)
	}
	return pids
}

// residentBytes is a process's VmRSS (0 if it is gone).
func residentBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

// exitSummary says how a daemon that exited on a reload ended: its panic
// line or its exit code.
func exitSummary(p faultPeer) string {
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.HasPrefix(line, "panic: ") {
			return "exited on the reload: " + line
		}
	}
	return fmt.Sprintf("exited on the reload with code %d", p.ExitCode())
}
