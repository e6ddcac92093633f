package vrrp

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	us      = netip.MustParseAddr("192.168.12.11")
	peerLow = netip.MustParseAddr("192.168.12.5")  // lower address than us
	peerHi  = netip.MustParseAddr("192.168.12.20") // higher address than us
)

// clock drives a Machine the way the runtime does: a fake clock that
// delivers Timer events when the machine's Deadline passes.
type clock struct {
	t   *testing.T
	m   *Machine
	now time.Time
	log []stamped // every action, with when it happened
}

type stamped struct {
	at  time.Duration // since t0
	act Action
}

func newClock(t *testing.T, p Params) *clock {
	t.Helper()
	if p.Primary == (netip.Addr{}) {
		p.Primary = us
	}
	return &clock{t: t, m: NewMachine(p), now: t0}
}

// step delivers ev now and returns the actions.
func (c *clock) step(ev Event) []Action {
	acts := c.m.Step(c.now, ev)
	for _, a := range acts {
		c.log = append(c.log, stamped{c.now.Sub(t0), a})
	}
	return acts
}

// advance moves the clock by d, firing every timer that falls due on the
// way at its exact deadline.
func (c *clock) advance(d time.Duration) {
	end := c.now.Add(d)
	for {
		dl := c.m.Deadline()
		if dl.IsZero() || dl.After(end) {
			break
		}
		c.now = dl
		c.step(Timer{})
	}
	c.now = end
}

// newMaster returns a clock whose machine has started and become MASTER.
func newMaster(t *testing.T, p Params) *clock {
	t.Helper()
	c := newClock(t, p)
	c.step(Startup{})
	c.advance(c.m.MasterDownInterval())
	c.wantState(StateMaster)
	return c
}

// at returns the time since t0.
func (c *clock) at() time.Duration { return c.now.Sub(t0) }

func (c *clock) wantState(s State) {
	c.t.Helper()
	if got := c.m.State(); got != s {
		c.t.Fatalf("at %v: state %v, want %v", c.at(), got, s)
	}
}

func wantActions(t *testing.T, got []Action, want ...Action) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %#v, want %#v", got, want)
	}
}

func adv(version, prio uint8, interval time.Duration) AdvertReceived {
	return AdvertReceived{Advert: &Advert{Version: version, Type: 1, VRID: 51, Priority: prio, Interval: interval}, Src: peerLow}
}

func from(a AdvertReceived, src netip.Addr) AdvertReceived { a.Src = src; return a }

func params(version, prio uint8) Params {
	iv := time.Second
	return Params{Version: version, VRID: 51, Priority: prio, AdvertInterval: iv}
}

var versions = []uint8{Version2, Version3}

