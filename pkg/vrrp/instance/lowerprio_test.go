package instance

import (
	"bytes"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// garps is n gratuitous ARPs for addr.
func garps(addr string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "garp " + addr
	}
	return out
}

// keepalived 2.2.7's defaults (garp_lower_prio_repeat and _delay follow
// vrrp_garp_master_repeat 5 and _delay 5 s): a MASTER hearing a lower
// priority advert answers it, sends 5 GARP rounds, runs
// notify_master_rx_lower_pri, restarts its Adver_Timer, and sends 5 more
// rounds 5 s later.
func TestLowerPrioDefaults(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, `    notify_master_rx_lower_pri "/bin/rx"`)), "VI", nil).becomeMaster()
	r.advance(300 * time.Millisecond)
	r.wantOps()
	r.hear(50)
	r.wantOps(append(append([]string{"send 100"}, garps("192.0.2.100", 5)...), "notify /bin/rx")...)
	r.wantState(vrrp.StateMaster)
	if want := r.clk.now.Add(time.Second); !r.in.m.Deadline().Equal(want) {
		t.Fatalf("Adver_Timer %v after the answer, want %v", r.in.m.Deadline(), want)
	}
	st := r.in.Status()
	// 5 rounds from becoming MASTER (its second burst still to come), 5
	// for the lower priority advert.
	if st.MasterRxLowerPri != 1 || st.GARPRounds != 5+5 {
		t.Fatalf("master_rx_lower_pri %d, garp_rounds %d; want 1, 10", st.MasterRxLowerPri, st.GARPRounds)
	}
	// The takeover's second burst is due at +5 s of becoming MASTER,
	// the lower priority one 5 s after the advert.
	r.advance(5*time.Second - time.Millisecond)
	got := r.ops.take()
	if n := count(got, "garp 192.0.2.100"); n != 5 {
		t.Fatalf("before the lower priority delay: %d GARPs (want the takeover's second burst, 5): %q", n, got)
	}
	r.advance(time.Millisecond)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 5 {
		t.Fatalf("at the lower priority delay: %q, want 5 GARPs", got)
	}
	r.advance(10 * time.Second)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 0 || count(got, "send 100") != 10 {
		t.Fatalf("afterwards: %q, want adverts alone", got)
	}
	if st := r.in.Status(); st.MasterRxLowerPri != 1 {
		t.Fatalf("master_rx_lower_pri %d, want 1", st.MasterRxLowerPri)
	}
}

// Every lower priority advert sends its rounds and starts its own delayed
// round, as each starts a keepalived timer thread.
func TestLowerPrioEachAdvert(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "    garp_lower_prio_repeat 2\n    garp_lower_prio_delay 3\n    garp_master_delay 0")),
		"VI", nil).becomeMaster()
	r.hear(50)
	r.advance(time.Second)
	r.hear(50)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 4 {
		t.Fatalf("two lower adverts: %q, want 2 + 2 GARPs", got)
	}
	r.advance(2 * time.Second) // +3 s from the first
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 2 {
		t.Fatalf("first delayed round: %q", got)
	}
	r.advance(time.Second)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 2 {
		t.Fatalf("second delayed round: %q", got)
	}
	if st := r.in.Status(); st.MasterRxLowerPri != 2 {
		t.Fatalf("master_rx_lower_pri %d, want 2", st.MasterRxLowerPri)
	}
}

// lower_prio_no_advert: no answer, the Adver_Timer keeps its schedule;
// the GARP rounds and the notify still happen. A delayed round that comes
// due after the instance left MASTER sends nothing (keepalived: the VIPs
// are no longer set).
func TestLowerPrioNoAdvert(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, `    lower_prio_no_advert
    garp_lower_prio_repeat 1
    garp_lower_prio_delay 2
    garp_master_delay 0
    notify_master_rx_lower_pri "/bin/rx"`)), "VI", nil).becomeMaster()
	r.advance(300 * time.Millisecond)
	deadline := r.in.m.Deadline()
	r.hear(50)
	r.wantOps("garp 192.0.2.100", "notify /bin/rx")
	if !r.in.m.Deadline().Equal(deadline) {
		t.Fatalf("Adver_Timer moved to %v, want %v", r.in.m.Deadline(), deadline)
	}
	r.hear(200) // a better MASTER: we leave before the delayed round
	r.wantState(vrrp.StateBackup)
	r.ops.take()
	r.advance(3 * time.Second)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 0 {
		t.Fatalf("delayed round sent as BACKUP: %q", got)
	}
	if len(r.in.lowerPrioAt) != 0 {
		t.Fatalf("delayed rounds left: %v", r.in.lowerPrioAt)
	}
}

// vrrp_strict: lower_prio_no_advert on and garp_lower_prio_repeat 0 by
// default (pkg/config): a lower priority advert is met with silence, but
// still runs notify_master_rx_lower_pri; the split-brain episode it starts
// ends without xdpvip's re-announcement (conflict.go), as keepalived
// sends nothing either.
func TestLowerPrioStrict(t *testing.T) {
	cfg := parse(t, "global_defs {\n    vrrp_strict\n}\n"+instanceConf("VI", 7, `    notify_master_rx_lower_pri "/bin/rx"`))
	ic := cfg.Instance("VI")
	if !ic.LowerPrioNoAdvert || ic.GarpLowerPrioRepeat != 0 {
		t.Fatalf("strict defaults: lower_prio_no_advert %v, garp_lower_prio_repeat %d", ic.LowerPrioNoAdvert, ic.GarpLowerPrioRepeat)
	}
	r := newRig(t, cfg, "VI", nil).becomeMaster()
	r.advance(10*time.Second + 300*time.Millisecond) // the takeover's GARP schedule is over
	r.ops.take()
	deadline := r.in.m.Deadline()
	r.hear(50)
	r.wantOps("notify /bin/rx")
	r.advance(deadline.Sub(r.clk.now))
	r.wantOps("send 100")
	r.advance(10 * time.Second)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 0 || count(got, "notify /bin/m") != 0 {
		t.Fatalf("strict: re-announced after the episode: %q", got)
	}
	if st := r.in.Status(); st.Conflicts != 1 || st.ConflictActive || st.ConflictReannounced != 0 {
		t.Fatalf("strict: %+v", st.ConflictStatus)
	}
}

