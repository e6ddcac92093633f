package instance

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

var (
	ownMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	otherMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

// withClaims makes ownMAC and the VRID's VMAC ours and logs into buf.
func withClaims(buf *bytes.Buffer) rigOption {
	return func(r *rig, d *Deps) {
		d.IO.Claims = ClaimWatch{Own: []net.HardwareAddr{ownMAC, netif.VMACAddr(7, false)}}
		d.Log = slog.New(slog.NewTextHandler(buf, nil))
	}
}

func (r *rig) claim(kind netif.ClaimKind, addr netip.Addr, mac net.HardwareAddr) {
	r.in.handle(Claimed{Claim: netif.Claim{Kind: kind, Addr: addr, MAC: mac}})
}

func (r *rig) wantConflicts(n uint64) Status {
	r.t.Helper()
	st := r.in.Status()
	if st.Conflicts != n {
		r.t.Fatalf("conflicts %d, want %d (last %+v)", st.Conflicts, n, st.LastConflict)
	}
	return st
}

// noLowerPrioGARP turns keepalived's own answer to a lower priority MASTER
// (garp_lower_prio_repeat rounds, lowerprio.go) off, so that the tests of
// advert episodes see the split-brain re-announcement alone.
const noLowerPrioGARP = "garp_lower_prio_repeat 0"

func warnLines(buf *bytes.Buffer) int {
	return strings.Count(buf.String(), "level=WARN msg=\"split brain: another node")
}

// While MASTER, a GARP for our VIP with another MAC is counted and logged
// (rate-limited); our own MAC, the VMAC and other addresses are not. Once
// quiet for 3 adverts' time the instance re-announces and re-runs
// notify_master.
func TestConflictClaimWhileMaster(t *testing.T) {
	var log bytes.Buffer
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withClaims(&log)).becomeMaster()
	r.claim(netif.ClaimGARP, vip, ownMAC)
	r.claim(netif.ClaimGARP, vip, netif.VMACAddr(7, false))
	r.claim(netif.ClaimARPReply, netip.MustParseAddr("192.0.2.200"), otherMAC)
	r.wantConflicts(0)
	if st := r.in.Status(); st.ConflictActive || st.LastConflict != nil {
		t.Fatalf("no conflict yet: %+v", st.ConflictStatus)
	}

	at := r.clk.now
	r.claim(netif.ClaimGARP, vip, otherMAC)
	st := r.wantConflicts(1)
	if !st.ConflictActive || st.LastConflict == nil || st.LastConflict.MAC != otherMAC.String() ||
		st.LastConflict.VIP != vip.String() || st.LastConflict.Kind != "garp" || !st.LastConflict.Time.Equal(at) {
		t.Fatalf("status after a conflict: %+v %+v", st.ConflictStatus, st.LastConflict)
	}
	if warnLines(&log) != 1 || !strings.Contains(log.String(), "mac="+otherMAC.String()) {
		t.Fatalf("log after the first conflict:\n%s", log.String())
	}
	r.wantState(vrrp.StateMaster)
	r.ops.take()

	// More evidence within conflictLogEvery is counted, not logged; the
	// episode goes on while it keeps coming.
	for range 5 {
		r.advance(time.Second)
		r.claim(netif.ClaimARPReply, vip, otherMAC)
	}
	r.wantConflicts(6)
	if warnLines(&log) != 1 {
		t.Fatalf("log not rate-limited:\n%s", log.String())
	}
	if got := r.ops.take(); count(got, "notify /bin/m") != 0 {
		t.Fatalf("re-announced while the conflict goes on: %q", got)
	}

	r.advance(conflictQuietAdverts*time.Second - time.Millisecond)
	if got := r.ops.take(); count(got, "notify /bin/m") != 0 {
		t.Fatalf("re-announced before the quiet period: %q", got)
	}
	r.advance(time.Millisecond)
	got := r.ops.take()
	if count(got, "garp 192.0.2.100") == 0 || count(got, "notify /bin/m") != 1 {
		t.Fatalf("after the quiet period: %q, want GARP and notify_master", got)
	}
	st = r.wantConflicts(6)
	if st.ConflictActive || st.ConflictReannounced != 1 {
		t.Fatalf("after the episode: %+v", st.ConflictStatus)
	}
	// A new episode is logged at once.
	r.advance(time.Second)
	r.claim(netif.ClaimNA, vip, otherMAC)
	if warnLines(&log) != 2 {
		t.Fatalf("second episode not logged:\n%s", log.String())
	}
}

