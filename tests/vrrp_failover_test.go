package tests

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVRRPElection: two xdpvip nodes (priority 100 and 90, VRID 51,
// advert_int 1, PASS auth) elect the 100; the VIP is on its interface
// only and a client resolves the VIP to its MAC. Once with the default
// dataplane (auto: XDP on the veth, adverts from the ring buffer) and
// once with --dataplane none (adverts on the raw socket).
func TestVRRPElection(t *testing.T) {
	cases := []struct {
		name      string
		flags     []string
		dataplane string // Status.Dataplane
		receive   string // InstanceStatus.Receive
	}{
		{name: "auto", dataplane: "xdp", receive: "xdp"},
		{name: "none", flags: []string{"--dataplane", "none"}, dataplane: "none", receive: "socket"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln := newLBNet(t)
			n1 := StartXdpvip(t, ln.lvs1, instConf{routerID: "lvs1", priority: 100}.String(), tc.flags...)
			n2 := StartXdpvip(t, ln.lvs2, instConf{routerID: "lvs2", priority: 90}.String(), tc.flags...)
			n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
			n2.WaitState(vrrpInstance, "BACKUP", 3*advertInt)

			for _, n := range []*Node{n1, n2} {
				st := n.Status()
				if st.Dataplane != tc.dataplane {
					t.Errorf("%s: dataplane %q, want %q", n.Host.Name(), st.Dataplane, tc.dataplane)
				}
				in := instanceOf(t, n)
				if in.Receive != tc.receive {
					t.Errorf("%s: adverts received from %q, want %q", n.Host.Name(), in.Receive, tc.receive)
				}
				if in.VRID != vrrpVRID || in.Version != 2 {
					t.Errorf("%s: VRID %d version %d, want %d and 2", n.Host.Name(), in.VRID, in.Version, vrrpVRID)
				}
			}
			m, b := instanceOf(t, n1), instanceOf(t, n2)
			if m.EffectivePriority != 100 || b.EffectivePriority != 90 {
				t.Errorf("effective priorities %d/%d, want 100/90", m.EffectivePriority, b.EffectivePriority)
			}
			if m.Master != lvs1Addr.String() || !m.MasterIsSelf {
				t.Errorf("lvs1 reports master %q, want itself (%s)", m.Master, lvs1Addr)
			}
			if b.Master != lvs1Addr.String() || b.MasterPriority != 100 {
				t.Errorf("lvs2 reports master %q priority %d, want %s priority 100", b.Master, b.MasterPriority, lvs1Addr)
			}
			if m.AdvertsOut == 0 || b.AdvertsIn == 0 {
				t.Errorf("adverts: lvs1 sent %d, lvs2 received %d; want both > 0", m.AdvertsOut, b.AdvertsIn)
			}
			if len(b.Drops) != 0 {
				t.Errorf("lvs2 dropped good adverts: %v", b.Drops)
			}
			if !HasAddr(t, ln.lvs1, vipAddr.String()) || HasAddr(t, ln.lvs2, vipAddr.String()) {
				t.Fatalf("VIP %s is not on lvs1 only", vipAddr)
			}

			ping(t, ln.client, vipAddr)
			nb, err := ln.client.Neigh(vipAddr)
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			if !bytes.Equal(nb.MAC, ln.lvs1.MAC()) {
				t.Fatalf("client resolves the VIP to %s, want lvs1's %s", nb, ln.lvs1.MAC())
			}
		})
	}
}

// failoverSetup starts both nodes with the default dataplane, a TCP
// listener in each LB namespace, and waits until the client reaches lvs1
// through the VIP with lvs1's MAC in its neighbour table.
func failoverSetup(t *testing.T) (*lbNet, *Node, *Node) {
	t.Helper()
	ln := newLBNet(t)
	serveName(t, ln.lvs1)
	serveName(t, ln.lvs2)
	n1 := StartXdpvip(t, ln.lvs1, instConf{routerID: "lvs1", priority: 100}.String())
	n2 := StartXdpvip(t, ln.lvs2, instConf{routerID: "lvs2", priority: 90}.String())
	n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
	n2.WaitState(vrrpInstance, "BACKUP", 3*advertInt)
	waitTCPFrom(t, ln.client, vipAddr, "lvs1", time.Now(), 5*time.Second)
	waitNeighMAC(t, ln.client, vipAddr, ln.lvs1.MAC(), time.Now(), time.Second)
	return ln, n1, n2
}

