package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// readLines returns the lines of a file, none if it does not exist yet.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// waitLines waits until the file holds exactly want.
func waitLines(t testing.TB, path string, want []string, timeout time.Duration) {
	t.Helper()
	testnet.Eventually(t, timeout, func() error {
		if got := readLines(t, path); !slices.Equal(got, want) {
			return fmt.Errorf("%s: %q, want %q", filepath.Base(path), got, want)
		}
		return nil
	})
}

// TestVRRPNotifyArguments: notify_master, notify_backup, notify_stop and
// notify run on each transition with the arguments keepalived passes:
// the specific scripts only what the configuration gives them, notify
// four more (INSTANCE VI_1 STATE PRIORITY).
func TestVRRPNotifyArguments(t *testing.T) {
	ln := newLBNet(t)
	dir := t.TempDir()
	// rec appends one line per call to the file named by its first
	// argument: the rest of its argument list.
	rec := writeScript(t, dir, "rec.sh", `f="$1"; shift; echo "args:$*" >> "$f"`)
	logf := func(name string) string { return filepath.Join(dir, name+".log") }
	lines := []string{
		fmt.Sprintf(`notify_master "%s %s"`, rec, logf("master")),
		fmt.Sprintf(`notify_backup "%s %s"`, rec, logf("backup")),
		fmt.Sprintf(`notify_stop "%s %s"`, rec, logf("stop")),
		fmt.Sprintf(`notify "%s %s"`, rec, logf("notify")),
	}
	n1 := StartXdpvip(t, ln.lvs1, instConf{routerID: "lvs1", priority: 100, lines: lines}.String())
	n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
	waitLines(t, logf("backup"), []string{"args:"}, 5*time.Second)
	waitLines(t, logf("master"), []string{"args:"}, 5*time.Second)
	waitLines(t, logf("notify"), []string{"args:INSTANCE VI_1 BACKUP 100", "args:INSTANCE VI_1 MASTER 100"}, 5*time.Second)

	// A higher priority node takes over: notify_backup again.
	n2 := StartXdpvip(t, ln.lvs2, instConf{routerID: "lvs2", priority: 200}.String())
	n2.WaitState(vrrpInstance, "MASTER", masterDownInterval(200)+5*time.Second)
	n1.WaitState(vrrpInstance, "BACKUP", 2*advertInt)
	waitLines(t, logf("backup"), []string{"args:", "args:"}, 5*time.Second)
	waitLines(t, logf("notify"), []string{"args:INSTANCE VI_1 BACKUP 100", "args:INSTANCE VI_1 MASTER 100", "args:INSTANCE VI_1 BACKUP 100"}, 5*time.Second)

	n1.Stop(syscall.SIGTERM)
	waitLines(t, logf("stop"), []string{"args:"}, 5*time.Second)
	waitLines(t, logf("notify"), []string{"args:INSTANCE VI_1 BACKUP 100", "args:INSTANCE VI_1 MASTER 100", "args:INSTANCE VI_1 BACKUP 100", "args:INSTANCE VI_1 STOP 100"}, 5*time.Second)
	if got := readLines(t, logf("master")); len(got) != 1 {
		t.Errorf("notify_master ran %d times, want once: %q", len(got), got)
	}
}

// TestVRRPNotifyNeverBlocks: notify_master and notify scripts that hang
// or fail hold up nothing: the node becomes MASTER when its
// Master_Down_Timer runs out, goes BACKUP as soon as a higher priority
// node advertises, and its status answers all along.
func TestVRRPNotifyNeverBlocks(t *testing.T) {
	cases := []struct {
		name string
		body string // the script; $PIDS is where it records its pid
	}{
		// exec: the pid recorded is sleep's, so cleanup can end it.
		{name: "hangs", body: `echo $$ >> "$PIDS"; exec sleep 1000`},
		{name: "fails", body: `echo $$ >> "$PIDS"; exit 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln := newLBNet(t)
			dir := t.TempDir()
			pids := filepath.Join(dir, "pids")
			bad := writeScript(t, dir, "bad.sh", "PIDS="+pids+"\n"+tc.body)
			t.Cleanup(func() {
				// End the hung scripts (by their recorded pid) that the
				// daemon's own timeout has not ended yet.
				for _, l := range readLines(t, pids) {
					if pid, err := strconv.Atoi(l); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			})
			lines := []string{
				fmt.Sprintf(`notify_master "%s"`, bad),
				fmt.Sprintf(`notify "%s"`, bad),
			}
			n1 := StartXdpvip(t, ln.lvs1, instConf{routerID: "lvs1", priority: 100, lines: lines}.String())

			// status answers while the scripts hang, every 100 ms.
			stop := make(chan struct{})
			statusErr := make(chan error, 1)
			go func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						statusErr <- nil
						return
					case <-tick.C:
					}
					if _, err := n1.StatusErr(); err != nil {
						statusErr <- fmt.Errorf("status did not answer: %w", err)
						return
					}
				}
			}()

			n1.WaitState(vrrpInstance, "BACKUP", 3*time.Second)
			backup := instanceOf(t, n1).LastTransition
			n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
			took := instanceOf(t, n1).LastTransition.Sub(backup)
			t.Logf("%s: MASTER %v after BACKUP", tc.name, took)
			if took > masterDownInterval(100)+specMargin {
				t.Errorf("MASTER %v after BACKUP, want at most %v", took, masterDownInterval(100)+specMargin)
			}
			// The notify scripts did run (and hang or fail) meanwhile.
			testnet.Eventually(t, 5*time.Second, func() error {
				if n := len(readLines(t, pids)); n < 3 {
					return fmt.Errorf("%d notify scripts started, want 3 (notify BACKUP, notify_master, notify MASTER)", n)
				}
				return nil
			})

			n2 := StartXdpvip(t, ln.lvs2, instConf{routerID: "lvs2", priority: 200}.String())
			n2.WaitState(vrrpInstance, "MASTER", masterDownInterval(200)+5*time.Second)
			n1.WaitState(vrrpInstance, "BACKUP", 2*advertInt)
			lag := instanceOf(t, n1).LastTransition.Sub(instanceOf(t, n2).LastTransition)
			t.Logf("%s: BACKUP %v after lvs2 became MASTER", tc.name, lag)
			if lag > advertInt+specMargin {
				t.Errorf("lvs1 went BACKUP %v after lvs2 became MASTER, want at most %v", lag, advertInt+specMargin)
			}
			if HasAddr(t, ln.lvs1, vipAddr.String()) || !HasAddr(t, ln.lvs2, vipAddr.String()) {
				t.Error("VIP not on lvs2 only")
			}
			close(stop)
			if err := <-statusErr; err != nil {
				t.Error(err)
			}
		})
	}
}
