package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestKeepalivedCommandLine starts the daemon the way keepalived is
// started (`xdpvip -f FILE -n -l -D -p P -r R -c C`, no subcommand): it
// runs, becomes MASTER, writes its PID to all three pid files, and removes
// them and its VIP when it leaves; with -V it leaves the VIP in place;
// `xdpvip -t -f FILE` checks the same file.
func TestKeepalivedCommandLine(t *testing.T) {
	n := testnet.New(t)
	a := n.AddHost("lvs1", "192.0.2.11/24")
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(VRRPConf("lvs1", 51, 100, "0.1", "192.0.2.100/24", "    version 3")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := a.Exec(t.Context(), xdpvipBin, "-t", "-f", conf); err != nil {
		t.Fatalf("xdpvip -t -f: %v\n%s", err, out)
	}
	pids := map[string]string{"-p": "keepalived.pid", "-r": "vrrp.pid", "-c": "checkers.pid"}
	args := []string{"-f", conf, "-n", "-l", "-D"}
	for flag, f := range pids {
		args = append(args, flag, filepath.Join(dir, f))
	}
	sock := filepath.Join(dir, "xdpvip.sock")
	bpfDir := filepath.Join("/sys/fs/bpf", "xdpvip-test-"+filepath.Base(a.NS()))
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	args = append(args, "--control-socket", sock, "--bpf-dir", bpfDir, "--dataplane", "none", "--metrics-address", "")
	proc := a.Start(xdpvipBin, args...)
	node := &Node{t: t, Host: a, Proc: proc, Dir: dir, Conf: conf, Sock: sock, BPFDir: bpfDir}
	node.WaitState("VI_1", "MASTER", 5*time.Second)
	want := strconv.Itoa(proc.Cmd.Process.Pid)
	testnet.Eventually(t, 2*time.Second, func() error {
		for _, f := range pids {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || strings.TrimSpace(string(b)) != want {
				return fmt.Errorf("%s: %q %v, want the daemon's PID %s", f, b, err, want)
			}
		}
		return nil
	})
	if !strings.Contains(proc.Log(), `level=DEBUG msg="detailed logging on"`) {
		t.Error("-D did not turn on detailed (debug) logging")
	}
	node.Stop(syscall.SIGTERM)
	for _, f := range pids {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after a graceful stop (%v)", f, err)
		}
	}
	if HasAddr(t, a, "192.0.2.100") {
		t.Fatal("the VIP stayed after a graceful stop without -V")
	}

	// -V (--dont-release-vrrp): the stopping MASTER leaves its VIP in place.
	node.Proc = a.Start(xdpvipBin, append([]string{"-V"}, args...)...)
	node.WaitState("VI_1", "MASTER", 5*time.Second)
	node.Stop(syscall.SIGTERM)
	if !HasAddr(t, a, "192.0.2.100") {
		t.Fatal("-V: the VIP was removed on stop")
	}
	if !strings.Contains(node.Proc.Log(), "--dont-release-vrrp") {
		t.Error("-V: the stop does not say it leaves the VIPs")
	}
	a.MustExec("ip", "addr", "del", "192.0.2.100/24", "dev", a.Iface())
}