// checkTakeover checks what the client sees after lvs2 took over at t0:
// its neighbour entry for the VIP moves to lvs2's MAC by gratuitous ARP
// (never flushed, never re-resolved), then a TCP connect to the VIP is
// answered by lvs2. It returns both delays from t0.
func checkTakeover(t *testing.T, ln *lbNet, t0 time.Time) (neigh, tcp time.Duration) {
	t.Helper()
	nb, neigh := waitNeighMAC(t, ln.client, vipAddr, ln.lvs2.MAC(), t0, 10*time.Second)
	t.Logf("client neighbour entry after the takeover: %s", nb)
	tcp = waitTCPFrom(t, ln.client, vipAddr, "lvs2", t0, 10*time.Second)
	return neigh, tcp
}

// TestVRRPFailoverCrash: the MASTER is killed (SIGKILL: no priority-0
// advert, its VIP left on its interface) and its cable cut. The BACKUP
// takes over within Master_Down_Interval (3 × advert_int + skew) + 100 ms
// of the kill, and no sooner than one advert interval before it; its GARP
// moves the client's neighbour entry and the client's TCP reaches it.
func TestVRRPFailoverCrash(t *testing.T) {
	ln, n1, n2 := failoverSetup(t)

	t0 := time.Now()
	crash(t, n1)
	ln.net.SetLink(ln.lvs1, false)

	n2.WaitState(vrrpInstance, "MASTER", masterDownInterval(90)+5*time.Second)
	took := instanceOf(t, n2).LastTransition.Sub(t0)
	hi := masterDownInterval(90) + specMargin
	lo := masterDownInterval(90) - advertInt // the last advert came at most one interval before the kill
	t.Logf("crash: lvs2 MASTER %v after the kill (bound %v, earliest %v)", took, hi, lo)
	if took > hi || took < lo {
		t.Errorf("crash: lvs2 took over %v after the kill, want within [%v, %v]", took, lo, hi)
	}
	if !HasAddr(t, ln.lvs2, vipAddr.String()) {
		t.Fatal("lvs2 is MASTER without the VIP")
	}
	neigh, tcp := checkTakeover(t, ln, t0)
	t.Logf("crash: client neighbour entry on lvs2's MAC after %v, first TCP answer from lvs2 after %v", neigh, tcp)
	if neigh < took {
		t.Errorf("client's neighbour entry moved %v after the kill, before lvs2 took over (%v)", neigh, took)
	}
}

// TestVRRPFailoverGraceful: the MASTER stops on SIGTERM (priority-0
// advert, VIP removed); the BACKUP takes over within Skew_Time + 100 ms.
func TestVRRPFailoverGraceful(t *testing.T) {
	ln, n1, n2 := failoverSetup(t)

	t0 := time.Now()
	n1.Stop(syscall.SIGTERM)

	n2.WaitState(vrrpInstance, "MASTER", 5*time.Second)
	took := instanceOf(t, n2).LastTransition.Sub(t0)
	hi := skewTime(90) + specMargin
	t.Logf("graceful: lvs2 MASTER %v after SIGTERM (bound %v)", took, hi)
	if took > hi {
		t.Errorf("graceful: lvs2 took over %v after SIGTERM, want at most %v", took, hi)
	}
	if HasAddr(t, ln.lvs1, vipAddr.String()) {
		t.Error("lvs1 left its VIP behind after a graceful stop")
	}
	if !HasAddr(t, ln.lvs2, vipAddr.String()) {
		t.Fatal("lvs2 is MASTER without the VIP")
	}
	neigh, tcp := checkTakeover(t, ln, t0)
	t.Logf("graceful: client neighbour entry on lvs2's MAC after %v, first TCP answer from lvs2 after %v", neigh, tcp)
}

