package instance

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

func count(list []string, op string) int {
	n := 0
	for _, o := range list {
		if o == op {
			n++
		}
	}
	return n
}

// Becoming MASTER: VIPs first, then forwarding, then the first GARP burst
// (garp_master_repeat), notify_master, the first advert; the second burst
// comes garp_master_delay later and a refresh every garp_master_refresh.
func TestGARPScheduleAfterMaster(t *testing.T) {
	cfg := parse(t, instanceConf("VI", 7, `
    garp_master_delay 5
    garp_master_repeat 3
    garp_master_refresh 30
    garp_master_refresh_repeat 2`))
	r := newRig(t, cfg, "VI", nil).start()
	r.wantOps("notify /bin/b")
	r.advance(r.in.m.MasterDownInterval())
	r.wantOps("add 192.0.2.100", "forward true", "garp 192.0.2.100", "garp 192.0.2.100", "garp 192.0.2.100",
		"notify /bin/m", "send 100")
	r.advance(4*time.Second + 900*time.Millisecond)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 0 || count(got, "send 100") != 4 {
		t.Fatalf("before garp_master_delay: %q", got)
	}
	r.advance(200 * time.Millisecond)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 3 {
		t.Fatalf("at garp_master_delay: %q, want a second burst of 3", got)
	}
	r.advance(24 * time.Second)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 0 {
		t.Fatalf("before the refresh: %q", got)
	}
	r.advance(time.Second)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 2 {
		t.Fatalf("at garp_master_refresh: %q, want 2", got)
	}
	r.advance(30 * time.Second)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 2 {
		t.Fatalf("second refresh: %q, want 2", got)
	}
	// Leaving MASTER ends the schedule.
	r.hear(200)
	r.wantState(vrrp.StateBackup)
	r.ops.take()
	for range 30 {
		r.hear(200)
		r.advance(time.Second)
	}
	r.wantState(vrrp.StateBackup)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 0 {
		t.Fatalf("GARP after leaving MASTER: %q", got)
	}
}

// Leaving MASTER: the dataplane stops forwarding before the VIPs go, then
// notify_backup; a priority-0 advert from the new MASTER is not needed.
func TestLeaveMasterOrder(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).becomeMaster()
	r.hear(200)
	r.wantState(vrrp.StateBackup)
	r.wantOps("forward false", "del 192.0.2.100", "notify /bin/b")
	if r.vips.present[vip] || r.role.on {
		t.Fatal("VIP or forwarding left after leaving MASTER")
	}
}

// Shutdown as MASTER: priority-0 advert first (the BACKUP takes over after
// Skew_Time), then forwarding off, VIPs removed, notify_stop.
func TestStopSendsPriorityZero(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).becomeMaster()
	r.in.stop()
	r.wantOps("send 0", "forward false", "del 192.0.2.100", "notify /bin/s")
	r.wantState(vrrp.StateInit)

	// A BACKUP leaves without an advert.
	b := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).start()
	b.ops.take()
	b.in.stop()
	b.wantOps("notify /bin/s")
}

// --dont-release-vrrp: a MASTER that stops sends no priority-0 advert and
// leaves its VIPs and forwarding for the next daemon to adopt.
func TestKeepOnStop(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).becomeMaster()
	r.in.KeepOnStop()
	r.in.stop()
	if got := r.ops.take(); len(got) != 0 {
		t.Fatalf("a kept stop did %q, want nothing", got)
	}
	if !r.vips.present[vip] || !r.role.on {
		t.Fatal("a kept stop removed the VIP or stopped forwarding")
	}
}

// A restarted daemon finds the VIPs a previous one left while the
// dataplane still forwards them: it keeps them (no interruption) while the
// election runs and releases them when another router is MASTER.
func TestAdoptionReleasedToOtherMaster(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withRole(true))
	r.vips.present[vip] = true
	r.start()
	r.wantState(vrrp.StateBackup)
	r.wantOps("notify /bin/b")
	if !r.in.inherited || !r.vips.owned[vip] {
		t.Fatal("left VIP not adopted")
	}
	r.hear(50) // a lower priority MASTER: we will preempt, keep them
	r.wantOps()
	r.hear(200)
	r.wantOps("forward false", "del 192.0.2.100")
	if r.in.inherited {
		t.Fatal("still inherited after another router became MASTER")
	}
}