// higher_prio_send_advert: one advert before yielding to a better MASTER.
func TestHigherPrioSendAdvert(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "    higher_prio_send_advert")), "VI", nil).becomeMaster()
	r.hear(200)
	got := r.ops.take()
	if len(got) == 0 || got[0] != "send 100" || count(got, "send 100") != 1 {
		t.Fatalf("yielding with higher_prio_send_advert: %q, want one advert first", got)
	}
	r.wantState(vrrp.StateBackup)
}

// The other members of the sync group with garp_lower_prio_repeat set
// announce their VIPs too (now and after their delay); those without do
// not. B's rounds need B to hold its VIPs (MASTER, with the group).
func TestLowerPrioSyncGroup(t *testing.T) {
	cfg := parse(t, `vrrp_sync_group G {
    group {
        A
        B
        C
    }
}
`+instanceConf("A", 7, "    garp_lower_prio_repeat 0")+
		instanceConf("B", 8, "    garp_lower_prio_repeat 2\n    garp_lower_prio_delay 4\n    garp_master_delay 0")+
		instanceConf("C", 9, "    garp_lower_prio_repeat 0"))
	g := NewSyncGroup("G")
	a := newRig(t, cfg, "A", nil, withGroup(g)).start()
	b := newRig(t, cfg, "B", nil, withGroup(g)).start()
	c := newRig(t, cfg, "C", nil, withGroup(g)).start()
	pump := func() {
		for range 4 {
			a.pump()
			b.pump()
			c.pump()
		}
	}
	a.advance(a.in.m.MasterDownInterval())
	pump()
	for _, r := range []*rig{a, b, c} {
		r.wantState(vrrp.StateMaster)
		r.ops.take()
	}
	a.hear(50)
	pump()
	if got := a.ops.take(); count(got, "garp 192.0.2.100") != 0 || count(got, "send 100") != 1 {
		t.Fatalf("A (garp_lower_prio_repeat 0): %q", got)
	}
	b.wantOps(garps("192.0.2.101", 2)...)
	c.wantOps()
	b.advance(4 * time.Second)
	if got := b.ops.take(); count(got, "garp 192.0.2.101") != 2 {
		t.Fatalf("B's delayed round: %q", got)
	}
}

// With keepalived's answer on (the default), an advert episode of a split
// brain is repaired by the garp_lower_prio rounds: no re-announcement
// when it ends. A claim after the last round (the other node announced
// after us) still gets one.
func TestLowerPrioRepairsSplitBrain(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "    garp_lower_prio_delay 0")), "VI", nil,
		withClaims(new(bytes.Buffer))).becomeMaster()
	r.advance(10 * time.Second) // the takeover's schedule is over
	r.ops.take()
	r.hear(50)
	r.advance(conflictQuietAdverts * time.Second)
	if got := r.ops.take(); count(got, "notify /bin/m") != 0 || count(got, "garp 192.0.2.100") != 5 {
		t.Fatalf("advert episode answered with lower priority GARPs: %q, want those 5 alone", got)
	}
	if st := r.in.Status(); st.ConflictReannounced != 0 || st.ConflictActive {
		t.Fatalf("status %+v", st.ConflictStatus)
	}
	r.advance(10 * time.Second)
	r.hear(50)
	r.advance(100 * time.Millisecond)
	r.claim(netif.ClaimGARP, vip, otherMAC)
	r.advance(conflictQuietAdverts * time.Second)
	if got := r.ops.take(); count(got, "notify /bin/m") != 1 {
		t.Fatalf("claim after the lower priority GARPs: %q, want a re-announcement", got)
	}
}

// With XDP, PeerSeen keeps the last advert, and a MASTER's timer steps it
// into the machine when the inbox has not: the lower priority advert the
// inbox delivered must not be answered, announced and notified again at
// each Adver_Timer while it is younger than Master_Down_Interval.
func TestLowerPrioNotReplayedFromPeerSeen(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, `    garp_lower_prio_delay 0
    notify_master_rx_lower_pri "/bin/rx"`)), "VI", nil, withPeerSeen()).becomeMaster()
	r.advance(10 * time.Second)
	r.ops.take()
	r.hear(50)
	r.peer.seen = true
	for i := 1; i <= 3; i++ {
		r.peer.p = PeerAdvert{Src: peer, Priority: 50, Interval: time.Second, Age: time.Duration(i) * time.Second}
		r.advance(time.Second)
	}
	if st := r.in.Status(); st.MasterRxLowerPri != 1 {
		t.Fatalf("master_rx_lower_pri %d, want 1", st.MasterRxLowerPri)
	}
	if got := r.ops.take(); count(got, "notify /bin/rx") != 1 || count(got, "send 100") != 4 {
		t.Fatalf("ops %q: want one notify, the answer and 3 regular adverts", got)
	}
	// A newer advert PeerSeen knows of, which the inbox lost, is stepped.
	r.peer.p.Age = 100 * time.Millisecond
	r.advance(time.Second)
	if st := r.in.Status(); st.MasterRxLowerPri != 2 {
		t.Fatalf("master_rx_lower_pri %d after a newer advert, want 2", st.MasterRxLowerPri)
	}
}
