package tests

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// Flood resilience (issue 4, "Must show" item 4), side by side in one run:
// two load balancers (VRRPv3, advert_int 0.1, lvs1 MASTER and alive) and a
// flood host that sends foreign-VRID adverts and malformed adverts (bad
// checksum, truncated) to the VRRP group as fast as trafgen can. First
// xdpvip with the XDP dataplane on both nodes, then keepalived on both in
// an identical fresh network.
//
// xdpvip must hold: the BACKUP makes no transition, sees every advert the
// MASTER sent, and the XDP programs count the flood under its reasons.
// keepalived's figures are measured and logged as the baseline (issue 4
// reports 5 to 8 spurious takeovers in 20 s on this kind of machine).

const (
	floodVRID     = 51
	floodInterval = 100 * time.Millisecond
	floodVIP      = "192.0.2.100"
	// floodFor is how long each daemon is flooded.
	floodFor = 12 * time.Second
)

// floodResult is what one daemon pair did under the flood.
type floodResult struct {
	daemon   string
	sent     uint64        // frames trafgen sent
	duration time.Duration // between the two counter snapshots
	// masterOut and backupIn are the adverts the MASTER sent and the
	// BACKUP accepted between the snapshots.
	masterOut, backupIn uint64
	// transitions are the BACKUP's state changes during the flood;
	// masterTransitions the MASTER's.
	transitions, masterTransitions uint64
	// takeovers are the times the BACKUP became MASTER.
	takeovers uint64
	// states are lvs1's and lvs2's states after the flood.
	states [2]string
	// drops are what the BACKUP's XDP program counted by reason
	// (xdpvip) or the frames the BACKUP's raw VRRP socket lost
	// (keepalived, under "socket").
	drops map[string]uint64
}

// expected is the number of adverts a MASTER sends in the window.
func (r floodResult) expected() uint64 { return uint64(r.duration / floodInterval) }

// missed is how many of want adverts the BACKUP did not accept.
func (r floodResult) missed(want uint64) uint64 {
	if r.backupIn >= want {
		return 0
	}
	return want - r.backupIn
}

// floodNet is one fresh network for one daemon pair: lvs1, lvs2 and the
// flood host on one bridge.
type floodNet struct {
	net              *testnet.Net
	start            *labStarter
	lvs1, lvs2, host *testnet.Host
	frames           []floodKind
}

