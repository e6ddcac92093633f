package tests

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestVRRPSplitBrain: lvs2 stops hearing VRRP (an nft drop of protocol
// 112 on its input: multicast lost one way, L2 still working) and becomes
// MASTER beside lvs1; its GARP moves the client to its MAC. lvs1 counts
// the conflict (lvs2's adverts and GARPs). Once VRRP passes again, lvs2
// hears the better MASTER and yields (counting it too), exactly one
// MASTER remains, and lvs1 re-announces after the quiet period: the
// client's neighbour entry comes back to lvs1 by gratuitous ARP alone
// (keepalived issue #166 leaves it on the loser). `xdpvip status` shows
// both nodes' conflicts. The socket receive path (--dataplane none):
// XDP would see the adverts before netfilter drops them.
// garpMasterDelay is keepalived's default garp_master_delay.
const garpMasterDelay = 5 * time.Second

func TestVRRPSplitBrain(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft (nftables) is not installed")
	}
	ln := newLBNet(t)
	// lvs1 hears lvs2's lower priority adverts all through the partition:
	// keepalived's own answer (garp_lower_prio_repeat rounds, 5 by default,
	// for each of them) would move the client back at once. Off, the
	// re-announcement after the heal is what is tested here
	// (vrrp_lowprio_test.go tests those rounds against keepalived).
	n1 := StartXdpvip(t, ln.lvs1, instConf{routerID: "lvs1", priority: 100, lines: []string{"garp_lower_prio_repeat 0"}}.String(), "--dataplane", "none")
	n2 := StartXdpvip(t, ln.lvs2, instConf{routerID: "lvs2", priority: 90}.String(), "--dataplane", "none")
	n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
	n2.WaitState(vrrpInstance, "BACKUP", 3*advertInt)
	ping(t, ln.client, vipAddr)
	waitNeighMAC(t, ln.client, vipAddr, ln.lvs1.MAC(), time.Now(), time.Second)
	for _, n := range []*Node{n1, n2} {
		if in := instanceOf(t, n); in.Conflicts != 0 {
			t.Fatalf("%s: %d conflicts before the partition: %+v", n.Host.Name(), in.Conflicts, in.LastConflict)
		}
	}

	// lvs1's own GARP schedule (a second burst garp_master_delay, 5 s,
	// after it became MASTER) is over before the partition, so what moves
	// the client back after the heal is the re-announcement.
	time.Sleep(time.Until(instanceOf(t, n1).LastTransition.Add(garpMasterDelay + time.Second)))

	// Partition: lvs2 hears no adverts.
	ln.lvs2.MustExec("nft", "add", "table", "inet", "splitbrain")
	ln.lvs2.MustExec("nft", "add", "chain", "inet", "splitbrain", "in", "{ type filter hook input priority 0 ; }")
	ln.lvs2.MustExec("nft", "add", "rule", "inet", "splitbrain", "in", "ip", "protocol", "112", "drop")
	n2.WaitState(vrrpInstance, "MASTER", masterDownInterval(90)+3*time.Second)
	waitNeighMAC(t, ln.client, vipAddr, ln.lvs2.MAC(), time.Now(), 3*time.Second)
	// Both stay MASTER while partitioned; lvs2's own second burst goes out.
	holdState(t, n2, "MASTER", garpMasterDelay+time.Second)
	if in := instanceOf(t, n1); in.State != "MASTER" {
		t.Fatalf("lvs1 is %s during the partition", in.State)
	}
	waitNeighMAC(t, ln.client, vipAddr, ln.lvs2.MAC(), time.Now(), time.Second)
	testnet.Eventually(t, 3*time.Second, func() error {
		in := instanceOf(t, n1)
		if in.State != "MASTER" || in.Conflicts == 0 || !in.ConflictActive {
			return fmt.Errorf("lvs1 during the partition: %s, %+v", in.State, in.ConflictStatus)
		}
		return nil
	})
	t.Logf("lvs1 during the partition: %+v", instanceOf(t, n1).LastConflict)

	// Heal.
	ln.lvs2.MustExec("nft", "delete", "table", "inet", "splitbrain")
	healed := time.Now()
	if m := waitOneMaster(t, n1, n2, 3*advertInt); m != n1 {
		t.Fatalf("after the heal %s is MASTER, want lvs1", m.Host.Name())
	}
	// lvs1 re-announces conflictQuiet (3 adverts) after lvs2's last
	// advert; the client never resolved the VIP again.
	_, after := waitNeighMAC(t, ln.client, vipAddr, ln.lvs1.MAC(), healed, 3*advertInt+3*time.Second)
	t.Logf("client back on lvs1's MAC %v after the heal", after.Round(time.Millisecond))
	// lvs2 stops advertising within an interval of the heal: the quiet
	// period ends 2 intervals after it at the earliest.
	if after < advertInt {
		t.Errorf("client back on lvs1 %v after the heal: before the quiet period could end", after)
	}
	holdState(t, n1, "MASTER", 2*advertInt)
	if in := instanceOf(t, n2); in.State != "BACKUP" {
		t.Fatalf("lvs2 is %s after the heal, want BACKUP", in.State)
	}

	s1, s2 := statusJSON(t, n1), statusJSON(t, n2)
	m, b := s1.Instances[0], s2.Instances[0]
	if m.Conflicts == 0 || m.ConflictActive || m.ConflictReannounced == 0 || m.LastConflict == nil {
		t.Errorf("lvs1's status after the heal: %+v", m.ConflictStatus)
	}
	if b.Conflicts == 0 || b.LastConflict == nil || b.LastConflict.Kind != "advert" || b.LastConflict.Source != lvs1Addr.String() || !b.LastConflict.Yielded {
		t.Errorf("lvs2's status after the heal: %+v %+v", b.ConflictStatus, b.LastConflict)
	}
	if b.ConflictReannounced != 0 {
		t.Errorf("lvs2, the loser, re-announced %d times", b.ConflictReannounced)
	}
	for _, n := range []*Node{n1, n2} {
		out, err := n.CLI("status")
		if err != nil || !strings.Contains(out, "split brain on "+vrrpInstance+":") {
			t.Errorf("%s: xdpvip status has no split brain line (%v):\n%s", n.Host.Name(), err, out)
		}
	}
	log := n1.Proc.Log()
	if !strings.Contains(log, "split brain: another node") || !strings.Contains(log, "split brain over: re-announcing") {
		t.Errorf("lvs1's log lacks the split brain WARN lines:\n%s", log)
	}
}