// Adopted VIPs stay through our own takeover: no removal, no second add.
func TestAdoptionKeptWhenWeBecomeMaster(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withRole(true))
	r.vips.present[vip] = true
	r.start()
	r.ops.take()
	r.advance(r.in.m.MasterDownInterval())
	r.wantState(vrrp.StateMaster)
	got := r.ops.take()
	if count(got, "del 192.0.2.100") != 0 || count(got, "add 192.0.2.100") != 0 || got[0] != "forward true" {
		t.Fatalf("takeover with adopted VIPs: %q", got)
	}
	// They are ours now: leaving removes them.
	r.hear(200)
	r.wantOps("forward false", "del 192.0.2.100", "notify /bin/b")
}

// VIPs left without forwarding (the dataplane was reset, or none) are
// removed at start, as keepalived does.
func TestLeftoversWithoutForwardingRemoved(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil)
	r.vips.present[vip] = true
	r.start()
	r.wantOps("del 192.0.2.100", "notify /bin/b")
}

// Adverts from the XDP ring buffer were validated in BPF: they are only
// decoded (no TTL to check); socket datagrams are validated.
func TestReceivePaths(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).start()
	group := netip.MustParseAddr("224.0.0.18")
	r.in.handle(Datagram{Payload: r.advert(200, peer), Src: peer, Dst: group, TTL: 64})
	if st := r.in.Status(); st.Drops["ttl"] != 1 || st.AdvertsIn != 0 {
		t.Fatalf("socket advert with TTL 64: %+v", st)
	}
	r.in.handle(Advert{Payload: r.advert(200, peer), Src: peer, Dst: group})
	if st := r.in.Status(); st.AdvertsIn != 1 || st.MasterPriority != 200 {
		t.Fatalf("XDP advert not accepted: %+v", st)
	}
	r.in.handle(Advert{Payload: []byte{0x31}, Src: peer, Dst: group})
	if st := r.in.Status(); st.Drops["truncated"] != 1 {
		t.Fatalf("undecodable XDP advert not counted: %+v", st.Drops)
	}
}

// track_script weights move the effective priority; an unweighted failing
// script or interface puts the instance in FAULT (a MASTER sends priority
// 0 first) and it comes back as BACKUP.
func TestTrackingWeightsAndFault(t *testing.T) {
	cfg := parse(t, `vrrp_script chk_w {
    script "/bin/true"
    weight -30
}
vrrp_script chk_f {
    script "/bin/true"
    weight 0
}
`+instanceConf("VI", 7, `
    track_script {
        chk_w
        chk_f
    }
    track_interface {
        eth1 weight 20
    }`))
	r := newRig(t, cfg, "VI", nil).becomeMaster()
	if p := r.in.m.Priority(); p != 120 {
		t.Fatalf("priority %d with eth1 up (+20), want 120", p)
	}
	r.in.handle(TrackChange{Kind: TrackScript, Name: "chk_w", OK: false})
	if p := r.in.m.Priority(); p != 90 {
		t.Fatalf("priority %d after chk_w failed (-30), want 90", p)
	}
	r.in.handle(TrackChange{Kind: TrackInterface, Name: "eth1", OK: false})
	if p := r.in.m.Priority(); p != 70 {
		t.Fatalf("priority %d after eth1 down, want 70", p)
	}
	r.advance(time.Second)
	if got := r.ops.take(); count(got, "send 70") != 1 {
		t.Fatalf("MASTER does not advertise its new priority: %q", got)
	}
	r.in.handle(TrackChange{Kind: TrackScript, Name: "chk_f", OK: false})
	r.wantState(vrrp.StateFault)
	r.wantOps("send 0", "forward false", "del 192.0.2.100", "notify /bin/f")
	r.advance(10 * time.Second)
	r.wantOps() // FAULT sends nothing
	r.in.handle(TrackChange{Kind: TrackScript, Name: "chk_f", OK: true})
	r.wantState(vrrp.StateBackup)
	r.wantOps("notify /bin/b")
	// The primary interface is tracked too (weight 0).
	r.in.handle(TrackChange{Kind: TrackInterface, Name: "eth0", OK: false})
	r.wantState(vrrp.StateFault)
}

