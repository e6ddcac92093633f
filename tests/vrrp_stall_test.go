package tests

import (
	"syscall"
	"testing"
	"time"
)

// TestVRRPStalledBackup: the BACKUP daemon is frozen (SIGSTOP) for 4 × its
// Master_Down_Interval while the MASTER keeps advertising, then thawed
// (SIGCONT), 3 times. Its master-down timer is long overdue when it wakes,
// but the adverts it slept through are heard first (XDP: the program's
// per-VRID last-seen time; socket: the queued datagrams): it never takes
// over and never holds the VIP.
func TestVRRPStalledBackup(t *testing.T) {
	for _, dp := range []string{"xdp", "none"} {
		t.Run(dp, func(t *testing.T) {
			ln, _, n2 := fastPair(t, dp)
			// Master_Down_Interval of lvs2 (priority 90): 3 × 0.1 s + skew.
			mdi := 3*fastAdvert + time.Duration(256-90)*fastAdvert/256
			before := instanceOf(t, n2).Transitions
			for round := 1; round <= 3; round++ {
				if err := n2.Proc.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				dual, holder := watchVIPHolder(t, ln, 4*mdi)
				if err := n2.Proc.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				if dual > 0 || holder != "lvs1" {
					t.Fatalf("round %d, frozen: VIP on both for %v, holder %q", round, dual, holder)
				}
				dual, holder = watchVIPHolder(t, ln, 10*fastAdvert)
				in := instanceOf(t, n2)
				if dual > 0 || holder != "lvs1" || in.State != "BACKUP" || in.Transitions != before {
					t.Fatalf("round %d, thawed: VIP on both for %v, holder %q; lvs2 %s after %d transitions (was %d)\n%s",
						round, dual, holder, in.State, in.Transitions, before, n2.Proc.Log())
				}
				t.Logf("round %d: lvs2 frozen %v (4 × Master_Down_Interval), thawed: still BACKUP, no takeover", round, 4*mdi)
			}
		})
	}
}
