package tests

import (
	"syscall"
	"testing"
	"time"
)

// TestFaultSigstopBackup: the BACKUP's VRRP process (keepalived's VRRP
// child) is stopped with SIGSTOP for 3 × its Master_Down_Interval while the
// MASTER keeps advertising, then continued. Its down timer is long expired
// when it wakes up, but adverts kept coming the whole time: it must not take
// the VIP nor change state at all (stall immunity, issue 10.2).
func TestFaultSigstopBackup(t *testing.T) {
	stall := 3 * interopMasterDown(3, 90, faultAdvert)
	var (
		stalled faultPeer
		before  int
	)
	runFaultScenario(t, faultScenario{
		name: "SIGSTOP BACKUP 3×down", runs: 5, keepalived: true,
		inject: func(r *faultRun) {
			_, stalled = r.lab.roles()
			before = stalled.Transitions()
			pid, err := stalled.VRRPPID()
			if err != nil {
				r.Fatal(err)
			}
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				r.Fatal(err)
			}
			time.Sleep(stall) // the stall itself
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				r.Fatal(err)
			}
			r.Logf("%s: VRRP process %d stopped for %v", stalled.H().Name(), pid, stall)
		},
		after: func(r *faultRun) {
			n := stalled.Transitions() - before
			if n > 0 {
				r.note("the stalled BACKUP changed state %d times", n)
			}
			r.expect(n == 0, "run %d: the stalled BACKUP %s changed state %d times after SIGCONT", r.n+1, stalled.H().Name(), n)
		},
	})
}
