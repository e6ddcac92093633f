package tests

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestSecondDaemonRefused: a second `xdpvip run` on the bpf dir of a
// running one, even with the same control socket and PID file, exits
// non-zero at once with a message naming the first; the first keeps its
// socket, its PID file, its VIP and its state.
func TestSecondDaemonRefused(t *testing.T) {
	h, first := StartMaster(t, "lk1", "192.0.2.31/24", VRRPConf("lk1", 61, 150, "1", "192.0.2.130/24", ""), 6*time.Second, "--dataplane", "xdp")
	pidFile := filepath.Join(first.Dir, "xdpvip.pid")
	testnet.Eventually(t, 5*time.Second, func() error {
		_, err := os.Stat(pidFile)
		return err
	})
	pid := strconv.Itoa(first.Proc.Cmd.Process.Pid)
	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != pid {
		t.Fatalf("pid file %q, want %s", b, pid)
	}

	// Same namespace, same flags (another config with another VRID, so a
	// takeover would show as a second instance).
	conf := filepath.Join(t.TempDir(), "second.conf")
	if err := os.WriteFile(conf, []byte(VRRPConf("lk1b", 62, 200, "1", "192.0.2.131/24", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	var lockFile string
	// With its own control socket (where nothing else would stop it) and
	// with the first one's.
	for _, sock := range []string{filepath.Join(t.TempDir(), "second.sock"), first.Sock} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		out, err := h.Exec(ctx, xdpvipBin, "run", "-f", conf, "--control-socket", sock, "--pid-file", pidFile,
			"--bpf-dir", first.BPFDir, "--dataplane", "xdp")
		took := time.Since(start)
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("second daemon (socket %s) still running after 20 s:\n%s", sock, out)
		}
		var exit *exec.ExitError
		if err == nil {
			t.Fatalf("second daemon (socket %s) exited 0:\n%s", sock, out)
		} else if !errors.As(err, &exit) {
			t.Fatalf("second daemon (socket %s): %v\n%s", sock, err, out)
		}
		want := "another xdpvip (pid " + pid + ") is running with --bpf-dir " + first.BPFDir
		if !strings.Contains(string(out), want) {
			t.Errorf("second daemon's message (socket %s) does not contain %q:\n%s", sock, want, out)
		}
		if m := regexp.MustCompile(`it holds (\S+)\)`).FindStringSubmatch(string(out)); m != nil {
			lockFile = m[1]
		} else {
			t.Errorf("second daemon's message names no lock file:\n%s", out)
		}
		t.Logf("second daemon (socket %s) refused in %s with exit %d: %s", sock, took.Round(time.Millisecond), exit.ExitCode(), strings.TrimSpace(string(out)))
		if sock != first.Sock {
			if _, err := os.Lstat(sock); !os.IsNotExist(err) {
				t.Errorf("refused daemon created its control socket: %v", err)
			}
		}
	}

	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != pid {
		t.Errorf("first daemon's pid file is now %q, want %s", b, pid)
	}
	st := first.Status()
	if st.PID != first.Proc.Cmd.Process.Pid || len(st.Instances) != 1 || st.Instances[0].State != "MASTER" {
		t.Errorf("first daemon's status after the refused start: pid %d, instances %+v", st.PID, st.Instances)
	}
	if !HasAddr(t, h, "192.0.2.130") || HasAddr(t, h, "192.0.2.131") {
		t.Error("VIPs changed by the refused start")
	}
	if first.Proc.Exited() {
		t.Fatalf("first daemon exited:\n%s", first.Proc.Log())
	}

	// Leaving gracefully removes the PID file and the lock file.
	first.Stop(syscall.SIGTERM)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file after SIGTERM: %v", err)
	}
	if _, err := os.Stat(lockFile); !os.IsNotExist(err) {
		t.Errorf("lock file %s after SIGTERM: %v", lockFile, err)
	}
}
