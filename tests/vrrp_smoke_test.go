package tests

import (
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestHarnessTwoNodes is the harness's own check: two nodes elect the
// higher priority, and a graceful stop moves the VIP.
func TestHarnessTwoNodes(t *testing.T) {
	n := testnet.New(t)
	a := n.AddHost("lvs1", "192.0.2.11/24")
	b := n.AddHost("lvs2", "192.0.2.12/24")
	auth := "    authentication {\n        auth_type PASS\n        auth_pass 123456\n    }"
	na := StartXdpvip(t, a, VRRPConf("lvs1", 51, 100, "1", "192.0.2.100/24", auth), "--dataplane", "none")
	nb := StartXdpvip(t, b, VRRPConf("lvs2", 51, 90, "1", "192.0.2.100/24", auth), "--dataplane", "none")
	na.WaitState("VI_1", "MASTER", 6*time.Second)
	nb.WaitState("VI_1", "BACKUP", 2*time.Second)
	if !HasAddr(t, a, "192.0.2.100") || HasAddr(t, b, "192.0.2.100") {
		t.Fatal("VIP not on lvs1 only")
	}
	na.Stop(syscall.SIGTERM)
	nb.WaitState("VI_1", "MASTER", 2*time.Second)
	if !HasAddr(t, b, "192.0.2.100") || HasAddr(t, a, "192.0.2.100") {
		t.Fatal("VIP did not move to lvs2 only")
	}
}
