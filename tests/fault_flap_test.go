package tests

import (
	"testing"
	"time"
)

const (
	// flapCount link losses of flapHalf each, flapHalf apart: a storm of
	// 20 carrier flaps in one second.
	flapCount = 20
	flapHalf  = 25 * time.Millisecond
)

// TestFaultFlapStorm: the carrier of a node's cable (the switch side of
// its veth) goes down and up flapCount times, flapHalf each way, once on
// the MASTER and once on the BACKUP. A storm on the MASTER may move the VIP
// once (its adverts stop), within the gap bound; it must never be on both
// nodes, and both nodes must end as one MASTER and one BACKUP.
func TestFaultFlapStorm(t *testing.T) {
	runFaultOnRoles(t, "flap storm", 3, func(r *faultRun, victim faultPeer) {
		_, port, _, sw := switchPort(r.T, r.lab.net, victim.H())
		for i := 0; i < flapCount; i++ {
			if err := sw.LinkSetDown(port); err != nil {
				r.Fatalf("flap %d: %v", i, err)
			}
			time.Sleep(flapHalf) // the storm's own rhythm
			if err := sw.LinkSetUp(port); err != nil {
				r.Fatalf("flap %d: %v", i, err)
			}
			time.Sleep(flapHalf)
		}
	})
}
