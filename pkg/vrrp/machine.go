package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP instance state (RFC 5798 §6.4, plus keepalived's FAULT).
type State uint8

// States. The zero value is INIT.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// DefaultDownTimerAdverts is the number of adverts a BACKUP misses before
// it declares the MASTER down (RFC 5798 §6.1; keepalived down_timer_adverts).
const DefaultDownTimerAdverts = 3

// Params configure a Machine. The zero value of every field is keepalived's
// default, so NoPreempt replaces a Preempt flag that would default to true.
type Params struct {
	Version        uint8         // 2 or 3
	VRID           uint8         // virtual_router_id
	Priority       uint8         // effective priority at start (1..255); 255 = address owner
	AdvertInterval time.Duration // advert_int
	NoPreempt      bool          // nopreempt: a higher priority BACKUP does not take over a working MASTER
	// PreemptDelay (preempt_delay): when a BACKUP first hears a lower
	// priority MASTER it keeps accepting its adverts for this long before it
	// preempts. Higher or equal priority adverts cancel the delay.
	PreemptDelay     time.Duration
	DownTimerAdverts int        // down_timer_adverts; 0 means DefaultDownTimerAdverts
	Primary          netip.Addr // our source address, for equal-priority tie-breaks
	// InitialState is the configured `state`: StateInit (unset), StateBackup
	// or StateMaster. As in keepalived 2.2, only an address owner (priority
	// 255) that is not configured `state BACKUP` starts as MASTER; any other
	// instance, `state MASTER` included, starts as BACKUP and becomes MASTER
	// when its Master_Down_Timer expires. `state MASTER` also clears
	// nopreempt and preempt_delay (keepalived warns and does the same).
	InitialState State
	// LowerPrioNoAdvert (lower_prio_no_advert): a MASTER does not answer
	// a lower priority advert with one of its own (and, as keepalived, its
	// Adver_Timer is then not restarted by adverts it receives).
	// vrrp_strict turns it on.
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert (higher_prio_send_advert): a MASTER that hears
	// a higher priority advert (or an equal one from a higher address)
	// sends one advert before it becomes BACKUP.
	HigherPrioSendAdvert bool
}

// Event is an input to Machine.Step.
type Event interface{ isEvent() }

// Events.
type (
	// Startup leaves INIT (RFC 5798 §6.4.1).
	Startup struct{}
	// AdvertReceived is an advert that passed Decode and RecvConfig.Validate,
	// from Src (the IP source address).
	AdvertReceived struct {
		Advert *Advert
		Src    netip.Addr
	}
	// Timer says the machine's Deadline has passed. Early timers are ignored.
	Timer struct{}
	// PriorityChanged carries a new effective priority (from Tracker).
	PriorityChanged struct{ New uint8 }
	// InterfaceDown starts a fault (interface down, or an unweighted
	// tracked interface or script failing): the instance goes to FAULT.
	InterfaceDown struct{}
	// InterfaceUp ends the fault.
	InterfaceUp struct{}
	// Shutdown stops the instance (daemon exit, instance removed at reload).
	Shutdown struct{}
	// SyncMaster: another member of our vrrp_sync_group became MASTER; a
	// BACKUP follows it at once (see SyncGroupFollow).
	SyncMaster struct{}
	// SyncBackup: another member of our vrrp_sync_group became BACKUP; a
	// MASTER follows it and starts its Master_Down_Timer.
	SyncBackup struct{}
)

func (Startup) isEvent()         {}
func (AdvertReceived) isEvent()  {}
func (Timer) isEvent()           {}
func (PriorityChanged) isEvent() {}
func (InterfaceDown) isEvent()   {}
func (InterfaceUp) isEvent()     {}
func (Shutdown) isEvent()        {}
func (SyncMaster) isEvent()      {}
func (SyncBackup) isEvent()      {}

// Action is an output of Machine.Step for the runtime to carry out, in
// order.
type Action interface{ isAction() }

// Actions.
type (
	// SendAdvert: send an advert with this priority (0 when leaving).
	SendAdvert struct{ Priority uint8 }
	// BecomeMaster: add the VIPs, send gratuitous ARP / unsolicited NA,
	// run notify_master.
	BecomeMaster struct{ From State }
	// BecomeBackup: remove the VIPs if From is MASTER, run notify_backup.
	BecomeBackup struct{ From State }
	// BecomeFault: remove the VIPs if From is MASTER, run notify_fault.
	BecomeFault struct{ From State }
	// Stop: remove the VIPs if From is MASTER, run notify_stop. The
	// machine is back in INIT.
	Stop struct{ From State }
	// MasterRxLowerPri: the MASTER heard a lower priority advert (or an
	// equal one from a lower address) from Src and stays MASTER
	// (keepalived's VRRP_EVENT_MASTER_RX_LOWER_PRI): send the
	// garp_lower_prio_repeat rounds of gratuitous ARP / NA (now, and again
	// garp_lower_prio_delay later), the same for the sync group's members,
	// and run notify_master_rx_lower_pri.
	MasterRxLowerPri struct {
		Src      netip.Addr
		Priority uint8
	}
)

func (SendAdvert) isAction()       {}
func (BecomeMaster) isAction()     {}
func (BecomeBackup) isAction()     {}
func (BecomeFault) isAction()      {}
func (Stop) isAction()             {}
func (MasterRxLowerPri) isAction() {}

// Causes of becoming MASTER, as Machine.MasterCause names them.
const (
	// CauseOwner: the address owner (priority 255) starts, or leaves
	// FAULT, as MASTER.
	CauseOwner = "owner"
	// CauseNoMaster: the Master_Down_Timer ran out with no MASTER heard
	// since entering BACKUP (startup, end of a fault).
	CauseNoMaster = "no_master"
	// CauseMasterDown: the Master_Down_Timer ran out after the MASTER had
	// been heard: its adverts stopped.
	CauseMasterDown = "master_down"
	// CausePriorityZero: the MASTER left with a priority-0 advert.
	CausePriorityZero = "priority_zero"
	// CausePreempt: the MASTER advertised a lower priority than ours, so
	// its adverts were discarded and the timer ran out (preemption).
	CausePreempt = "preempt"
	// CauseSyncGroup: another member of the vrrp_sync_group became MASTER.
	CauseSyncGroup = "sync_group"
)

// Stats are the machine's counters.
type Stats struct {
	AdvertsReceived      uint64 // adverts stepped in
	AdvertsSent          uint64 // SendAdvert actions, priority 0 included
	PriorityZeroReceived uint64
	PriorityZeroSent     uint64
	BecameMaster         uint64
	ReleasedMaster       uint64
	Transitions          uint64 // state changes, INIT → BACKUP included
}

// Machine is the election state machine of one VRRP instance. It is pure:
// Step takes the current time from the caller, and Deadline says when the
// caller must step it with a Timer event. It is not safe for concurrent
// use.
type Machine struct {
	p        Params
	priority uint8 // effective priority
	state    State

	masterAdverInt time.Duration // v3: the MASTER's interval while BACKUP
	deadline       time.Time     // Master_Down_Timer (BACKUP) or Adver_Timer (MASTER)
	preemptAt      time.Time     // end of a running preempt delay; zero = none
	fault          bool          // between InterfaceDown and InterfaceUp

	masterAddr     netip.Addr
	masterPriority uint8
	stats          Stats
	// downCause is what the running Master_Down_Timer running out would
	// mean; masterCause is why the machine last became MASTER.
	downCause, masterCause string
}

// NewMachine returns a machine in INIT. Step it with Startup.
func NewMachine(p Params) *Machine {
	if p.DownTimerAdverts <= 0 {
		p.DownTimerAdverts = DefaultDownTimerAdverts
	}
	if p.Priority == 0 {
		p.Priority = 1
	}
	if p.InitialState == StateMaster || p.Priority == PriorityOwner {
		p.NoPreempt = false
		p.PreemptDelay = 0
	}
	return &Machine{p: p, priority: p.Priority, masterAdverInt: p.AdvertInterval}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority.
func (m *Machine) Priority() uint8 { return m.priority }

// Deadline returns when the runtime must deliver a Timer event; zero means
// no timer is running.
func (m *Machine) Deadline() time.Time { return m.deadline }

// MasterAddr returns the current MASTER's address: ours while MASTER, the
// last advertising MASTER's while BACKUP, invalid otherwise.
func (m *Machine) MasterAddr() netip.Addr {
	switch m.state {
	case StateMaster:
		return m.p.Primary
	case StateBackup:
		return m.masterAddr
	}
	return netip.Addr{}
}

// MasterPriority returns the priority of the last advert accepted from the
// MASTER while BACKUP (ours while MASTER).
func (m *Machine) MasterPriority() uint8 {
	if m.state == StateMaster {
		return m.priority
	}
	return m.masterPriority
}

// MasterAdverInterval returns Master_Adver_Interval: in VRRPv3 BACKUP state
// the MASTER's advertised interval, otherwise ours.
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterAdverInt }

// Stats returns the counters.
func (m *Machine) Stats() Stats { return m.stats }

// MasterCause is why the machine last became MASTER (one of the Cause
// constants), empty if it never did.
func (m *Machine) MasterCause() string { return m.masterCause }

// SkewTime returns Skew_Time for the current priority: (256−Priority)/256 s
// in VRRPv2 (RFC 3768 §6.1), ((256−Priority) × Master_Adver_Interval)/256 in
// VRRPv3 (RFC 5798 §6.1), with keepalived's integer microsecond rounding.
func (m *Machine) SkewTime() time.Duration {
	return skewTime(m.p.Version, m.priority, m.masterAdverInt)
}

func skewTime(version, priority uint8, masterAdverInt time.Duration) time.Duration {
	weight := int64(256 - int(priority))
	if version == Version3 {
		cs := int64(masterAdverInt / (10 * time.Millisecond))
		// 10000 µs per cs / 256 = 625/16.
		return time.Duration(weight*cs*625/16) * time.Microsecond
	}
	return time.Duration(weight*1_000_000/256) * time.Microsecond
}

// MasterDownInterval returns DownTimerAdverts × Master_Adver_Interval +
// Skew_Time.
func (m *Machine) MasterDownInterval() time.Duration {
	return time.Duration(m.p.DownTimerAdverts)*m.masterAdverInt + m.SkewTime()
}

// startsMaster reports whether the instance is the address owner and starts as
// MASTER (keepalived: owner and not configured `state BACKUP`).
func (m *Machine) startsMaster() bool {
	return m.priority == PriorityOwner && m.p.InitialState != StateBackup
}

// Step feeds one event at time now and returns what the runtime must do.
func (m *Machine) Step(now time.Time, ev Event) []Action {
	switch ev := ev.(type) {
	case Startup:
		return m.startup(now)
	case AdvertReceived:
		return m.advert(now, ev.Advert, ev.Src)
	case Timer:
		return m.timer(now)
	case PriorityChanged:
		return m.priorityChanged(now, ev.New)
	case InterfaceDown:
		return m.interfaceDown()
	case InterfaceUp:
		return m.interfaceUp(now)
	case Shutdown:
		return m.shutdown()
	case SyncMaster:
		if m.state == StateBackup {
			return m.becomeMaster(now, CauseSyncGroup)
		}
	case SyncBackup:
		if m.state == StateMaster {
			return m.becomeBackup(now)
		}
	}
	return nil
}

func (m *Machine) startup(now time.Time) []Action {
	if m.state != StateInit {
		return nil
	}
	if m.fault {
		return m.enterFault()
	}
	return m.up(now)
}

// up leaves INIT or FAULT (RFC 5798 §6.4.1).
func (m *Machine) up(now time.Time) []Action {
	m.masterAdverInt = m.p.AdvertInterval
	if m.startsMaster() {
		return m.becomeMaster(now, CauseOwner)
	}
	return m.becomeBackup(now)
}

func (m *Machine) send(prio uint8) Action {
	m.stats.AdvertsSent++
	if prio == PriorityStop {
		m.stats.PriorityZeroSent++
	}
	return SendAdvert{Priority: prio}
}

func (m *Machine) setState(s State) State {
	from := m.state
	if from != s {
		m.stats.Transitions++
	}
	if from == StateMaster && s != StateMaster {
		m.stats.ReleasedMaster++
	}
	m.state = s
	return from
}

// becomeMaster: add VIPs and announce them, send an advert, start the
// Adver_Timer (RFC 5798 §6.4.1 / §6.4.2 "Master_Down_Timer fires").
func (m *Machine) becomeMaster(now time.Time, cause string) []Action {
	from := m.setState(StateMaster)
	m.stats.BecameMaster++
	m.masterCause = cause
	m.masterAdverInt = m.p.AdvertInterval
	m.preemptAt = time.Time{}
	m.deadline = now.Add(m.p.AdvertInterval)
	return []Action{BecomeMaster{From: from}, m.send(m.priority)}
}

// becomeBackup: start the Master_Down_Timer at Master_Down_Interval.
func (m *Machine) becomeBackup(now time.Time) []Action {
	from := m.setState(StateBackup)
	m.preemptAt = time.Time{}
	m.deadline = now.Add(m.MasterDownInterval())
	m.downCause = CauseNoMaster
	return []Action{BecomeBackup{From: from}}
}

func (m *Machine) enterFault() []Action {
	var acts []Action
	if m.state == StateMaster {
		acts = append(acts, m.send(PriorityStop))
	}
	from := m.setState(StateFault)
	m.deadline = time.Time{}
	m.preemptAt = time.Time{}
	return append(acts, BecomeFault{From: from})
}

func (m *Machine) timer(now time.Time) []Action {
	if m.deadline.IsZero() || now.Before(m.deadline) {
		return nil
	}
	switch m.state {
	case StateBackup:
		// RFC 5798 §6.4.2: Master_Down_Timer fires → MASTER.
		return m.becomeMaster(now, m.downCause)
	case StateMaster:
		// RFC 5798 §6.4.3: Adver_Timer fires → send, restart.
		m.deadline = now.Add(m.p.AdvertInterval)
		return []Action{m.send(m.priority)}
	}
	return nil
}

func (m *Machine) advert(now time.Time, a *Advert, src netip.Addr) []Action {
	if a == nil || (m.state != StateBackup && m.state != StateMaster) {
		return nil
	}
	m.stats.AdvertsReceived++
	if a.Priority == PriorityStop {
		m.stats.PriorityZeroReceived++
	}
	if m.state == StateBackup {
		m.backupAdvert(now, a, src)
		return nil
	}
	return m.masterAdvert(now, a, src)
}

// backupAdvert is RFC 5798 §6.4.2 "If an ADVERTISEMENT is received", with
// keepalived's preempt_delay.
func (m *Machine) backupAdvert(now time.Time, a *Advert, src netip.Addr) {
	m.masterAddr = src.Unmap()
	if a.Priority == PriorityStop {
		// The MASTER is leaving: take over after Skew_Time.
		m.deadline = now.Add(m.SkewTime())
		m.downCause = CausePriorityZero
		return
	}
	delaying := m.p.PreemptDelay > 0 && (m.preemptAt.IsZero() || now.Before(m.preemptAt))
	if !m.p.NoPreempt && a.Priority < m.priority && !delaying {
		// Preempt: discard the lower priority advert and let the
		// Master_Down_Timer run out.
		m.downCause = CausePreempt
		return
	}
	if m.p.Version == Version3 {
		m.masterAdverInt = a.Interval
	}
	m.masterPriority = a.Priority
	m.deadline = now.Add(m.MasterDownInterval())
	m.downCause = CauseMasterDown
	if m.p.PreemptDelay > 0 {
		if a.Priority >= m.priority {
			m.preemptAt = time.Time{}
		} else if m.preemptAt.IsZero() {
			m.preemptAt = now.Add(m.p.PreemptDelay)
		}
	}
}

// masterAdvert is RFC 5798 §6.4.3 "If an ADVERTISEMENT is received", as
// keepalived 2.2.7's vrrp_state_master_rx does it: a priority-0 advert, and
// with higher_prio_send_advert a better one, is answered with an advert at
// once; a worse one is answered unless lower_prio_no_advert, and is a
// MasterRxLowerPri event. Staying MASTER, the Adver_Timer restarts unless
// lower_prio_no_advert (keepalived's read dispatcher: "if we have sent an
// advert, reset the timer").
func (m *Machine) masterAdvert(now time.Time, a *Advert, src netip.Addr) []Action {
	src = src.Unmap()
	cmp := src.Compare(m.p.Primary)
	if a.Priority == m.priority && cmp == 0 {
		return nil // our own advert looped back
	}
	var acts []Action
	better := a.Priority > m.priority || (a.Priority == m.priority && cmp > 0)
	if a.Priority == PriorityStop || (m.p.HigherPrioSendAdvert && better) {
		acts = append(acts, m.send(m.priority))
		if a.Priority == PriorityStop {
			// Another MASTER left: we asserted ourselves.
			m.restartAdverTimer(now)
			return acts
		}
	}
	if a.Priority == PriorityOwner && m.priority == PriorityOwner {
		// Two owners: keepalived reports a configuration error and steps
		// down to 254 so that the election can settle.
		m.priority = PriorityOwner - 1
		better = true
	}
	if better {
		if m.p.Version == Version3 {
			m.masterAdverInt = a.Interval
		}
		m.masterAddr, m.masterPriority = src, a.Priority
		from := m.setState(StateBackup)
		m.preemptAt = time.Time{}
		m.deadline = now.Add(m.MasterDownInterval())
		m.downCause = CauseMasterDown
		return append(acts, BecomeBackup{From: from})
	}
	// A lower priority (or equal priority, lower address) MASTER:
	// keepalived answers at once so that it steps down without waiting,
	// unless lower_prio_no_advert.
	if !m.p.LowerPrioNoAdvert {
		acts = append(acts, m.send(m.priority))
	}
	m.restartAdverTimer(now)
	return append(acts, MasterRxLowerPri{Src: src, Priority: a.Priority})
}

// restartAdverTimer restarts the Adver_Timer after an advert received while
// MASTER, unless lower_prio_no_advert (keepalived 2.2.7 does the same,
// whether or not it answered).
func (m *Machine) restartAdverTimer(now time.Time) {
	if !m.p.LowerPrioNoAdvert {
		m.deadline = now.Add(m.p.AdvertInterval)
	}
}

func (m *Machine) priorityChanged(now time.Time, prio uint8) []Action {
	if prio == 0 {
		prio = 1
	}
	if prio == m.priority {
		return nil
	}
	if m.state == StateBackup {
		// Keepalived moves the running Master_Down_Timer by the change in
		// Skew_Time, so a rising priority brings the takeover closer.
		old := m.MasterDownInterval()
		m.priority = prio
		m.deadline = m.deadline.Add(m.MasterDownInterval() - old)
		if m.deadline.Before(now) {
			m.deadline = now
		}
		return nil
	}
	// A MASTER advertises the new priority with its next advert.
	m.priority = prio
	return nil
}

func (m *Machine) interfaceDown() []Action {
	if m.fault {
		return nil
	}
	m.fault = true
	if m.state == StateInit {
		// Not started yet: Startup will go straight to FAULT.
		return nil
	}
	return m.enterFault()
}

func (m *Machine) interfaceUp(now time.Time) []Action {
	if !m.fault {
		return nil
	}
	m.fault = false
	if m.state != StateFault {
		return nil
	}
	return m.up(now)
}

// shutdown is RFC 5798 §6.4.2/§6.4.3 "If a Shutdown event is received".
func (m *Machine) shutdown() []Action {
	if m.state == StateInit {
		return nil
	}
	var acts []Action
	if m.state == StateMaster {
		acts = append(acts, m.send(PriorityStop))
	}
	from := m.setState(StateInit)
	m.deadline = time.Time{}
	m.preemptAt = time.Time{}
	return append(acts, Stop{From: from})
}
