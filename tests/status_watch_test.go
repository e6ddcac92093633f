package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStatusWatch: `xdpvip status --watch` on the BACKUP redraws every
// interval and lists the BACKUP -> MASTER transition it saw when the
// MASTER left.
func TestStatusWatch(t *testing.T) {
	_, _, na, nb := StartPair(t, "", "--dataplane", "none")
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