func TestSkewAndMasterDownInterval(t *testing.T) {
	tests := []struct {
		version  uint8
		prio     uint8
		interval time.Duration
		adverts  int
		skew     time.Duration
		mdi      time.Duration
	}{
		// v2: (256−prio)/256 s whatever the interval.
		{2, 100, time.Second, 0, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{2, 90, time.Second, 0, 648437 * time.Microsecond, 3648437 * time.Microsecond},
		{2, 254, 2 * time.Second, 0, 7812 * time.Microsecond, 6007812 * time.Microsecond},
		{2, 255, time.Second, 0, 3906 * time.Microsecond, 3003906 * time.Microsecond},
		{2, 100, time.Second, 5, 609375 * time.Microsecond, 5609375 * time.Microsecond},
		// v3: ((256−prio) × Master_Adver_Interval)/256.
		{3, 100, time.Second, 0, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{3, 100, 100 * time.Millisecond, 0, 60937 * time.Microsecond, 360937 * time.Microsecond},
		{3, 90, 100 * time.Millisecond, 0, 64843 * time.Microsecond, 364843 * time.Microsecond},
		{3, 1, 10 * time.Millisecond, 0, 9960 * time.Microsecond, 39960 * time.Microsecond},
	}
	for _, tt := range tests {
		p := params(tt.version, tt.prio)
		p.AdvertInterval = tt.interval
		p.DownTimerAdverts = tt.adverts
		m := NewMachine(p)
		if got := m.SkewTime(); got != tt.skew {
			t.Errorf("v%d prio %d int %v: skew %v, want %v", tt.version, tt.prio, tt.interval, got, tt.skew)
		}
		if got := m.MasterDownInterval(); got != tt.mdi {
			t.Errorf("v%d prio %d int %v adverts %d: Master_Down_Interval %v, want %v", tt.version, tt.prio, tt.interval, tt.adverts, got, tt.mdi)
		}
	}
}

// RFC 5798 §6.4.1: "If the Priority = 255 ... Send an ADVERTISEMENT ...
// Set the Adver_Timer to Advertisement_Interval ... transition to MASTER".
func TestInit_OwnerStartsMaster(t *testing.T) {
	for _, v := range versions {
		c := newClock(t, params(v, 255))
		wantActions(t, c.step(Startup{}), BecomeMaster{From: StateInit}, SendAdvert{Priority: 255})
		c.wantState(StateMaster)
		if got := c.m.Deadline(); !got.Equal(t0.Add(time.Second)) {
			t.Fatalf("v%d: Adver_Timer %v, want t0+1s", v, got.Sub(t0))
		}
		if c.m.MasterAddr() != us {
			t.Fatalf("v%d: MasterAddr %v, want us", v, c.m.MasterAddr())
		}
	}
}

// RFC 5798 §6.4.1 else branch: Master_Adver_Interval = Advertisement_Interval,
// Master_Down_Timer = Master_Down_Interval, transition to BACKUP. Keepalived
// 2.2.7 does the same for `state MASTER` below 255 (seen on the wire here:
// "Entering BACKUP STATE (init)", MASTER ~3.6 s later), and an owner
// configured `state BACKUP` starts as BACKUP.
func TestInit_NonOwnerStartsBackup(t *testing.T) {
	tests := []struct {
		name  string
		prio  uint8
		state State
	}{
		{"priority 100, no state", 100, StateInit},
		{"priority 100, state BACKUP", 100, StateBackup},
		{"priority 100, state MASTER", 100, StateMaster},
		{"priority 255, state BACKUP", 255, StateBackup},
	}
	for _, tt := range tests {
		for _, v := range versions {
			p := params(v, tt.prio)
			p.InitialState = tt.state
			c := newClock(t, p)
			wantActions(t, c.step(Startup{}), BecomeBackup{From: StateInit})
			c.wantState(StateBackup)
			want := t0.Add(3*time.Second + skewTime(v, tt.prio, time.Second))
			if !c.m.Deadline().Equal(want) {
				t.Fatalf("%s v%d: Master_Down_Timer at %v, want %v", tt.name, v, c.m.Deadline().Sub(t0), want.Sub(t0))
			}
		}
	}
}

// RFC 5798 §6.4.2: "If the Master_Down_Timer fires: Send an ADVERTISEMENT,
// broadcast gratuitous ARP, set the Adver_Timer, transition to MASTER".
func TestBackup_MasterDownTimerFires(t *testing.T) {
	for _, v := range versions {
		c := newClock(t, params(v, 100))
		c.step(Startup{})
		mdi := c.m.MasterDownInterval()
		c.advance(mdi - time.Nanosecond)
		c.wantState(StateBackup)
		if acts := c.m.Step(c.now, Timer{}); acts != nil {
			t.Fatalf("early timer acted: %v", acts)
		}
		c.advance(time.Nanosecond)
		c.wantState(StateMaster)
		last := c.log[len(c.log)-2:]
		wantActions(t, []Action{last[0].act, last[1].act}, BecomeMaster{From: StateBackup}, SendAdvert{Priority: 100})
		if last[0].at != mdi {
			t.Fatalf("v%d: MASTER at %v, want %v", v, last[0].at, mdi)
		}
	}
}

// RFC 5798 §6.4.2: "If the Priority in the ADVERTISEMENT is zero, then Set
// the Master_Down_Timer to Skew_Time".
func TestBackup_PriorityZeroTakeoverAfterSkew(t *testing.T) {
	for _, v := range versions {
		c := newClock(t, params(v, 90))
		c.step(Startup{})
		c.advance(500 * time.Millisecond)
		c.step(adv(v, 100, time.Second))
		c.advance(700 * time.Millisecond)
		c.step(adv(v, 0, time.Second))
		leave := c.at()
		c.advance(time.Second)
		c.wantState(StateMaster)
		var became time.Duration
		for _, s := range c.log {
			if _, ok := s.act.(BecomeMaster); ok {
				became = s.at
			}
		}
		if want := leave + skewTime(v, 90, time.Second); became != want {
			t.Fatalf("v%d: MASTER at %v, want %v (skew after the priority-0 advert)", v, became, want)
		}
		if c.m.Stats().PriorityZeroReceived != 1 {
			t.Fatalf("PriorityZeroReceived = %d", c.m.Stats().PriorityZeroReceived)
		}
	}
}

// RFC 5798 §6.4.2: "If Preempt_Mode is False, or if the Priority in the
// ADVERTISEMENT is greater than or equal to the local Priority: ... Reset
// the Master_Down_Timer to Master_Down_Interval".
func TestBackup_HigherOrEqualPriorityResetsDownTimer(t *testing.T) {
	for _, v := range versions {
		for _, prio := range []uint8{100, 150} { // equal, higher
			c := newClock(t, params(v, 100))
			c.step(Startup{})
			for range 10 { // a MASTER advertising every second keeps us BACKUP
				c.advance(time.Second)
				c.step(from(adv(v, prio, time.Second), peerLow))
			}
			c.wantState(StateBackup)
			if want := c.now.Add(c.m.MasterDownInterval()); !c.m.Deadline().Equal(want) {
				t.Fatalf("v%d prio %d: down timer %v, want %v", v, prio, c.m.Deadline().Sub(t0), want.Sub(t0))
			}
			if c.m.MasterAddr() != peerLow || c.m.MasterPriority() != prio {
				t.Fatalf("master %v/%d", c.m.MasterAddr(), c.m.MasterPriority())
			}
		}
	}
}

// RFC 5798 §6.4.2: "Set Master_Adver_Interval to Adver Interval contained
// in the ADVERTISEMENT; Recompute the Skew_Time; Recompute the
// Master_Down_Interval". VRRPv2 has no such rule (intervals must match).
func TestBackup_V3AdoptsMasterAdverInterval(t *testing.T) {
	tests := []struct {
		version uint8
		want    time.Duration
	}{
		{Version3, 100 * time.Millisecond},
		{Version2, time.Second},
	}
	for _, tt := range tests {
		c := newClock(t, params(tt.version, 90))
		c.step(Startup{})
		c.step(adv(tt.version, 100, 100*time.Millisecond))
		if got := c.m.MasterAdverInterval(); got != tt.want {
			t.Fatalf("v%d: Master_Adver_Interval %v, want %v", tt.version, got, tt.want)
		}
		wantMDI := 3*tt.want + skewTime(tt.version, 90, tt.want)
		if got := c.m.Deadline().Sub(t0); got != wantMDI {
			t.Fatalf("v%d: down timer %v, want %v", tt.version, got, wantMDI)
		}
		// Becoming MASTER, we advertise our own interval again.
		c.advance(wantMDI)
		c.wantState(StateMaster)
		if got := c.m.MasterAdverInterval(); got != time.Second {
			t.Fatalf("v%d: MASTER uses %v, want its own 1s", tt.version, got)
		}
	}
}

// RFC 5798 §6.4.2 else branch: a lower priority advert with Preempt_Mode
// True is discarded, so the Master_Down_Timer runs out and we preempt.
func TestBackup_PreemptDiscardsLowerPriority(t *testing.T) {
	for _, v := range versions {
		c := newClock(t, params(v, 100))
		c.step(Startup{})
		c.step(adv(v, 100, time.Second)) // equal: accepted, timer reset at t0
		for range 3 {
			c.advance(time.Second)
			c.step(adv(v, 90, time.Second)) // lower: discarded
		}
		c.advance(time.Second)
		c.wantState(StateMaster)
		var became time.Duration
		for _, s := range c.log {
			if _, ok := s.act.(BecomeMaster); ok {
				became = s.at
			}
		}
		if want := c.m.MasterDownInterval(); became != want {
			t.Fatalf("v%d: preempted at %v, want %v", v, became, want)
		}
	}
}

// nopreempt = Preempt_Mode False: lower priority adverts keep resetting the
// timer, so a higher priority BACKUP never takes over a working MASTER.
func TestBackup_NoPreemptAcceptsLowerPriority(t *testing.T) {
	for _, v := range versions {
		p := params(v, 100)
		p.NoPreempt = true
		c := newClock(t, p)
		c.step(Startup{})
		for range 30 {
			c.advance(time.Second)
			c.step(adv(v, 90, time.Second))
		}
		c.wantState(StateBackup)
		// Once the lower MASTER stops, we still take over.
		c.advance(c.m.MasterDownInterval())
		c.wantState(StateMaster)
	}
}

// `state MASTER` and priority 255 clear nopreempt and preempt_delay, as
// keepalived does with a warning.
func TestParams_MasterStateClearsNoPreempt(t *testing.T) {
	for _, p := range []Params{
		{Priority: 100, NoPreempt: true, PreemptDelay: time.Second, InitialState: StateMaster},
		{Priority: 255, NoPreempt: true, PreemptDelay: time.Second},
	} {
		got := NewMachine(p).p
		if got.NoPreempt || got.PreemptDelay != 0 {
			t.Errorf("%+v: NoPreempt %v PreemptDelay %v, want cleared", p, got.NoPreempt, got.PreemptDelay)
		}
		if got.DownTimerAdverts != DefaultDownTimerAdverts {
			t.Errorf("DownTimerAdverts default %d", got.DownTimerAdverts)
		}
	}
}

// preempt_delay: the first lower priority advert starts the delay; until it
// ends the MASTER is accepted, then its adverts are discarded and we take
// over one Master_Down_Interval later.
func TestBackup_PreemptDelay(t *testing.T) {
	for _, v := range versions {
		p := params(v, 100)
		p.PreemptDelay = 10 * time.Second
		c := newClock(t, p)
		c.step(Startup{})
		c.advance(time.Second)
		c.step(adv(v, 90, time.Second)) // delay starts at 1s, ends at 11s
		for c.m.State() == StateBackup && c.at() < time.Minute {
			c.advance(time.Second)
			c.step(adv(v, 90, time.Second))
		}
		c.wantState(StateMaster)
		// The last advert accepted is the one at 10s; MDI later we preempt.
		want := 10*time.Second + c.m.MasterDownInterval()
		var became time.Duration
		for _, s := range c.log {
			if _, ok := s.act.(BecomeMaster); ok {
				became = s.at
			}
		}
		if became != want {
			t.Fatalf("v%d: preempted at %v, want %v", v, became, want)
		}
	}
}

// A higher priority advert during the delay cancels it: the delay starts
// over at the next lower priority advert.
func TestBackup_PreemptDelayCancelledByHigherPriority(t *testing.T) {
	p := params(Version3, 100)
	p.PreemptDelay = 5 * time.Second
	c := newClock(t, p)
	c.step(Startup{})
	c.step(adv(Version3, 90, time.Second)) // delay until 5s
	c.advance(3 * time.Second)
	c.step(adv(Version3, 110, time.Second)) // cancel
	c.advance(3 * time.Second)
	c.step(adv(Version3, 90, time.Second)) // at 6s: restart, until 11s
	c.advance(time.Second)
	c.step(adv(Version3, 90, time.Second)) // 7s: still delaying, accepted
	c.wantState(StateBackup)
	if want := c.now.Add(c.m.MasterDownInterval()); !c.m.Deadline().Equal(want) {
		t.Fatalf("advert during restarted delay not accepted: deadline %v want %v", c.m.Deadline().Sub(t0), want.Sub(t0))
	}
}

// RFC 5798 §6.4.2: "If a Shutdown event is received, then: Cancel the
// Master_Down_Timer; Transition to the {Initialize} state".
func TestBackup_Shutdown(t *testing.T) {
	for _, v := range versions {
		c := newClock(t, params(v, 100))
		c.step(Startup{})
		wantActions(t, c.step(Shutdown{}), Stop{From: StateBackup})
		c.wantState(StateInit)
		if !c.m.Deadline().IsZero() {
			t.Fatal("Master_Down_Timer still running")
		}
		c.advance(time.Hour)
		c.wantState(StateInit)
	}
}

// RFC 5798 §6.4.3: "If the Adver_Timer fires: Send an ADVERTISEMENT; Reset
// the Adver_Timer to Advertisement_Interval".
func TestMaster_AdverTimerFires(t *testing.T) {
	for _, v := range versions {
		c := newClock(t, params(v, 255))
		c.step(Startup{})
		c.advance(10*time.Second + 500*time.Millisecond)
		var sent []time.Duration
		for _, s := range c.log {
			if sa, ok := s.act.(SendAdvert); ok && sa.Priority == 255 {
				sent = append(sent, s.at)
			}
		}
		if len(sent) != 11 {
			t.Fatalf("v%d: %d adverts, want 11: %v", v, len(sent), sent)
		}
		for i, at := range sent {
			if at != time.Duration(i)*time.Second {
				t.Fatalf("v%d: advert %d at %v", v, i, at)
			}
		}
		if c.m.Stats().AdvertsSent != 11 {
			t.Fatalf("AdvertsSent = %d", c.m.Stats().AdvertsSent)
		}
	}
}

// RFC 5798 §6.4.3: "If the Priority in the ADVERTISEMENT is zero, then:
// Send an ADVERTISEMENT; Reset the Adver_Timer".
func TestMaster_PriorityZeroSendsAdvert(t *testing.T) {
	for _, v := range versions {
		c := newClock(t, params(v, 255))
		c.step(Startup{})
		c.advance(300 * time.Millisecond)
		wantActions(t, c.step(adv(v, 0, time.Second)), SendAdvert{Priority: 255})
		c.wantState(StateMaster)
		if want := c.now.Add(time.Second); !c.m.Deadline().Equal(want) {
			t.Fatalf("Adver_Timer not reset: %v", c.m.Deadline().Sub(t0))
		}
	}
}

// RFC 5798 §6.4.3: "If the Priority in the ADVERTISEMENT is greater than the
// local Priority, or ... equal ... and the primary IPvX Address of the
// sender is greater than the local primary IPvX Address: Cancel Adver_Timer;
// Set Master_Adver_Interval ...; Transition to the {Backup} state".
func TestMaster_HigherPriorityOrAddressYields(t *testing.T) {
	tests := []struct {
		name string
		prio uint8
		src  netip.Addr
	}{
		{"higher priority, lower address", 110, peerLow},
		{"equal priority, higher address", 100, peerHi},
	}
	for _, tt := range tests {
		for _, v := range versions {
			c := newClock(t, params(v, 100))
			c.step(Startup{})
			c.advance(c.m.MasterDownInterval())
			c.wantState(StateMaster)
			interval := time.Second
			if v == Version3 {
				interval = 200 * time.Millisecond
			}
			wantActions(t, c.step(from(adv(v, tt.prio, interval), tt.src)), BecomeBackup{From: StateMaster})
			c.wantState(StateBackup)
			if c.m.MasterAdverInterval() != interval {
				t.Fatalf("%s v%d: Master_Adver_Interval %v, want %v", tt.name, v, c.m.MasterAdverInterval(), interval)
			}
			if want := c.now.Add(c.m.MasterDownInterval()); !c.m.Deadline().Equal(want) {
				t.Fatalf("%s v%d: timer %v, want Master_Down_Timer %v", tt.name, v, c.m.Deadline().Sub(t0), want.Sub(t0))
			}
			if c.m.MasterAddr() != tt.src {
				t.Fatalf("MasterAddr %v", c.m.MasterAddr())
			}
			if s := c.m.Stats(); s.BecameMaster != 1 || s.ReleasedMaster != 1 {
				t.Fatalf("stats %+v", s)
			}
		}
	}
}

// RFC 5798 §6.4.3 else branch ("Discard the ADVERTISEMENT"): keepalived
// (lower_prio_no_advert off, its default) answers a lower priority MASTER
// with an advert at once so it steps down, restarts its Adver_Timer (it
// has just advertised) and raises MASTER_RX_LOWER_PRI; we stay MASTER
// either way.
func TestMaster_LowerPriorityOrAddressStaysMaster(t *testing.T) {
	tests := []struct {
		name string
		prio uint8
		src  netip.Addr
	}{
		{"lower priority, higher address", 90, peerHi},
		{"equal priority, lower address", 100, peerLow},
	}
	for _, tt := range tests {
		for _, v := range versions {
			c := newClock(t, params(v, 100))
			c.step(Startup{})
			c.advance(c.m.MasterDownInterval())
			c.advance(300 * time.Millisecond)
			wantActions(t, c.step(from(adv(v, tt.prio, time.Second), tt.src)),
				SendAdvert{Priority: 100}, MasterRxLowerPri{Src: tt.src, Priority: tt.prio})
			c.wantState(StateMaster)
			if want := c.now.Add(time.Second); !c.m.Deadline().Equal(want) {
				t.Fatalf("%s: Adver_Timer %v, want restarted at %v", tt.name, c.m.Deadline().Sub(t0), want.Sub(t0))
			}
		}
	}
}

// lower_prio_no_advert (vrrp_strict's default): a lower priority advert is
// not answered and leaves the Adver_Timer where it was, but is still a
// MASTER_RX_LOWER_PRI event; a priority-0 advert is still answered, and
// the timer not restarted either (keepalived 2.2.7's read dispatcher).
func TestMaster_LowerPrioNoAdvert(t *testing.T) {
	for _, v := range versions {
		p := params(v, 100)
		p.LowerPrioNoAdvert = true
		c := newMaster(t, p)
		c.advance(300 * time.Millisecond)
		deadline := c.m.Deadline()
		wantActions(t, c.step(from(adv(v, 90, time.Second), peerHi)), MasterRxLowerPri{Src: peerHi, Priority: 90})
		c.wantState(StateMaster)
		if !c.m.Deadline().Equal(deadline) {
			t.Fatalf("v%d: Adver_Timer moved to %v", v, c.m.Deadline().Sub(t0))
		}
		wantActions(t, c.step(adv(v, 0, time.Second)), SendAdvert{Priority: 100})
		if !c.m.Deadline().Equal(deadline) {
			t.Fatalf("v%d: Adver_Timer moved by priority 0 to %v", v, c.m.Deadline().Sub(t0))
		}
		// The regular adverts go on at their schedule.
		before := c.m.Stats().AdvertsSent
		c.advance(deadline.Sub(c.now))
		if got := c.m.Stats().AdvertsSent - before; got != 1 {
			t.Fatalf("v%d: %d adverts at the Adver_Timer, want 1", v, got)
		}
	}
}

// higher_prio_send_advert: a MASTER that hears a better advert sends one
// advert, then becomes BACKUP; off (the default), it yields silently. An
// address owner hearing another owner steps down to 254 and yields (sending
// first only when the other's address is higher: the send check comes
// before the step down, as in keepalived).
func TestMaster_HigherPrioSendAdvert(t *testing.T) {
	tests := []struct {
		name   string
		prio   uint8 // ours
		heard  uint8
		src    netip.Addr
		on     bool
		sends  bool
		yields bool
	}{
		{"higher priority, on", 100, 110, peerLow, true, true, true},
		{"equal priority, higher address, on", 100, 100, peerHi, true, true, true},
		{"higher priority, off", 100, 110, peerLow, false, false, true},
		{"lower priority, on: answered as lower", 100, 90, peerHi, true, true, false},
		{"two owners, higher address, on", 255, 255, peerHi, true, true, true},
		{"two owners, lower address, on", 255, 255, peerLow, true, false, true},
	}
	for _, tt := range tests {
		for _, v := range versions {
			p := params(v, tt.prio)
			p.HigherPrioSendAdvert = tt.on
			c := newMaster(t, p)
			var want []Action
			if tt.sends {
				want = append(want, SendAdvert{Priority: tt.prio})
			}
			if tt.yields {
				want = append(want, BecomeBackup{From: StateMaster})
			} else {
				want = append(want, MasterRxLowerPri{Src: tt.src, Priority: tt.heard})
			}
			wantActions(t, c.step(from(adv(v, tt.heard, time.Second), tt.src)), want...)
			if tt.yields {
				c.wantState(StateBackup)
			} else {
				c.wantState(StateMaster)
			}
		}
	}
}

// RFC 5798 §6.4.3: "If a Shutdown event is received, then: Cancel the
// Adver_Timer; Send an ADVERTISEMENT with Priority = 0; Transition to the
// {Initialize} state".
func TestMaster_ShutdownSendsPriorityZero(t *testing.T) {
	for _, v := range versions {
		c := newClock(t, params(v, 255))
		c.step(Startup{})
		wantActions(t, c.step(Shutdown{}), SendAdvert{Priority: 0}, Stop{From: StateMaster})
		c.wantState(StateInit)
		if !c.m.Deadline().IsZero() {
			t.Fatal("Adver_Timer still running")
		}
		if s := c.m.Stats(); s.PriorityZeroSent != 1 || s.ReleasedMaster != 1 {
			t.Fatalf("stats %+v", s)
		}
		// A restart (reload) runs the election again.
		wantActions(t, c.step(Startup{}), BecomeMaster{From: StateInit}, SendAdvert{Priority: 255})
	}
}

// Graceful failover end to end between two machines: MASTER shutdown →
// priority 0 → BACKUP is MASTER Skew_Time later.
func TestTwoMachines_GracefulFailover(t *testing.T) {
	for _, v := range versions {
		a := newClock(t, Params{Version: v, VRID: 51, Priority: 100, AdvertInterval: time.Second, Primary: peerHi})
		b := newClock(t, Params{Version: v, VRID: 51, Priority: 90, AdvertInterval: time.Second, Primary: peerLow})
		a.step(Startup{})
		b.step(Startup{})
		// Deliver a's adverts to b while both run for 10 s.
		seen := 0
		for range 1000 {
			a.advance(10 * time.Millisecond)
			b.advance(10 * time.Millisecond)
			for _, s := range a.log[seen:] {
				if sa, ok := s.act.(SendAdvert); ok {
					b.step(AdvertReceived{Advert: &Advert{Version: v, Type: 1, VRID: 51, Priority: sa.Priority, Interval: time.Second}, Src: peerHi})
				}
			}
			seen = len(a.log)
		}
		a.wantState(StateMaster)
		b.wantState(StateBackup)
		for _, s := range a.step(Shutdown{}) {
			if sa, ok := s.(SendAdvert); ok {
				b.step(AdvertReceived{Advert: &Advert{Version: v, Type: 1, VRID: 51, Priority: sa.Priority, Interval: time.Second}, Src: peerHi})
			}
		}
		stop := b.at()
		b.advance(time.Second)
		b.wantState(StateMaster)
		var became time.Duration
		for _, s := range b.log {
			if _, ok := s.act.(BecomeMaster); ok {
				became = s.at
			}
		}
		if became-stop != skewTime(v, 90, time.Second) {
			t.Fatalf("v%d: takeover %v after stop, want skew %v", v, became-stop, skewTime(v, 90, time.Second))
		}
	}
}

func TestFault(t *testing.T) {
	tests := []struct {
		name      string
		prio      uint8
		before    State // state when the interface goes down
		downActs  []Action
		upActs    []Action
		afterUpSt State
	}{
		{"BACKUP", 100, StateBackup, []Action{BecomeFault{From: StateBackup}}, []Action{BecomeBackup{From: StateFault}}, StateBackup},
		{"MASTER", 100, StateMaster, []Action{SendAdvert{Priority: 0}, BecomeFault{From: StateMaster}}, []Action{BecomeBackup{From: StateFault}}, StateBackup},
		{"owner", 255, StateMaster, []Action{SendAdvert{Priority: 0}, BecomeFault{From: StateMaster}}, []Action{BecomeMaster{From: StateFault}, SendAdvert{Priority: 255}}, StateMaster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock(t, params(Version2, tt.prio))
			c.step(Startup{})
			if tt.before == StateMaster {
				c.advance(c.m.MasterDownInterval())
			}
			c.wantState(tt.before)
			wantActions(t, c.step(InterfaceDown{}), tt.downActs...)
			c.wantState(StateFault)
			wantActions(t, c.step(InterfaceDown{})) // repeated edge: nothing
			// In FAULT: no timers, adverts ignored.
			if !c.m.Deadline().IsZero() {
				t.Fatal("timer running in FAULT")
			}
			wantActions(t, c.step(adv(Version2, 0, time.Second)))
			c.advance(time.Minute)
			c.wantState(StateFault)
			wantActions(t, c.step(InterfaceUp{}), tt.upActs...)
			c.wantState(tt.afterUpSt)
			if tt.afterUpSt == StateBackup {
				if want := c.now.Add(c.m.MasterDownInterval()); !c.m.Deadline().Equal(want) {
					t.Fatal("BACKUP after FAULT without Master_Down_Timer")
				}
			}
		})
	}
}

// An interface already down at startup: Startup goes straight to FAULT.
func TestFault_DownBeforeStartup(t *testing.T) {
	c := newClock(t, params(Version3, 100))
	wantActions(t, c.step(InterfaceDown{}))
	c.wantState(StateInit)
	wantActions(t, c.step(Startup{}), BecomeFault{From: StateInit})
	wantActions(t, c.step(InterfaceUp{}), BecomeBackup{From: StateFault})
}

func TestPriorityChanged(t *testing.T) {
	t.Run("BACKUP moves its down timer by the skew change", func(t *testing.T) {
		c := newClock(t, params(Version2, 100))
		c.step(Startup{})
		before := c.m.Deadline()
		c.step(PriorityChanged{New: 200})
		want := before.Add(skewTime(Version2, 200, time.Second) - skewTime(Version2, 100, time.Second))
		if !c.m.Deadline().Equal(want) {
			t.Fatalf("deadline %v, want %v", c.m.Deadline().Sub(t0), want.Sub(t0))
		}
		// Now higher than the MASTER: its adverts are discarded → preempt.
		c.step(adv(Version2, 150, time.Second))
		c.advance(c.m.MasterDownInterval())
		c.wantState(StateMaster)
	})
	t.Run("MASTER advertises the new priority", func(t *testing.T) {
		c := newClock(t, params(Version2, 255))
		c.step(Startup{})
		c.step(PriorityChanged{New: 80})
		c.advance(time.Second)
		if got := c.log[len(c.log)-1].act; got != (SendAdvert{Priority: 80}) {
			t.Fatalf("last action %#v", got)
		}
		// A BACKUP at 100 now wins.
		wantActions(t, c.step(adv(Version2, 100, time.Second)), BecomeBackup{From: StateMaster})
	})
}

// Two address owners: keepalived reports a configuration error and steps
// down to 254 so the election settles on the higher address.
func TestMaster_TwoOwners(t *testing.T) {
	c := newClock(t, params(Version3, 255))
	c.step(Startup{})
	wantActions(t, c.step(from(adv(Version3, 255, time.Second), peerHi)), BecomeBackup{From: StateMaster})
	if c.m.Priority() != 254 {
		t.Fatalf("priority %d, want 254", c.m.Priority())
	}
}

// Our own advert looped back (same priority, same address) changes nothing.
func TestMaster_OwnAdvertIgnored(t *testing.T) {
	c := newClock(t, params(Version3, 255))
	c.step(Startup{})
	wantActions(t, c.step(from(adv(Version3, 255, time.Second), us)))
	c.wantState(StateMaster)
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateInit: "INIT", StateBackup: "BACKUP", StateMaster: "MASTER", StateFault: "FAULT", 9: "State(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q want %q", s, s.String(), want)
		}
	}
}

