package tests

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// The relink and stall scenarios: VRRPv3 with advert_int 0.1 (Master_Down_Interval
// ≈ 0.34 s), lvs1 priority 100, lvs2 priority 90.
const fastAdvert = 100 * time.Millisecond

func fastConf(routerID string, prio int) string {
	return VRRPConf(routerID, vrrpVRID, prio, "0.1", vipAddr.String()+"/24", "    version 3")
}

// relinkRecreate deletes h's interface (both ends of its veth go) and
// runs during while it is absent, then creates it again with the same name,
// MAC and address: a new ifindex, as after a driver reload or a bond
// rebuilt by a network manager.
func relinkRecreate(t *testing.T, ln *lbNet, h *testnet.Host, addr string, during func()) {
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	port := "r" + h.Name()
	run("-n", h.NS(), "link", "del", h.Iface())
	during()
	run("-n", h.NS(), "link", "add", h.Iface(), "address", h.MAC().String(), "type", "veth", "peer", "name", port, "netns", ln.net.SwitchNS())
	run("-n", ln.net.SwitchNS(), "link", "set", port, "master", testnet.BridgeName, "up")
	run("-n", h.NS(), "addr", "add", addr, "dev", h.Iface())
	run("-n", h.NS(), "link", "set", h.Iface(), "up")
}

// watchVIPHolder polls both nodes' interfaces every 10 ms for d and returns
// the longest run of samples with the VIP on both (0 means never seen on
// both) and the node holding it at the end ("" none, "both").
func watchVIPHolder(t *testing.T, ln *lbNet, d time.Duration) (dual time.Duration, holder string) {
	t.Helper()
	var start time.Time
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		a, b := HasAddr(t, ln.lvs1, vipAddr.String()), HasAddr(t, ln.lvs2, vipAddr.String())
		now := time.Now()
		switch {
		case a && b:
			if start.IsZero() {
				start = now
			}
			dual = max(dual, now.Sub(start)+10*time.Millisecond)
			holder = "both"
		default:
			start = time.Time{}
			holder = map[[2]bool]string{{true, false}: "lvs1", {false, true}: "lvs2"}[[2]bool{a, b}]
		}
		time.Sleep(10 * time.Millisecond)
	}
	return dual, holder
}

// fastPair starts lvs1 (MASTER) and lvs2 (BACKUP) with dataplane dp.
func fastPair(t *testing.T, dp string) (*lbNet, *Node, *Node) {
	t.Helper()
	ln := newLBNet(t)
	n1 := StartXdpvip(t, ln.lvs1, fastConf("lvs1", 100), "--dataplane", dp)
	n2 := StartXdpvip(t, ln.lvs2, fastConf("lvs2", 90), "--dataplane", dp)
	n1.WaitState(vrrpInstance, "MASTER", 5*time.Second)
	n2.WaitState(vrrpInstance, "BACKUP", time.Second)
	return ln, n1, n2
}

// TestVRRPRelinkBackup: the BACKUP's interface is deleted and re-created
// while the MASTER is alive. The BACKUP goes FAULT, rebuilds its socket
// (and XDP program) on the new interface and comes back as BACKUP hearing
// the MASTER: it never takes the VIP. Before, its socket stayed on the old
// ifindex, it heard nobody and became a second MASTER.
func TestVRRPRelinkBackup(t *testing.T) {
	for _, dp := range []string{"xdp", "none"} {
		t.Run(dp, func(t *testing.T) {
			ln, _, n2 := fastPair(t, dp)
			for round := 1; round <= 3; round++ {
				relinkRecreate(t, ln, ln.lvs2, "192.0.2.12/24", func() {
					n2.WaitState(vrrpInstance, "FAULT", 2*time.Second)
					holdState(t, n2, "FAULT", 10*fastAdvert)
				})
				dual, holder := watchVIPHolder(t, ln, 30*fastAdvert)
				if dual > 0 || holder != "lvs1" {
					t.Fatalf("round %d: VIP on both nodes for %v, holder at the end %q, want only lvs1\n%s", round, dual, holder, n2.Proc.Log())
				}
				in := instanceOf(t, n2)
				if in.State != "BACKUP" || in.Master != lvs1Addr.String() {
					t.Fatalf("round %d: lvs2 is %s hearing master %q, want BACKUP hearing lvs1\n%s", round, in.State, in.Master, n2.Proc.Log())
				}
				t.Logf("round %d: lvs2 back to BACKUP, hearing lvs1; the VIP never left lvs1", round)
			}
		})
	}
}

// TestVRRPRelinkMaster: the MASTER's interface is deleted (lvs2 takes
// over) and re-created: within a few seconds exactly one node holds the
// VIP again, and it is lvs1 (higher priority, preempting once it has
// rebuilt its socket and heard lvs2).
func TestVRRPRelinkMaster(t *testing.T) {
	for _, dp := range []string{"xdp", "none"} {
		t.Run(dp, func(t *testing.T) {
			ln, n1, n2 := fastPair(t, dp)
			relinkRecreate(t, ln, ln.lvs1, "192.0.2.11/24", func() {
				n2.WaitState(vrrpInstance, "MASTER", 2*time.Second)
				n1.WaitState(vrrpInstance, "FAULT", time.Second)
			})
			t0 := time.Now()
			testnet.Eventually(t, 5*time.Second, func() error {
				a, b := instanceOf(t, n1), instanceOf(t, n2)
				if a.State != "MASTER" || b.State != "BACKUP" || !HasAddr(t, ln.lvs1, vipAddr.String()) || HasAddr(t, ln.lvs2, vipAddr.String()) {
					return fmt.Errorf("lvs1 %s, lvs2 %s", a.State, b.State)
				}
				return nil
			})
			t.Logf("lvs1 sole MASTER with the VIP %v after its interface came back", time.Since(t0).Round(time.Millisecond))
			dual, holder := watchVIPHolder(t, ln, 20*fastAdvert)
			if dual > 0 || holder != "lvs1" {
				t.Fatalf("after the election settled: VIP on both for %v, holder %q", dual, holder)
			}
		})
	}
}

// TestVRRPRelinkVMAC: with use_vmac the VMAC is a macvlan on the
// interface and goes with it; after the interface is re-created the
// instance makes its VMAC again before it leaves FAULT, and takes the VIP
// back on it (it has the higher priority).
func TestVRRPRelinkVMAC(t *testing.T) {
	ln := newLBNet(t)
	conf := func(id string, prio int) string {
		return strings.Replace(fastConf(id, prio), "    version 3", "    version 3\n    use_vmac", 1)
	}
	n1 := StartXdpvip(t, ln.lvs1, conf("lvs1", 100), "--dataplane", "none")
	n1.WaitState(vrrpInstance, "MASTER", 5*time.Second)
	n2 := StartXdpvip(t, ln.lvs2, conf("lvs2", 90), "--dataplane", "none")
	n2.WaitState(vrrpInstance, "BACKUP", time.Second)
	relinkRecreate(t, ln, ln.lvs1, "192.0.2.11/24", func() {
		n2.WaitState(vrrpInstance, "MASTER", 2*time.Second)
	})
	n1.WaitState(vrrpInstance, "MASTER", 5*time.Second)
	n2.WaitState(vrrpInstance, "BACKUP", time.Second)
	if out := ln.lvs1.MustExec("ip", "-o", "addr", "show", "dev", "vrrp.51"); !strings.Contains(string(out), " "+vipAddr.String()+"/24") {
		t.Fatalf("VIP not on the re-made vrrp.51: %s", out)
	}
}
