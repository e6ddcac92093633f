package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFaultSecondDaemon: a second daemon is started on the MASTER's host
// (a) with exactly the first one's command line (same config, control
// socket, PID file and, for xdpvip, --bpf-dir), as an operator who runs it
// twice would, and (b, xdpvip only: keepalived has no such directory) with
// its own control socket and PID file but the same --bpf-dir. It must
// refuse cleanly within 5 s without touching the running one: the first
// still answers, its PID file still names it, the VIP stays.
func TestFaultSecondDaemon(t *testing.T) {
	cases := []struct {
		sub, name  string
		keepalived bool
		// command is the second daemon's command line and the first's PID
		// file.
		command func(r *faultRun, m faultPeer) (pidFile, bin string, args []string)
	}{
		{"same command line", "second daemon, same cmdline", true, func(_ *faultRun, m faultPeer) (string, string, []string) {
			bin, args, pidFile := secondCommand(m)
			return pidFile, bin, args
		}},
		{"same bpf-dir", "second daemon, same --bpf-dir", false, func(r *faultRun, m faultPeer) (string, string, []string) {
			x, own := m.(faultXdpvip), r.TempDir()
			return filepath.Join(x.Dir, "xdpvip.pid"), xdpvipBin, []string{"run", "-f", x.Conf,
				"--control-socket", filepath.Join(own, "second.sock"), "--pid-file", filepath.Join(own, "second.pid"),
				"--bpf-dir", x.BPFDir, "--log-level", "debug"}
		}},
	}
	for _, c := range cases {
		t.Run(c.sub, func(t *testing.T) {
			runFaultScenario(t, faultScenario{name: c.name, runs: 2, keepalived: c.keepalived, inject: func(r *faultRun) {
				m, _ := r.lab.roles()
				pidFile, bin, args := c.command(r, m)
				startSecond(r, m, pidFile, bin, args...)
			}})
		})
	}
}

// startSecond runs a second daemon beside m and checks it refuses without
// touching m (pidFile is m's).
func startSecond(r *faultRun, m faultPeer, pidFile, bin string, args ...string) {
	second := m.H().Start(bin, args...)
	first := daemonPIDs(m)[0]
	deadline := time.Now().Add(5 * time.Second)
	for !second.Exited() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if second.Exited() {
		// The last line is the refusal (a debug start line may come first).
		lines := strings.Split(strings.TrimSpace(second.Log()), "\n")
		line := lines[len(lines)-1]
		if m.Name() == "keepalived" {
			line = "" // its first line is the start banner
			if strings.Contains(second.Log(), "daemon is already running") {
				line = "daemon is already running"
			}
		}
		line = strings.ReplaceAll(line, filepath.Dir(m.ConfPath()), "$DIR")
		r.note("second daemon exited with code %d: %s", exitCode(second), line)
		r.expect(exitCode(second) != 0, "run %d: the second daemon exited with code 0", r.n+1)
	} else {
		r.note("second daemon still running after 5 s")
		r.expect(false, "run %d: the second daemon kept running beside the first", r.n+1)
		_ = syscall.Kill(-second.Cmd.Process.Pid, syscall.SIGKILL)
		_ = second.Wait()
	}
	b, err := os.ReadFile(pidFile)
	got, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	r.expect(err == nil && got == first, "run %d: PID file %s holds %q (%v), want the running daemon's %d", r.n+1, pidFile, b, err, first)
	r.expect(m.Answers() == nil && m.State() == "MASTER", "run %d: the first daemon is %q after the second's start", r.n+1, m.State())
}

// secondCommand is the command line p was started with and its PID file.
func secondCommand(p faultPeer) (bin string, args []string, pidFile string) {
	if x, ok := p.(faultXdpvip); ok {
		pidFile = filepath.Join(x.Dir, "xdpvip.pid")
		return xdpvipBin, []string{"run", "-f", x.Conf, "--control-socket", x.Sock, "--pid-file", pidFile,
			"--bpf-dir", x.BPFDir, "--log-level", "debug"}, pidFile
	}
	k := p.(faultKA).setup()
	return keepalivedBin, k.Args(true), k.PIDFile("main")
}
