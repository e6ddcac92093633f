package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestStatusWatch: `xdpvip status --watch` on the BACKUP redraws every
// interval and lists the BACKUP -> MASTER transition it saw when the
// MASTER left.
func TestStatusWatch(t *testing.T) {
	n := testnet.New(t)
	a := n.AddHost("lvs1", "192.0.2.11/24")
	b := n.AddHost("lvs2", "192.0.2.12/24")
	na := StartXdpvip(t, a, VRRPConf("lvs1", 51, 100, "1", "192.0.2.100/24", ""), "--dataplane", "none")
	nb := StartXdpvip(t, b, VRRPConf("lvs2", 51, 90, "1", "192.0.2.100/24", ""), "--dataplane", "none")
	na.WaitState("VI_1", "MASTER", 6*time.Second)
	nb.WaitState("VI_1", "BACKUP", 2*time.Second)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := nb.CLI("status", "--watch", "--interval", "200ms", "--count", "15")
		done <- result{out, err}
	}()
	time.Sleep(600 * time.Millisecond)
	na.Stop(syscall.SIGTERM)
	r := <-done
	if r.err != nil {
		t.Fatalf("status --watch: %v\n%s", r.err, r.out)
	}
	if got := strings.Count(r.out, "xdpvip status --watch every 200ms"); got != 15 {
		t.Errorf("%d redraws, want 15", got)
	}
	if !strings.Contains(r.out, "VI_1: BACKUP -> MASTER") {
		t.Errorf("the transition is not listed:\n%s", r.out)
	}
	if !strings.Contains(r.out, "\x1b[H\x1b[2J") {
		t.Error("the screen is not cleared between redraws")
	}
}
