package instance

import (
	"bytes"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// hearAt steps an advert from peer that the kernel received at at (the
// instance handles it at the rig's clock, possibly later).
func (r *rig) hearAt(prio uint8, at time.Time) {
	r.in.handle(Datagram{Payload: r.advert(prio, peer), Src: peer, Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255, At: at})
	r.pump()
}

// The gaps between the MASTER's adverts are measured on their kernel
// arrival times, not on when the instance handled them: a gap past half of
// Master_Down_Interval is logged once (rate-limited), the largest gap of
// the last minute is in the status with its ratio, and it ages out.
func TestAdvertGapsNearMiss(t *testing.T) {
	var logs bytes.Buffer
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, func(_ *rig, d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
	}).start()
	mdi := r.in.m.MasterDownInterval() // 3 s + skew (priority 100: 0.609 s)
	// On time: gaps of 1 s, handled late (the daemon stalled) but stamped
	// by the kernel on time.
	t0 := r.clk.now
	for i := range 5 {
		r.clk.now = t0.Add(time.Duration(i)*time.Second + 300*time.Millisecond)
		r.hearAt(200, t0.Add(time.Duration(i)*time.Second))
	}
	st := r.in.Status()
	if st.LargestGapSeconds != 1 || st.AdvertGaps.Count != 4 {
		t.Fatalf("steady adverts: largest gap %v s, %d gaps; want 1 s, 4", st.LargestGapSeconds, st.AdvertGaps.Count)
	}
	if strings.Contains(logs.String(), "near miss") {
		t.Fatalf("near miss logged on steady adverts:\n%s", logs.String())
	}
	// An advert stamped before the last one is not a gap, nor does it
	// restart the series.
	r.hearAt(200, t0.Add(3500*time.Millisecond))
	if st := r.in.Status(); st.AdvertGaps.Count != 4 {
		t.Fatalf("out-of-order advert: %d gaps, want 4", st.AdvertGaps.Count)
	}
	// A 2.5 s gap: 0.69 of Master_Down_Interval, no failover.
	last := t0.Add(4 * time.Second)
	r.clk.now = last.Add(2500 * time.Millisecond)
	r.hearAt(200, r.clk.now)
	r.wantState(vrrp.StateBackup)
	st = r.in.Status()
	want := float64(2500*time.Millisecond) / float64(mdi)
	if st.LargestGapSeconds != 2.5 || math.Abs(st.LargestGapRatio-want) > 1e-9 {
		t.Fatalf("largest gap %v s ratio %v, want 2.5 s ratio %v", st.LargestGapSeconds, st.LargestGapRatio, want)
	}
	if n := strings.Count(logs.String(), "near miss"); n != 1 {
		t.Fatalf("near miss logged %d times, want 1:\n%s", n, logs.String())
	}
	// A second one within the rate limit is measured but not logged.
	r.clk.now = r.clk.now.Add(2 * time.Second)
	r.hearAt(200, r.clk.now)
	if n := strings.Count(logs.String(), "near miss"); n != 1 {
		t.Fatalf("near miss logged %d times within %v, want 1", n, gapWarnEvery)
	}
	// Buckets are relative to the advert interval (1 s): 4 gaps ≤ 1.1 s,
	// 2 more ≤ 2.5 s.
	h := r.in.Status().AdvertGaps
	checked := 0
	for i, b := range h.Bounds {
		if b == 1.1 || b == 2.5 {
			checked++
			if b == 1.1 && h.Counts[i] != 4 || b == 2.5 && h.Counts[i] != 6 {
				t.Fatalf("histogram %v %v", h.Bounds, h.Counts)
			}
		}
	}
	if checked != 2 || h.Count != 6 {
		t.Fatalf("histogram %v %v count %d: want bounds 1.1 and 2.5, 6 gaps", h.Bounds, h.Counts, h.Count)
	}
	// A minute later the largest gap is the recent steady one.
	for range 70 {
		r.clk.now = r.clk.now.Add(time.Second)
		r.hearAt(200, r.clk.now)
	}
	if st := r.in.Status(); st.LargestGapSeconds != 1 {
		t.Fatalf("largest gap after a minute %v s, want 1", st.LargestGapSeconds)
	}
	// The socket path without a kernel stamp falls back to when the
	// advert was handled.
	r.clk.now = r.clk.now.Add(1500 * time.Millisecond)
	r.hear(200)
	if st := r.in.Status(); st.LargestGapSeconds != 1.5 {
		t.Fatalf("unstamped advert: largest gap %v s, want 1.5", st.LargestGapSeconds)
	}
}

// Gaps are measured only between adverts of one MASTER while BACKUP: a
// new MASTER starts a new series, and so does becoming MASTER ourselves.
func TestAdvertGapsNewMaster(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).start()
	other := netip.MustParseAddr("192.0.2.3")
	r.hearAt(200, r.clk.now)
	r.clk.now = r.clk.now.Add(2 * time.Second)
	r.in.handle(Datagram{Payload: r.advert(250, other), Src: other, Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255, At: r.clk.now})
	if st := r.in.Status(); st.AdvertGaps.Count != 0 {
		t.Fatalf("gap measured across two MASTERs: %+v", st.AdvertGaps)
	}
	r.advance(r.in.m.MasterDownInterval())
	r.wantState(vrrp.StateMaster)
	r.hear(200) // back to BACKUP: first of a series
	r.wantState(vrrp.StateBackup)
	if st := r.in.Status(); st.AdvertGaps.Count != 0 {
		t.Fatalf("gap measured across our own mastership: %+v", st.AdvertGaps)
	}
}

// The counters of becoming and leaving MASTER, by cause, priority-0 adverts
// and GARP rounds.
func TestMasterCounters(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "    garp_master_repeat 2")), "VI", nil).becomeMaster()
	r.hear(200) // a better MASTER
	r.wantState(vrrp.StateBackup)
	r.hear(0) // it leaves
	r.advance(time.Second)
	r.wantState(vrrp.StateMaster)
	r.in.stop() // priority 0 sent
	st := r.in.Status()
	want := map[string]uint64{vrrp.CauseNoMaster: 1, vrrp.CausePriorityZero: 1}
	if st.BecomeMaster != 2 || st.ReleaseMaster != 2 || st.PriorityZeroIn != 1 || st.PriorityZeroOut != 1 {
		t.Fatalf("become %d release %d prio0 in %d out %d; want 2 2 1 1", st.BecomeMaster, st.ReleaseMaster, st.PriorityZeroIn, st.PriorityZeroOut)
	}
	if len(st.BecomeMasterBy) != len(want) || st.BecomeMasterBy[vrrp.CauseNoMaster] != 1 || st.BecomeMasterBy[vrrp.CausePriorityZero] != 1 {
		t.Fatalf("by cause %v, want %v", st.BecomeMasterBy, want)
	}
	// garp_master_repeat 2 at each of the two takeovers; the delayed second
	// burst (garp_master_delay 5 s) never came.
	if st.GARPRounds != 4 {
		t.Fatalf("GARP rounds %d, want 4", st.GARPRounds)
	}
}
