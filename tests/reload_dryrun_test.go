package tests

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestReloadDryRun: `xdpvip reload --dry-run` on a changed configuration
// prints the diff a SIGHUP would apply and changes nothing (status before
// = after); `xdpvip reload` then applies it and says what it did; a
// configuration naming a missing interface is refused by both, and the VIP
// stays.
func TestReloadDryRun(t *testing.T) {
	a, node := StartMaster(t, "lvs1", "192.0.2.11/24", VRRPConf("lvs1", 51, 100, "0.1", "192.0.2.100/24", "    version 3"), 5*time.Second, "--dataplane", "none")
	before := node.Status()

	changed := VRRPConf("lvs1", 51, 100, "0.1", "192.0.2.100/24\n        192.0.2.101/24", "    version 3")
	if err := os.WriteFile(node.Conf, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := node.CLI("reload", "--dry-run")
	if err != nil {
		t.Fatalf("reload --dry-run: %v\n%s", err, out)
	}
	for _, want := range []string{"dry run: nothing applied", "restarted  vrrp_instance VI_1", "192.0.2.101/24"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	time.Sleep(300 * time.Millisecond) // three advert intervals: anything applied would show
	after := node.Status()
	if !sameStatus(before, after) {
		t.Fatalf("a dry run changed the daemon:\nbefore %+v\nafter  %+v", before, after)
	}
	if HasAddr(t, a, "192.0.2.101") {
		t.Fatal("a dry run added the new VIP")
	}

	out, err = node.CLI("reload")
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	if !strings.Contains(out, "applied: ") || !strings.Contains(out, "VI_1") {
		t.Errorf("reload output does not say what it applied:\n%s", out)
	}
	node.WaitState("VI_1", "MASTER", 5*time.Second)
	testnet.Eventually(t, 5*time.Second, func() error {
		if !HasAddr(t, a, "192.0.2.101") {
			return os.ErrNotExist
		}
		return nil
	})
	if st := node.Status(); st.Reloads != before.Reloads+1 {
		t.Errorf("reloads %d after one reload, want %d", st.Reloads, before.Reloads+1)
	}

	broken := strings.Replace(changed, "interface eth0", "interface eth9", 1)
	if err := os.WriteFile(node.Conf, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	mid := node.Status()
	for _, args := range [][]string{{"reload", "--dry-run"}, {"reload"}} {
		out, err := node.CLI(args...)
		if err == nil || !strings.Contains(out, "eth9") {
			t.Errorf("%v on a missing interface: err %v\n%s", args, err, out)
		}
	}
	if st := node.Status(); st.Reloads != mid.Reloads || st.Instances[0].State != "MASTER" || !HasAddr(t, a, "192.0.2.100") {
		t.Errorf("a refused reload changed the daemon: reloads %d -> %d, state %s", mid.Reloads, st.Reloads, st.Instances[0].State)
	}
}

// sameStatus compares what a reload could change: instances (state,
// priorities, VIPs, transitions, source) and the reload count.
func sameStatus(a, b daemon.Status) bool {
	if a.Reloads != b.Reloads || len(a.Instances) != len(b.Instances) {
		return false
	}
	for i := range a.Instances {
		x, y := a.Instances[i], b.Instances[i]
		if x.Name != y.Name || x.State != y.State || x.EffectivePriority != y.EffectivePriority ||
			x.ConfiguredPriority != y.ConfiguredPriority || x.Transitions != y.Transitions || !reflect.DeepEqual(x.VIPs, y.VIPs) {
			return false
		}
	}
	return true
}