// MasterCause names why the machine became MASTER: the owner at startup,
// no MASTER heard, the MASTER's adverts stopping, a priority-0 advert,
// preemption of a lower priority MASTER, the sync group.
func TestMasterCause(t *testing.T) {
	wantCause := func(c *clock, want string) {
		t.Helper()
		c.wantState(StateMaster)
		if got := c.m.MasterCause(); got != want {
			t.Fatalf("cause %q, want %q", got, want)
		}
	}
	c := newClock(t, params(3, 255))
	c.step(Startup{})
	wantCause(c, CauseOwner)

	c = newClock(t, params(3, 100))
	c.step(Startup{})
	c.advance(4 * time.Second)
	wantCause(c, CauseNoMaster)

	c = newClock(t, params(3, 100))
	c.step(Startup{})
	c.step(adv(3, 200, time.Second))
	c.advance(4 * time.Second)
	wantCause(c, CauseMasterDown)

	c = newClock(t, params(3, 100))
	c.step(Startup{})
	c.step(adv(3, 200, time.Second))
	c.step(adv(3, 0, time.Second))
	c.advance(time.Second)
	wantCause(c, CausePriorityZero)

	c = newClock(t, params(3, 100))
	c.step(Startup{})
	for range 4 {
		c.step(adv(3, 50, time.Second))
		c.advance(time.Second)
	}
	wantCause(c, CausePreempt)

	c = newClock(t, params(3, 100))
	c.step(Startup{})
	c.step(SyncMaster{})
	wantCause(c, CauseSyncGroup)
}