// TestVRRPPreemption: lvs1 (100) stops gracefully, lvs2 (90) takes over,
// lvs1 comes back. By default it preempts once its Master_Down_Timer runs
// out; with nopreempt (state BACKUP on both, as keepalived requires) it
// stays BACKUP; with preempt_delay 3 it stays BACKUP for the delay, then
// preempts.
func TestVRRPPreemption(t *testing.T) {
	const delay = 3 * time.Second
	cases := []struct {
		name     string
		lines    []string // both nodes' extra instance lines
		preempts bool
		minDelay time.Duration // lvs1 stays BACKUP at least this long after its return
	}{
		{name: "default", preempts: true},
		{name: "nopreempt", lines: []string{"nopreempt"}},
		{name: "preempt_delay", lines: []string{"preempt_delay 3"}, preempts: true, minDelay: delay},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.minDelay > 0 || !tc.preempts {
				// Coarse bounds: these two run side by side after the
				// default case, whose bound is tight.
				t.Parallel()
			}
			ln := newLBNet(t)
			n1 := StartXdpvip(t, ln.lvs1, instConf{routerID: "lvs1", priority: 100, lines: tc.lines}.String())
			n2 := StartXdpvip(t, ln.lvs2, instConf{routerID: "lvs2", priority: 90, lines: tc.lines}.String())
			// lvs1 usually wins (its timer starts first); with nopreempt
			// lvs2 may win and keep it. Either way lvs2 ends up MASTER.
			waitOneMaster(t, n1, n2, masterDownInterval(100)+5*time.Second)
			n1.Stop(syscall.SIGTERM)
			n2.WaitState(vrrpInstance, "MASTER", 5*time.Second)

			n1.Restart()
			n1.WaitState(vrrpInstance, "BACKUP", 3*time.Second)
			back := instanceOf(t, n1).LastTransition
			if tc.minDelay > 0 {
				holdStateUntil(t, n1, "BACKUP", back.Add(tc.minDelay))
			}
			if !tc.preempts {
				holdState(t, n1, "BACKUP", masterDownInterval(100)+2*advertInt)
				if in := instanceOf(t, n1); in.Master != lvs2Addr.String() {
					t.Errorf("lvs1 (nopreempt) reports master %q, want %s", in.Master, lvs2Addr)
				}
				if st := instanceOf(t, n2).State; st != "MASTER" {
					t.Errorf("lvs2 is %s, want MASTER (lvs1 has nopreempt)", st)
				}
				if !HasAddr(t, ln.lvs2, vipAddr.String()) || HasAddr(t, ln.lvs1, vipAddr.String()) {
					t.Error("VIP not on lvs2 only")
				}
				t.Logf("nopreempt: lvs1 stayed BACKUP for %v after its return", time.Since(back))
				return
			}
			n1.WaitState(vrrpInstance, "MASTER", tc.minDelay+masterDownInterval(100)+5*time.Second)
			took := instanceOf(t, n1).LastTransition.Sub(back)
			hi := tc.minDelay + masterDownInterval(100) + specMargin
			if tc.minDelay > 0 {
				// The delay starts at the first advert heard (up to one
				// interval after the return); the adverts accepted during
				// it restart the down timer.
				hi += 2 * advertInt
			}
			// It preempts when its Master_Down_Timer runs out after the
			// last advert it accepted: at the earliest one interval
			// before the delay's end.
			lo := tc.minDelay + masterDownInterval(100) - advertInt
			t.Logf("%s: lvs1 preempted %v after its return as BACKUP (bounds [%v, %v])", tc.name, took, lo, hi)
			if took < lo || took > hi {
				t.Errorf("%s: lvs1 preempted %v after its return, want within [%v, %v]", tc.name, took, lo, hi)
			}
			n2.WaitState(vrrpInstance, "BACKUP", 3*advertInt)
			if !HasAddr(t, ln.lvs1, vipAddr.String()) || HasAddr(t, ln.lvs2, vipAddr.String()) {
				t.Error("VIP not back on lvs1 only")
			}
		})
	}
}

