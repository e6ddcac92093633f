package tests

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestVRRPReload: SIGHUP applies the new configuration as a difference.
// An instance whose configuration did not change keeps its state and VIP
// (no transition), a new instance starts, a configuration that does not
// load changes nothing, and a priority change takes effect in place.
func TestVRRPReload(t *testing.T) {
	n := testnet.New(t)
	a := n.AddHost("lvs1", "192.0.2.11/24")
	b := n.AddHost("lvs2", "192.0.2.12/24")
	confA := VRRPConf("lvs1", 51, 100, "1", "192.0.2.100/24", "")
	na := StartXdpvip(t, a, confA)
	na.WaitState("VI_1", "MASTER", 8*time.Second)
	nb := StartXdpvip(t, b, VRRPConf("lvs2", 51, 90, "1", "192.0.2.100/24", ""))
	nb.WaitState("VI_1", "BACKUP", 3*time.Second)

	before, err := na.Instance("VI_1")
	if err != nil {
		t.Fatal(err)
	}
	hup := func(conf string) { t.Helper(); reloadWith(t, na, conf) }

	// 1. A new instance; VI_1 unchanged.
	hup(confA + reloadVI2)
	na.WaitState("VI_2", "MASTER", 8*time.Second)
	after, err := na.Instance("VI_1")
	if err != nil {
		t.Fatal(err)
	}
	if after.State != "MASTER" || after.Transitions != before.Transitions || !after.LastTransition.Equal(before.LastTransition) {
		t.Errorf("VI_1 changed across a reload that did not touch it: before %s/%d transitions, after %s/%d",
			before.State, before.Transitions, after.State, after.Transitions)
	}
	if !HasAddr(t, a, "192.0.2.100") || !HasAddr(t, a, "192.0.2.101") {
		t.Error("VIPs missing after reload")
	}
	if st := na.Status(); st.Reloads != 1 {
		t.Errorf("reloads = %d, want 1", st.Reloads)
	}

	// 2. A configuration that does not load changes nothing.
	hup(confA + reloadVI2 + "\nvrrp_instance VI_3 {\n    virtual_router_id 300\n")
	testnet.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(na.Proc.Log(), "reload failed") {
			return os.ErrNotExist
		}
		return nil
	})
	if st := na.Status(); st.Reloads != 1 || len(st.Instances) != 2 {
		t.Errorf("after a bad reload: reloads %d, %d instances; want 1 and 2", st.Reloads, len(st.Instances))
	}

	// 3. A lower priority takes effect in place: lvs2 (90) preempts
	// lvs1 (now 50), and lvs1 moves to BACKUP without leaving (one
	// transition, no priority-0 advert).
	hup(strings.Replace(confA, "priority 100", "priority 50", 1) + reloadVI2)
	nb.WaitState("VI_1", "MASTER", 6*time.Second)
	na.WaitState("VI_1", "BACKUP", 2*time.Second)
	got, err := na.Instance("VI_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ConfiguredPriority != 50 || got.EffectivePriority != 50 {
		t.Errorf("priority %d/%d after reload, want 50/50", got.ConfiguredPriority, got.EffectivePriority)
	}
	if got.Transitions != before.Transitions+1 {
		t.Errorf("VI_1 made %d transitions on the priority reload, want exactly 1 (MASTER → BACKUP)", got.Transitions-before.Transitions)
	}
	if v2, _ := na.Instance("VI_2"); v2.State != "MASTER" {
		t.Errorf("VI_2 is %s after reloading VI_1's priority, want MASTER", v2.State)
	}
	if HasAddr(t, a, "192.0.2.100") {
		t.Error("lvs1 still holds VI_1's VIP as BACKUP")
	}
}
