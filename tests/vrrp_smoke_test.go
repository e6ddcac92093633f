package tests

import (
	"syscall"
	"testing"
	"time"
)

// TestHarnessTwoNodes is the harness's own check: two nodes elect the
// higher priority, and a graceful stop moves the VIP.
func TestHarnessTwoNodes(t *testing.T) {
	auth := "    authentication {\n        auth_type PASS\n        auth_pass 123456\n    }"
	a, b, na, nb := StartPair(t, auth, "--dataplane", "none")
	if !HasAddr(t, a, "192.0.2.100") || HasAddr(t, b, "192.0.2.100") {
		t.Fatal("VIP not on lvs1 only")
	}
	na.Stop(syscall.SIGTERM)
	nb.WaitState("VI_1", "MASTER", 2*time.Second)
	if !HasAddr(t, b, "192.0.2.100") || HasAddr(t, a, "192.0.2.100") {
		t.Fatal("VIP did not move to lvs2 only")
	}
}