// TestVRRPTracking: what lvs1 (100) tracks going bad moves the VIP to
// lvs2 (90, preempt on), and coming back moves it home. A vrrp_script
// with weight -20 lowers lvs1's effective priority to 80, below lvs2's;
// weight 0 puts lvs1 in FAULT and releases the VIP; so does a tracked
// interface going down (one in track_interface set down, or the cable of
// the instance's own interface, tracked by default, cut).
func TestVRRPTracking(t *testing.T) {
	type env struct {
		ln   *lbNet
		flag string // the file the check script tests for
	}
	// A vrrp_script that tests for the flag file, tracked with weight.
	flagScript := func(weight int) string {
		return fmt.Sprintf("vrrp_script chk_flag {\n    script \"/usr/bin/test -e FLAG\"\n    interval 1\n    weight %d\n    fall 1\n    rise 1\n}\n", weight)
	}
	trackFlag := []string{"track_script {\n        chk_flag\n    }"}
	removeFlag := func(t *testing.T, e env) { removeFile(t, e.flag) }
	touchFlag := func(t *testing.T, e env) { touchFile(t, e.flag) }
	cases := []struct {
		name  string
		lines []string
		top   string
		prep  func(t *testing.T, e env)
		fail  func(t *testing.T, e env)
		heal  func(t *testing.T, e env)
		// state and effective priority of lvs1 while the object is bad
		badState string
		badPrio  int
	}{
		{name: "script weight -20", lines: trackFlag, top: flagScript(-20), fail: removeFlag, heal: touchFlag, badState: "BACKUP", badPrio: 80},
		{name: "script weight 0", lines: trackFlag, top: flagScript(0), fail: removeFlag, heal: touchFlag, badState: "FAULT", badPrio: 100},
		{
			// A veth pair inside lvs1's namespace (this kernel has no
			// dummy driver); trk0 is tracked, trk1 only gives it carrier.
			name:  "track_interface",
			lines: []string{"track_interface {\n        trk0\n    }"},
			prep: func(t *testing.T, e env) {
				e.ln.lvs1.MustExec("ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1")
				e.ln.lvs1.MustExec("ip", "link", "set", "trk1", "up")
				e.ln.lvs1.MustExec("ip", "link", "set", "trk0", "up")
			},
			fail:     func(t *testing.T, e env) { e.ln.lvs1.MustExec("ip", "link", "set", "trk0", "down") },
			heal:     func(t *testing.T, e env) { e.ln.lvs1.MustExec("ip", "link", "set", "trk0", "up") },
			badState: "FAULT", badPrio: 100,
		},
		{
			name:     "own interface carrier",
			fail:     func(t *testing.T, e env) { e.ln.net.SetLink(e.ln.lvs1, false) },
			heal:     func(t *testing.T, e env) { e.ln.net.SetLink(e.ln.lvs1, true) },
			badState: "FAULT", badPrio: 100,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // coarse bounds only: CPU contention does not matter here
			e := env{ln: newLBNet(t), flag: filepath.Join(t.TempDir(), "healthy")}
			touchFile(t, e.flag)
			if tc.prep != nil {
				tc.prep(t, e)
			}
			top := strings.ReplaceAll(tc.top, "FLAG", e.flag)
			n1 := StartXdpvip(t, e.ln.lvs1, instConf{routerID: "lvs1", priority: 100, lines: tc.lines, top: top}.String())
			n2 := StartXdpvip(t, e.ln.lvs2, instConf{routerID: "lvs2", priority: 90}.String())
			n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
			n2.WaitState(vrrpInstance, "BACKUP", 3*advertInt)
			if p := instanceOf(t, n1).EffectivePriority; p != 100 {
				t.Fatalf("lvs1 effective priority %d with everything healthy, want 100", p)
			}

			tc.fail(t, e)
			// Detection (script interval or link event) + lvs2's
			// Master_Down_Interval when lvs1 only lowers its priority.
			n1.WaitState(vrrpInstance, tc.badState, masterDownInterval(90)+5*time.Second)
			n2.WaitState(vrrpInstance, "MASTER", masterDownInterval(90)+5*time.Second)
			in := instanceOf(t, n1)
			if in.EffectivePriority != tc.badPrio || in.ConfiguredPriority != 100 {
				t.Errorf("lvs1 priority effective %d configured %d while unhealthy, want %d and 100", in.EffectivePriority, in.ConfiguredPriority, tc.badPrio)
			}
			if HasAddr(t, e.ln.lvs1, vipAddr.String()) || !HasAddr(t, e.ln.lvs2, vipAddr.String()) {
				t.Error("VIP not on lvs2 only while lvs1 is unhealthy")
			}

			tc.heal(t, e)
			n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
			n2.WaitState(vrrpInstance, "BACKUP", 3*advertInt)
			if p := instanceOf(t, n1).EffectivePriority; p != 100 {
				t.Errorf("lvs1 effective priority %d after healing, want 100", p)
			}
			if !HasAddr(t, e.ln.lvs1, vipAddr.String()) || HasAddr(t, e.ln.lvs2, vipAddr.String()) {
				t.Error("VIP not back on lvs1 only")
			}
		})
	}
}