// While BACKUP nothing is a conflict: the MASTER's GARPs are expected.
func TestConflictNotCountedWhileBackup(t *testing.T) {
	var log bytes.Buffer
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withClaims(&log)).start()
	r.wantState(vrrp.StateBackup)
	r.claim(netif.ClaimGARP, vip, otherMAC)
	r.hear(200)
	r.wantConflicts(0)
	if warnLines(&log) != 0 {
		t.Fatalf("log:\n%s", log.String())
	}
}

// A lower-priority MASTER's advert is a conflict and is answered at once
// with an advert (RFC 5798 §6.4.3 and keepalived), so that it yields; our
// own advert looped back is none.
func TestConflictLowerPriorityMaster(t *testing.T) {
	var log bytes.Buffer
	r := newRig(t, parse(t, instanceConf("VI", 7, noLowerPrioGARP)), "VI", nil, withClaims(&log)).becomeMaster()
	r.advance(time.Second)
	r.ops.take()
	r.in.handle(Datagram{Payload: r.advert(100, self), Src: self, Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255})
	r.wantConflicts(0)
	r.wantOps()
	r.hear(50)
	r.wantOps("send 100")
	r.wantState(vrrp.StateMaster)
	st := r.wantConflicts(1)
	if c := st.LastConflict; c.Kind != "advert" || c.Source != peer.String() || c.Priority != 50 || c.Yielded {
		t.Fatalf("last conflict %+v", c)
	}
	if !strings.Contains(log.String(), "source="+peer.String()) {
		t.Fatalf("log:\n%s", log.String())
	}
	r.advance(conflictQuietAdverts * time.Second)
	if got := r.ops.take(); count(got, "garp 192.0.2.100") == 0 || count(got, "notify /bin/m") != 1 {
		t.Fatalf("after the lower-priority MASTER yielded: %q", got)
	}
}

// A better MASTER's advert is counted too; we yield, and the episode ends
// without re-announcing (the winner does).
func TestConflictHigherPriorityMaster(t *testing.T) {
	var log bytes.Buffer
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withClaims(&log)).becomeMaster()
	r.hear(200)
	r.wantState(vrrp.StateBackup)
	if c := r.wantConflicts(1).LastConflict; !c.Yielded || c.Priority != 200 {
		t.Fatalf("last conflict %+v, want a yield to priority 200", c)
	}
	if warnLines(&log) != 0 || !strings.Contains(log.String(), "yielding") {
		t.Fatalf("a yield is logged as INFO, not as a split-brain WARN:\n%s", log.String())
	}
	r.ops.take()
	for range 4 {
		r.advance(time.Second)
		r.hear(200)
	}
	if got := r.ops.take(); count(got, "garp 192.0.2.100") != 0 || count(got, "notify /bin/m") != 0 {
		t.Fatalf("the loser re-announced: %q", got)
	}
	st := r.wantConflicts(1)
	if st.ConflictActive || st.ConflictReannounced != 0 {
		t.Fatalf("after yielding: %+v", st.ConflictStatus)
	}
}