// A script that starts failing (init_fail) starts the instance in FAULT.
func TestTrackingInitFail(t *testing.T) {
	cfg := parse(t, `vrrp_script chk {
    script "/bin/true"
    init_fail
}
`+instanceConf("VI", 7, `
    track_script {
        chk
    }`))
	r := newRig(t, cfg, "VI", nil).start()
	r.wantState(vrrp.StateFault)
	r.wantOps("notify /bin/f")
	r.in.handle(TrackChange{Kind: TrackScript, Name: "chk", OK: true})
	r.wantState(vrrp.StateBackup)
}

// Sync group: one member becoming MASTER takes the other along; one
// member's fault is every member's; back to BACKUP together.
func TestSyncGroupFollow(t *testing.T) {
	cfg := parse(t, `vrrp_sync_group G {
    group {
        A
        B
    }
}
`+instanceConf("A", 7, "")+instanceConf("B", 8, "    priority 50\n"))
	g := NewSyncGroup("G")
	a := newRig(t, cfg, "A", nil, withGroup(g)).start()
	b := newRig(t, cfg, "B", nil, withGroup(g)).start()
	pump := func() {
		for i := 0; i < 4; i++ {
			a.pump()
			b.pump()
		}
	}
	a.advance(a.in.m.MasterDownInterval())
	pump()
	a.wantState(vrrp.StateMaster)
	b.wantState(vrrp.StateMaster) // followed A at once, not after its own timer
	if !b.vips.present[netip.MustParseAddr("192.0.2.101")] {
		t.Fatal("B followed to MASTER without its VIP")
	}
	// B's tracked interface fails: both go FAULT.
	b.in.handle(TrackChange{Kind: TrackInterface, Name: "eth0", OK: false})
	pump()
	a.wantState(vrrp.StateFault)
	b.wantState(vrrp.StateFault)
	if got := a.ops.take(); !slices.Contains(got, "send 0") {
		t.Fatalf("A left MASTER for the group fault without priority 0: %q", got)
	}
	b.in.handle(TrackChange{Kind: TrackInterface, Name: "eth0", OK: true})
	pump()
	a.wantState(vrrp.StateBackup)
	b.wantState(vrrp.StateBackup)
	// A higher priority MASTER for A's VRID: A goes BACKUP, B follows.
	a.advance(a.in.m.MasterDownInterval())
	pump()
	a.wantState(vrrp.StateMaster)
	b.wantState(vrrp.StateMaster)
	a.hear(200)
	pump()
	a.wantState(vrrp.StateBackup)
	b.wantState(vrrp.StateBackup)
	// A member that stops leaves the group: its faults no longer count.
	b.in.stop()
	if g.Len() != 1 {
		t.Fatalf("group has %d members after B stopped", g.Len())
	}
}

// A reload that changes the configured priority steps the new effective
// priority in and shows it in the status.
func TestBasePriority(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).start()
	r.in.handle(BasePriority{Priority: 150})
	if st := r.in.Status(); st.ConfiguredPriority != 150 || st.EffectivePriority != 150 {
		t.Fatalf("status after a reload to 150: configured %d effective %d", st.ConfiguredPriority, st.EffectivePriority)
	}
}

// A reload restarts the vrrp_script runners: a kept instance that still
// holds the old runner's "failed" must hear the new runner's first result
// even though the new counter did not change, or it stays FAULT for good.
func TestScriptRunnerReportsFirstResult(t *testing.T) {
	cfg := parse(t, `vrrp_script chk {
    script "/bin/true"
    interval 1
}
`+instanceConf("VI", 7, `
    track_script {
        chk
    }`))
	r := newRig(t, cfg, "VI", nil).start()
	r.in.handle(TrackChange{Kind: TrackScript, Name: "chk", OK: false}) // the old runner's last word
	r.wantState(vrrp.StateFault)
	runner := NewScriptRunner(cfg.Script("chk"), r.in.log)
	runner.Subscribe(r.in)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go runner.Run(ctx)
	select {
	case x := <-r.in.inputs:
		r.in.handle(x)
	case <-time.After(5 * time.Second):
		t.Fatal("the new runner reported nothing after its first run")
	}
	r.wantState(vrrp.StateBackup)
}