func newFloodNet(t *testing.T) *floodNet {
	t.Helper()
	n := testnet.New(t)
	f := &floodNet{net: n, start: newLabStarter(t)}
	f.lvs1 = n.AddHost("lvs1", "192.0.2.11/24")
	f.lvs2 = n.AddHost("lvs2", "192.0.2.12/24")
	f.host = n.AddHost("flood", "192.0.2.66/24")
	var err error
	f.frames, err = floodFrames(floodVRID, f.host.Addr(4), f.host.MAC(), netip.MustParseAddr(floodVIP))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Flood runs trafgen from the flood host for d and returns the frames it
// sent and when it started.
func (f *floodNet) Flood(t *testing.T, cpus int, d time.Duration) (uint64, time.Time) {
	t.Helper()
	frames := make([][]byte, len(f.frames))
	for i, k := range f.frames {
		frames[i] = k.frame
	}
	var fl *flood
	f.start.Run(func() { fl = startFlood(t, f.host, cpus, frames) })
	// The flood's length is the workload itself, not a wait for a
	// condition: nothing to poll.
	<-time.After(d)
	return fl.Stop(t), fl.start
}

// floodConf is both nodes' configuration: VRRPv3, advert_int 0.1.
func floodConf(routerID string, prio int) string {
	return KAConf(routerID, 3, floodVRID, prio, "0.1", "", floodVIP+"/24")
}

// runFloodXdpvip floods a pair of xdpvip daemons (XDP dataplane).
func runFloodXdpvip(t *testing.T, cpus int) floodResult {
	t.Helper()
	f := newFloodNet(t)
	var n1, n2 *Node
	f.start.Run(func() {
		n1 = StartXdpvip(t, f.lvs1, floodConf("lvs1", 100), "--dataplane", "xdp")
		n2 = StartXdpvip(t, f.lvs2, floodConf("lvs2", 90), "--dataplane", "xdp")
	})
	n1.WaitState("VI_1", "MASTER", 10*time.Second)
	n2.WaitState("VI_1", "BACKUP", 5*time.Second)
	testnet.Eventually(t, 5*time.Second, func() error {
		in, err := n2.Instance("VI_1")
		if err != nil {
			return err
		}
		if in.AdvertsIn == 0 || in.Receive != "xdp" {
			return fmt.Errorf("lvs2: %d adverts in through %q, want some through xdp", in.AdvertsIn, in.Receive)
		}
		return nil
	})

	// The BACKUP's window contains the MASTER's: BACKUP first before,
	// last after.
	b0, m0 := n2.Status(), n1.Status()
	w0 := time.Now()
	sent, _ := f.Flood(t, cpus, floodFor)
	m1 := n1.Status()
	w1 := time.Now()
	b1 := n2.Status()
	// Frames still queued when trafgen stopped reach the programs a
	// moment later: wait until the counters stop moving.
	var last uint64
	testnet.Eventually(t, 5*time.Second, func() error {
		sum := uint64(0)
		for _, n := range n2.Status().XDPDrops["eth0"] {
			sum += n
		}
		if sum != last {
			last = sum
			return fmt.Errorf("lvs2's drop counters still moving (%d)", sum)
		}
		return nil
	})

	r := floodResult{
		daemon:            "xdpvip",
		sent:              sent,
		duration:          w1.Sub(w0),
		masterOut:         m1.Instances[0].AdvertsOut - m0.Instances[0].AdvertsOut,
		backupIn:          b1.Instances[0].AdvertsIn - b0.Instances[0].AdvertsIn,
		transitions:       b1.Instances[0].Transitions - b0.Instances[0].Transitions,
		masterTransitions: m1.Instances[0].Transitions - m0.Instances[0].Transitions,
		drops:             map[string]uint64{},
		states:            [2]string{m1.Instances[0].State, b1.Instances[0].State},
		// Each takeover is BACKUP -> MASTER, and back when the MASTER's
		// next advert arrives.
		takeovers: (b1.Instances[0].Transitions - b0.Instances[0].Transitions + 1) / 2,
	}
	after := n2.Status().XDPDrops["eth0"]
	for reason, n := range after {
		if d := n - b0.XDPDrops["eth0"][reason]; d > 0 {
			r.drops[reason] = d
		}
	}
	// The MASTER's program counts the same flood.
	m2 := n1.Status().XDPDrops["eth0"]
	for _, k := range f.frames {
		want := sent / uint64(len(f.frames))
		if got := m2[k.reason] - m0.XDPDrops["eth0"][k.reason]; got < want*9/10 {
			t.Errorf("lvs1 (MASTER) counted %d %q drops, want about %d (a third of %d frames)", got, k.reason, want, sent)
		}
	}
	return r
}

// runFloodKeepalived floods a pair of keepalived.
func runFloodKeepalived(t *testing.T, cpus int) floodResult {
	t.Helper()
	f := newFloodNet(t)
	var k1, k2 *KA
	f.start.Run(func() {
		k1 = startKeepalivedTmp(t, f.lvs1, floodConf("lvs1", 100))
		k2 = startKeepalivedTmp(t, f.lvs2, floodConf("lvs2", 90))
	})
	k1.WaitState("VI_1", "MASTER", 10*time.Second)
	k2.WaitState("VI_1", "BACKUP", 5*time.Second)
	stats := func(k *KA) kaStats {
		t.Helper()
		st, err := k.Stats("VI_1")
		if err != nil {
			t.Fatalf("%s: keepalived stats: %v\n%s", k.Host.Name(), err, k.Proc.Log())
		}
		return st
	}
	testnet.Eventually(t, 5*time.Second, func() error {
		if st := stats(k2); st.AdvertsIn == 0 {
			return fmt.Errorf("lvs2's keepalived has received no advert yet")
		}
		return nil
	})

	b0, s0, m0 := stats(k2), rawDrops(t, f.lvs2, vrrp.Protocol), stats(k1)
	w0 := time.Now()
	bt0, mt0 := len(k2.States("VI_1")), len(k1.States("VI_1"))
	sent, _ := f.Flood(t, cpus, floodFor)
	m1 := stats(k1)
	w1 := time.Now()
	b1, s1 := stats(k2), rawDrops(t, f.lvs2, vrrp.Protocol)
	return floodResult{
		daemon:            "keepalived",
		sent:              sent,
		duration:          w1.Sub(w0),
		masterOut:         m1.AdvertsOut - m0.AdvertsOut,
		backupIn:          b1.AdvertsIn - b0.AdvertsIn,
		transitions:       uint64(len(k2.States("VI_1")) - bt0),
		masterTransitions: uint64(len(k1.States("VI_1")) - mt0),
		drops:             map[string]uint64{"socket": s1 - s0},
		states:            [2]string{k1.State("VI_1"), k2.State("VI_1")},
		takeovers:         b1.BecameMaster - b0.BecameMaster,
	}
}

// TestXDPFloodResilience floods xdpvip, then keepalived, with the same
// frames at the same rate, asserts xdpvip's behaviour and prints both.
func TestXDPFloodResilience(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the flood test runs for about 40 s")
	}
	if _, err := exec.LookPath("trafgen"); err != nil {
		t.Skip("trafgen not installed: apt-get install netsniff-ng")
	}
	RequireKeepalived(t)
	// One trafgen sender, on one core (the issue's reference set-up, "one
	// generator core"). Measured here, a second sender adds under 10 %
	// while the XDP programs drop the frames (the bridge's flooding to
	// every port is the bottleneck, not the sender), and on a 2-core
	// machine it takes the core the daemons and the test need: the
	// MASTER's own adverts then go out late, which is starvation of the
	// sender, not what this test is about.
	const cpus = 1

	var x, k floodResult
	t.Run("xdpvip", func(t *testing.T) { x = runFloodXdpvip(t, cpus) })
	t.Run("keepalived", func(t *testing.T) { k = runFloodKeepalived(t, cpus) })

	var b strings.Builder
	fmt.Fprintf(&b, "VRRP flood side by side: VRRPv3, advert_int %v, %v per daemon, trafgen on %d CPU(s), frames round robin: foreign VRID, bad checksum, truncated\n", floodInterval, floodFor, cpus)
	row := func(name string, f func(r floodResult) string) {
		fmt.Fprintf(&b, "  %-40s %-26s %s\n", name, f(x), f(k))
	}
	row("", func(r floodResult) string { return r.daemon })
	row("flood frames sent (rate)", func(r floodResult) string {
		return fmt.Sprintf("%d (%.0f kpps)", r.sent, float64(r.sent)/r.duration.Seconds()/1e3)
	})
	row("BACKUP transitions (MASTER's)", func(r floodResult) string {
		return fmt.Sprintf("%d (%d)", r.transitions, r.masterTransitions)
	})
	row("BACKUP became MASTER", func(r floodResult) string { return fmt.Sprint(r.takeovers) })
	row("lvs1 / lvs2 after the flood", func(r floodResult) string { return r.states[0] + " / " + r.states[1] })
	row("adverts: expected / MASTER sent / BACKUP got", func(r floodResult) string {
		return fmt.Sprintf("%d / %d / %d", r.expected(), r.masterOut, r.backupIn)
	})
	row("adverts missed by the BACKUP: vs expected", func(r floodResult) string {
		return fmt.Sprintf("%d (%.1f%%)", r.missed(r.expected()), 100*float64(r.missed(r.expected()))/float64(max(r.expected(), 1)))
	})
	row("  vs what the MASTER sent", func(r floodResult) string {
		return fmt.Sprintf("%d", r.missed(r.masterOut))
	})
	row("BACKUP drops (XDP by reason / socket)", func(r floodResult) string { return fmt.Sprint(r.drops) })
	row("  of the frames sent", func(r floodResult) string {
		var n uint64
		for _, d := range r.drops {
			n += d
		}
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(max(r.sent, 1)))
	})
	t.Log(b.String())

	if t.Failed() {
		return
	}
	// xdpvip's assertions.
	if x.transitions != 0 || x.masterTransitions != 0 {
		t.Errorf("xdpvip: the BACKUP made %d transitions and the MASTER %d under the flood, want 0", x.transitions, x.masterTransitions)
	}
	if x.states != [2]string{"MASTER", "BACKUP"} {
		t.Errorf("xdpvip: lvs1 / lvs2 are %s / %s after the flood, want MASTER / BACKUP", x.states[0], x.states[1])
	}
	// Both counters are read a few milliseconds apart, and the BACKUP's
	// window contains the MASTER's: it may count one or two more.
	if x.backupIn+2 < x.masterOut {
		t.Errorf("xdpvip: the BACKUP accepted %d adverts, the MASTER sent %d", x.backupIn, x.masterOut)
	}
	// The MASTER kept its pace: at least 90 % of duration / advert_int
	// (timers run late on a loaded machine; the BACKUP's master-down
	// interval is 3 intervals, so lateness alone is no takeover).
	if x.backupIn < x.expected()*9/10 {
		t.Errorf("xdpvip: the BACKUP accepted %d adverts in %v, want at least 90%% of %d", x.backupIn, x.duration, x.expected())
	}
	// Each kind is a third of the frames (round robin per sender); a few
	// may be lost on the way (a full veth queue), none counted twice.
	var counted uint64
	for _, k := range []string{"vrid", "checksum", "truncated"} {
		want := x.sent / 3
		got := x.drops[k]
		counted += got
		if got < want*9/10 {
			t.Errorf("xdpvip: the BACKUP's XDP program counted %d %q drops, want about %d (a third of %d frames)", got, k, want, x.sent)
		}
	}
	if counted > x.sent {
		t.Errorf("xdpvip: the BACKUP's XDP program counted %d drops for %d frames sent", counted, x.sent)
	}
	for reason, n := range x.drops {
		if reason != "vrid" && reason != "checksum" && reason != "truncated" {
			t.Errorf("xdpvip: %d drops counted as %q, which the flood does not send", n, reason)
		}
	}
}