// Claims-only episodes (the other node does not hear our adverts) would
// make both MASTERs re-announce in turn for ever: after the first, each
// re-announcement waits a doubling backoff, and is dropped if new
// evidence comes first. An episode settled by adverts re-announces at
// once and resets the backoff.
func TestConflictClaimsOnlyBackoff(t *testing.T) {
	var log bytes.Buffer
	r := newRig(t, parse(t, instanceConf("VI", 7, noLowerPrioGARP)), "VI", nil, withClaims(&log)).becomeMaster()
	quiet := conflictQuietAdverts * time.Second
	episode := func() []string {
		r.claim(netif.ClaimGARP, vip, otherMAC)
		r.ops.take()
		r.advance(quiet)
		return r.ops.take()
	}
	reannounced := func(got []string) bool {
		return count(got, "notify /bin/m") == 1 && count(got, "garp 192.0.2.100") > 0
	}
	if got := episode(); !reannounced(got) {
		t.Fatalf("first claims-only episode: %q, want a re-announcement at once", got)
	}
	for i, backoff := range []time.Duration{quiet, 2 * quiet, 4 * quiet} {
		if got := episode(); count(got, "notify /bin/m") != 0 {
			t.Fatalf("claims-only episode %d: %q, want the re-announcement owed", i+2, got)
		}
		r.advance(backoff - time.Millisecond)
		if got := r.ops.take(); count(got, "notify /bin/m") != 0 {
			t.Fatalf("episode %d: re-announced before the %v backoff: %q", i+2, backoff, got)
		}
		r.advance(time.Millisecond)
		if got := r.ops.take(); !reannounced(got) {
			t.Fatalf("episode %d: after the %v backoff: %q", i+2, backoff, got)
		}
	}
	// New evidence while a re-announcement is owed drops it.
	episode()
	r.advance(time.Second)
	r.claim(netif.ClaimGARP, vip, otherMAC)
	r.advance(quiet - time.Millisecond)
	if got := r.ops.take(); count(got, "notify /bin/m") != 0 {
		t.Fatalf("owed re-announcement made despite new evidence: %q", got)
	}
	// An episode settled by the election re-announces at once; the next
	// claims-only one does too.
	r.advance(20 * time.Second)
	r.ops.take()
	r.hear(50)
	r.advance(quiet)
	if got := r.ops.take(); !reannounced(got) {
		t.Fatalf("advert episode: %q", got)
	}
	if got := episode(); !reannounced(got) {
		t.Fatalf("claims-only episode after the election settled one: %q", got)
	}
	if st := r.wantConflicts(8); st.ConflictReannounced != 6 {
		t.Fatalf("re-announced %d times, want 6", st.ConflictReannounced)
	}
}

// fakeClaims returns its frames in order, then net.ErrClosed.
type fakeClaims struct {
	frames []fakeFrame
	done   chan struct{}
}

type fakeFrame struct {
	c   netif.Claim
	err error
}

func (f *fakeClaims) ReadClaim() (netif.Claim, error) {
	if len(f.frames) == 0 {
		close(f.done)
		return netif.Claim{}, net.ErrClosed
	}
	x := f.frames[0]
	f.frames = f.frames[1:]
	return x.c, x.err
}

// The watch goroutine posts the claims for our VIPs, counts the frames
// that did not decode and ends when the listener is closed.
func TestConflictWatchClaims(t *testing.T) {
	var log bytes.Buffer
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withClaims(&log)).becomeMaster()
	fc := &fakeClaims{done: make(chan struct{}), frames: []fakeFrame{
		{err: fmt.Errorf("%w: truncated", netif.ErrNotClaim)},
		{c: netif.Claim{Kind: netif.ClaimARPReply, Addr: netip.MustParseAddr("192.0.2.200"), MAC: otherMAC}},
		{c: netif.Claim{Kind: netif.ClaimARPReply, Addr: vip, MAC: otherMAC}},
	}}
	r.in.io.Claims.Reader = fc
	r.in.watchClaims()
	select {
	case <-fc.done:
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not read to the end")
	}
	r.pump()
	if st := r.wantConflicts(1); st.ClaimsUndecoded != 1 || st.LastConflict.Kind != "arp-reply" {
		t.Fatalf("status %+v", st.ConflictStatus)
	}
	if !strings.Contains(log.String(), "does not decode") {
		t.Fatalf("log:\n%s", log.String())
	}
}

// A preemption's overlap: the old MASTER's last advert arrives just after
// we took over (before it heard ours). It is counted, answered, and
// needs no re-announcement: our takeover's GARPs came after its own.
func TestConflictOverlapAfterTakeover(t *testing.T) {
	var log bytes.Buffer
	r := newRig(t, parse(t, instanceConf("VI", 7, noLowerPrioGARP)), "VI", nil, withClaims(&log)).becomeMaster()
	r.advance(100 * time.Millisecond)
	r.ops.take()
	r.hear(50)
	r.wantOps("send 100")
	r.advance(conflictQuietAdverts * time.Second)
	if got := r.ops.take(); count(got, "notify /bin/m") != 0 {
		t.Fatalf("re-announced after a preemption's overlap: %q", got)
	}
	if st := r.wantConflicts(1); st.ConflictActive || st.ConflictReannounced != 0 {
		t.Fatalf("status %+v", st.ConflictStatus)
	}
}
