package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVRRPReloadKeepsNoStaleFault: lvs1 is in FAULT because its
// track_script (weight 0, every 5 s) fails; the check is fixed and, before
// the old runner runs again, a SIGHUP with the same configuration keeps the
// instance and restarts the runner, whose first run succeeds. The instance
// must leave FAULT: before, that first success was "no change" to the new
// runner's fresh counter and was never reported, so the instance stayed
// FAULT for good.
func TestVRRPReloadKeepsNoStaleFault(t *testing.T) {
	ln := newLBNet(t)
	flag := filepath.Join(t.TempDir(), "ok")
	top := "vrrp_script chk_flag {\n    script \"/usr/bin/test -e " + flag + "\"\n    interval 5\n    weight 0\n    fall 1\n    rise 1\n}\n"
	conf := instConf{routerID: "lvs1", priority: 100, top: top, lines: []string{"track_script {\n        chk_flag\n    }"}}.String()
	touchFile(t, flag)
	n1 := StartXdpvip(t, ln.lvs1, conf)
	n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
	removeFile(t, flag)
	n1.WaitState(vrrpInstance, "FAULT", 8*time.Second)
	touchFile(t, flag)
	reloadWith(t, n1, conf)
	waitLog(t, n1, `applied="kept: VI_1"`)
	n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+3*time.Second)
}

// waitLog waits until n's log contains s.
func waitLog(t *testing.T, n *Node, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(n.Proc.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in the log:\n%s", n.Host.Name(), s, n.Proc.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
