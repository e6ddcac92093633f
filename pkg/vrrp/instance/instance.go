// Package instance is the runtime of one vrrp_instance: the pure election
// machine (pkg/vrrp) plus the side effects it asks for — adverts sent,
// VIPs added and removed, the dataplane told to forward, gratuitous ARP /
// NA, notify scripts — and what feeds it: received adverts, timers,
// tracked scripts and interfaces, the other members of its sync group.
//
// Every side effect goes through a small interface given to New (Sender,
// VIPs, Announcer, Role, Clock, Notifier, PeerSeen), and everything that
// changes the instance happens in one stepping function, handle, which
// takes one input and performs the resulting actions (as google/seesaw's
// runOnce). Run is the loop around it; tests call handle directly with
// fakes and a fake clock.
package instance

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/script"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// Sender sends adverts (*vrrpnet.Conn).
type Sender interface {
	// Source is the address adverts are sent from.
	Source() netip.Addr
	// Destinations are the multicast group or the unicast peers.
	Destinations() []netip.Addr
	// Send sends one VRRP message to dst.
	Send(payload []byte, dst netip.Addr) error
}

// VIPs adds and removes addresses on interfaces (*netif.VIPs).
type VIPs interface {
	// Add puts v on its interface; existed reports it was there already.
	Add(v netif.VIP) (existed bool, err error)
	// Remove takes v off if it is ours (added or claimed).
	Remove(v netif.VIP) (removed bool, err error)
	// Present reports whether v is on its interface.
	Present(v netif.VIP) (bool, error)
	// Claim makes v ours, so Remove deletes it.
	Claim(v netif.VIP)
}

// Announcer sends gratuitous ARP / unsolicited NA for a VIP
// (*netif.Announcer).
type Announcer interface {
	Announce(vip netip.Addr) error
}

// Role is the dataplane's part: whether it forwards traffic for the VIPs.
type Role interface {
	// SetForwarding turns forwarding of vips on or off.
	SetForwarding(vips []netip.Addr, on bool)
	// Forwarding reports whether the dataplane already forwards all of vips
	// (left so by a daemon that died as MASTER).
	Forwarding(vips []netip.Addr) bool
}

// Clock is the time source: the real one in the daemon, a fake in tests.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Notifier runs notify scripts without waiting for them (*script.Notifier).
type Notifier interface {
	Notify(c script.Command, extra ...string)
}

// PeerSeen is the receive path's own record of the last valid advert for
// the instance's VRID, kept where a stalled daemon cannot miss it (the XDP
// program's per-VRID peer state, stamped with CLOCK_MONOTONIC).
type PeerSeen interface {
	// LastAdvert returns the last valid advert seen; ok is false when none
	// has been seen.
	LastAdvert() (PeerAdvert, bool)
}

// PeerAdvert is the last advert PeerSeen knows of.
type PeerAdvert struct {
	Src      netip.Addr
	Priority uint8
	Interval time.Duration
	// Age is how long ago it arrived.
	Age time.Duration
}

// IO is one opening of the instance's socket and announcer on its
// interface.
type IO struct {
	Sender Sender
	// Announcer may be nil: no GARP / NA.
	Announcer Announcer
	// Receiver is the socket adverts arrive on; nil when they come from
	// the XDP program.
	Receiver PacketReader
	// Close releases them; nil when there is nothing to close.
	Close func() error
	// Claims watches ARP / NA for split brain (conflict.go).
	Claims ClaimWatch
}

// Opener opens the instance's IO on its interface as it is now.
type Opener func() (IO, error)

// Deps are the instance's side effects. IO.Sender, VIPs, Clock and
// Notifier are required; a nil Role means no dataplane forwards VIPs, a
// nil PeerSeen means only the inbox is known, a nil Reopen means the IO
// cannot be rebuilt after the interface was re-created.
type Deps struct {
	// IO is the instance's from New on; the instance closes it when it
	// stops or rebuilds it.
	IO       IO
	Reopen   Opener
	VIPs     VIPs
	Role     Role
	Clock    Clock
	Notifier Notifier
	PeerSeen PeerSeen
	// Group is the instance's vrrp_sync_group, nil when none.
	Group *SyncGroup
	// Tracked are the objects the instance tracks (see Tracking).
	Tracked []Tracked
	// Receive names where adverts come from: "socket" or "xdp".
	Receive string
	Log     *slog.Logger
}

// Input is one thing the instance steps on.
type Input interface{ isInput() }

// Inputs from the receive paths and the daemon.
type (
	// Datagram is a VRRP message from the raw socket: it is decoded and
	// checked against the configuration (RecvConfig.Validate) here.
	Datagram struct {
		Payload  []byte
		Src, Dst netip.Addr
		TTL      int // IPv4 TTL / IPv6 hop limit as received
		// At is when the kernel received it (SO_TIMESTAMPNS); zero: when
		// it is handled.
		At time.Time
	}
	// Advert is a VRRP message the XDP program has already validated; it is
	// only decoded here.
	Advert struct {
		Payload  []byte
		Src, Dst netip.Addr
		// At is when the XDP program saw it (its bpf_ktime_get_ns stamp);
		// zero: when it is handled.
		At time.Time
	}
	// Tick: the instance's next deadline may have passed.
	Tick struct{}
	// TrackChange: a tracked object changed state.
	TrackChange struct {
		Kind, Name string
		OK         bool
	}
	// BasePriority: a reload changed the configured priority.
	BasePriority struct{ Priority uint8 }
	// LinkFault: the instance's interface is gone (true), or back with
	// its old ifindex (false).
	LinkFault struct{ Fault bool }
	// Relink: the interface was re-created (new ifindex) and the dataplane
	// on it rebuilt: the instance stays in FAULT until it has rebuilt its
	// socket and announcer (Deps.Reopen).
	Relink struct{}
	// groupFault: the sync group's fault changed.
	groupFault struct{ fault bool }
	// machineEvent is an event for the machine (sync-group follow).
	machineEvent struct{ ev vrrp.Event }
)

func (Datagram) isInput()     {}
func (Advert) isInput()       {}
func (Tick) isInput()         {}
func (TrackChange) isInput()  {}
func (BasePriority) isInput() {}
func (LinkFault) isInput()    {}
func (Relink) isInput()       {}
func (groupFault) isInput()   {}
func (machineEvent) isInput() {}

// Instance is the runtime of one vrrp_instance. Everything that changes it
// happens on the goroutine that runs Run.
type Instance struct {
	cfg *config.VRRPInstance
	log *slog.Logger
	m   *vrrp.Machine
	d   Deps
	io  IO
	// ctx is Run's, for the receive loop of each IO.
	ctx context.Context
	// relinkAt is when to try again to rebuild the IO; zero when no
	// rebuild is pending.
	relinkAt time.Time

	recv vrrp.RecvConfig
	// vips are the addresses added while MASTER (excluded ones too);
	// advertised are the ones listed in adverts; vipAddrs are vips'
	// addresses, for the dataplane.
	vips       []netif.VIP
	advertised []netip.Addr
	vipAddrs   []netip.Addr
	garpTiming netif.GARPTiming
	garp       *netif.GARPSchedule
	// lowerPrioAt are the delayed garp_lower_prio rounds to come, in
	// order (lowerprio.go).
	lowerPrioAt []time.Time

	track tracking
	// Faults that put the machine in FAULT while any is set.
	trackFault, groupFault, vipFault, linkFault bool
	sentFault                                   bool
	// vipRetry holds the VIPs netlink refused while MASTER.
	vipRetry vipRetry
	// recheckAt is set while a BACKUP whose timer fired late gives the
	// receive path one more interval to deliver what it queued.
	recheckAt time.Time
	// lastAdvertAt is when the last valid advert stepped into the machine
	// arrived (heardPeer steps one PeerSeen knows of only if it is newer).
	lastAdvertAt time.Time

	// inherited is set while the VIPs and their forwarding were left by a
	// previous daemon that died as MASTER and this one has not decided yet.
	inherited bool
	// conflict is the split-brain episode, if one is on (conflict.go).
	conflict conflictState

	inputs chan Input
	// inbox receives adverts from the receive path.
	inbox chan Input

	// keepOnStop: leave without the Shutdown step (keepalived's
	// --dont-release-vrrp): no priority-0 advert, the VIPs stay.
	keepOnStop atomic.Bool

	advertsIn, advertsOut atomic.Uint64
	// garpRounds counts gratuitous ARP / NA rounds (every VIP once).
	garpRounds atomic.Uint64
	// rxLowerPri counts lower priority adverts heard while MASTER.
	rxLowerPri atomic.Uint64
	// queueFull counts adverts dropped because the instance fell behind.
	queueFull atomic.Uint64
	drops     [vrrp.NumDropReasons]atomic.Uint64

	mu     sync.Mutex
	status Status
	state  vrrp.State
	// gaps measures the MASTER's advert gaps (gaps.go); becameBy counts
	// becoming MASTER by cause.
	gaps     gapTracker
	becameBy map[string]uint64

	done chan struct{}
	// started is closed once the instance has left INIT (leftover VIPs
	// adopted or removed, the first step taken).
	started chan struct{}
}

// New prepares the runtime of cfg; nothing happens until Run.
func New(cfg *config.VRRPInstance, d Deps) (*Instance, error) {
	if d.IO.Sender == nil || d.VIPs == nil || d.Clock == nil || d.Notifier == nil {
		return nil, fmt.Errorf("vrrp_instance %s: instance.New needs a Sender, VIPs, a Clock and a Notifier", cfg.Name)
	}
	if d.Role == nil {
		d.Role = noRole{}
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	in := &Instance{
		cfg: cfg, d: d, io: d.IO, ctx: context.Background(),
		log:     d.Log.With("instance", cfg.Name, "vrid", cfg.VRID),
		inputs:  make(chan Input, 64),
		inbox:   make(chan Input, 256),
		done:    make(chan struct{}),
		started: make(chan struct{}),
		track:   tracking{base: uint8(cfg.Priority), objs: append([]Tracked(nil), d.Tracked...)},
		gaps:    newGapTracker(cfg.AdvertInt), becameBy: map[string]uint64{},
	}
	dev := cfg.Interface
	if cfg.UseVMAC && cfg.VMACName != "" {
		dev = cfg.VMACName
	}
	for i, list := range [][]config.VIP{cfg.VIPs, cfg.ExcludedVIPs} {
		for _, v := range list {
			nv, err := toNetifVIP(v, dev)
			if err != nil {
				return nil, err
			}
			in.vips = append(in.vips, nv)
			in.vipAddrs = append(in.vipAddrs, nv.Prefix.Addr())
			if i == 0 {
				in.advertised = append(in.advertised, v.Prefix.Addr())
			}
		}
	}
	in.recv = RecvConfig(cfg)
	initial := vrrp.StateBackup
	if cfg.InitialState == config.StateMaster {
		initial = vrrp.StateMaster
	}
	prio, fault := in.track.compute()
	in.trackFault = fault
	in.track.sentPrio = prio
	in.m = vrrp.NewMachine(vrrp.Params{
		Version: uint8(cfg.Version), VRID: uint8(cfg.VRID), Priority: prio,
		AdvertInterval: cfg.AdvertInt, NoPreempt: !cfg.Preempt, PreemptDelay: cfg.PreemptDelay,
		DownTimerAdverts: cfg.DownTimerAdverts, Primary: d.IO.Sender.Source(),
		InitialState: initial, LowerPrioNoAdvert: cfg.LowerPrioNoAdvert, HigherPrioSendAdvert: cfg.HigherPrioSendAdvert,
	})
	in.garpTiming = netif.GARPTiming{
		Delay: cfg.GarpMasterDelay, Repeat: cfg.GarpMasterRepeat,
		Refresh: cfg.GarpMasterRefresh, RefreshRepeat: cfg.GarpMasterRefreshRepeat,
	}
	in.status = Status{
		Name: cfg.Name, Interface: cfg.Interface, VRID: cfg.VRID, Version: cfg.Version,
		Family: cfg.Family(), ConfiguredPriority: cfg.Priority, EffectivePriority: int(prio),
		State: vrrp.StateInit.String(), AdvertInterval: cfg.AdvertInt.String(),
		Source: d.IO.Sender.Source().String(), SyncGroup: cfg.SyncGroup, Receive: d.Receive,
	}
	for _, v := range in.vips {
		in.status.VIPs = append(in.status.VIPs, v.Prefix.String())
	}
	return in, nil
}

// RecvConfig is what adverts for cfg are checked against.
func RecvConfig(cfg *config.VRRPInstance) vrrp.RecvConfig {
	var auth uint8
	var authData [8]byte
	if cfg.AuthType == config.AuthPass && cfg.Version == 2 {
		auth = vrrp.AuthPass
		authData = vrrp.PasswordBytes(cfg.AuthPass)
	}
	rc := vrrp.RecvConfig{
		Version: uint8(cfg.Version), VRID: uint8(cfg.VRID), AuthType: auth, AuthData: authData,
		Interval: cfg.AdvertInt, UnicastPeers: cfg.UnicastPeers,
	}
	for _, r := range cfg.UnicastPeerTTL {
		rc.PeerTTL = append(rc.PeerTTL, vrrp.TTLRange{Min: r.Min, Max: r.Max})
	}
	if !cfg.SkipCheckAdvAddr {
		for _, v := range cfg.VIPs {
			rc.VIPs = append(rc.VIPs, v.Prefix.Addr())
		}
	}
	return rc
}

func toNetifVIP(v config.VIP, dev string) (netif.VIP, error) {
	if v.Dev != "" {
		dev = v.Dev
	}
	scope, err := scopeOf(v.Scope)
	if err != nil {
		return netif.VIP{}, fmt.Errorf("%s: virtual_ipaddress %s: %w", v.Pos, v.Prefix, err)
	}
	nv := netif.VIP{Prefix: v.Prefix, Dev: dev, Label: v.Label, Broadcast: v.Brd, Scope: scope}
	if v.Prefix.Addr().Is6() && v.PreferredLft != config.LifetimeForever {
		// keepalived sends IFA_CACHEINFO only then.
		nv.Lifetime, nv.PreferredLft = true, v.PreferredLft
	}
	return nv, nil
}

func scopeOf(s string) (int, error) {
	switch s {
	case "", "global":
		return unix.RT_SCOPE_UNIVERSE, nil
	case "site":
		return unix.RT_SCOPE_SITE, nil
	case "link":
		return unix.RT_SCOPE_LINK, nil
	case "host":
		return unix.RT_SCOPE_HOST, nil
	case "nowhere":
		return unix.RT_SCOPE_NOWHERE, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 255 {
		return n, nil
	}
	return 0, fmt.Errorf("unknown scope %q", s)
}

// Post queues an input for the instance's goroutine; it gives up once the
// instance has stopped.
func (in *Instance) Post(x Input) {
	select {
	case in.inputs <- x:
	case <-in.done:
	}
}

// Deliver hands a received advert (Datagram or Advert) to the instance;
// when the instance has fallen behind by a whole inbox it is dropped,
// counted as queue_full and logged (the first, then every 1000th).
func (in *Instance) Deliver(x Input) {
	select {
	case in.inbox <- x:
	default:
		if n := in.queueFull.Add(1); n%1000 == 1 {
			in.log.Warn("advert inbox full, dropping adverts", "dropped", n)
		}
	}
}

// Started is closed once Run has left INIT: VIPs a previous daemon left
// are adopted or removed by then.
func (in *Instance) Started() <-chan struct{} { return in.started }

// CountDrop counts a datagram the receive path could not even hand over.
func (in *Instance) CountDrop(r vrrp.DropReason) { in.drops[r].Add(1) }

// Run steps the instance until ctx ends, then leaves gracefully
// (priority-0 advert, VIPs removed, notify_stop) and returns.
func (in *Instance) Run(ctx context.Context) {
	defer close(in.done)
	in.ctx = ctx
	in.startReceiver()
	in.start()
	close(in.started)
	for in.runOnce(ctx) {
	}
}

// runOnce waits for one input (or the next deadline) and handles it; it
// returns false once the instance has stopped.
func (in *Instance) runOnce(ctx context.Context) bool {
	var timer <-chan time.Time
	if next := in.next(); !next.IsZero() {
		timer = in.d.Clock.After(max(next.Sub(in.d.Clock.Now()), 0))
	}
	select {
	case <-ctx.Done():
		in.stop()
		return false
	case x := <-in.inbox:
		in.handle(x)
	case x := <-in.inputs:
		in.handle(x)
	case <-timer:
		in.handle(Tick{})
	}
	return true
}

// start joins the sync group, adopts what a previous daemon left and
// leaves INIT.
func (in *Instance) start() {
	if in.d.Group != nil {
		in.groupFault = in.d.Group.join(in, in.ownFault())
	}
	in.adoptLeftovers()
	if in.trackFault || in.groupFault {
		in.sentFault = true
		in.m.Step(in.d.Clock.Now(), vrrp.InterfaceDown{})
	}
	in.perform(in.m.Step(in.d.Clock.Now(), vrrp.Startup{}))
}

// stop is the Shutdown event: priority 0 if MASTER, VIPs removed.
func (in *Instance) stop() {
	if in.keepOnStop.Load() {
		in.log.Info("leaving without releasing (--dont-release-vrrp): no priority-0 advert, VIPs and forwarding left in place",
			"state", in.m.State().String())
	} else {
		in.perform(in.m.Step(in.d.Clock.Now(), vrrp.Shutdown{}))
	}
	if in.d.Group != nil {
		in.d.Group.leave(in)
	}
	in.closeIO()
}

// KeepOnStop makes the coming stop leave the VIPs and the dataplane's
// forwarding as they are and send no priority-0 advert, as keepalived's
// --dont-release-vrrp does; the next daemon adopts them.
func (in *Instance) KeepOnStop() { in.keepOnStop.Store(true) }

// next is the earliest time the instance must be stepped with a Tick.
func (in *Instance) next() time.Time {
	var next time.Time
	consider := func(at time.Time) {
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	// While a late timer is rechecked, the machine's (passed) deadline
	// waits for the recheck.
	dl := in.m.Deadline()
	if !in.recheckAt.IsZero() && (dl.IsZero() || in.recheckAt.After(dl)) {
		dl = in.recheckAt
	}
	consider(dl)
	if in.garp != nil {
		if at, ok := in.garp.Next(); ok {
			consider(at)
		}
	}
	consider(in.vipRetry.next())
	consider(in.nextLowerPrio())
	consider(in.relinkAt)
	consider(in.conflictEnd())
	return next
}

// handle is the stepping function: one input in, its actions performed.
func (in *Instance) handle(x Input) {
	now := in.d.Clock.Now()
	switch x := x.(type) {
	case Datagram:
		in.receive(now, arrival(x.At, now), x.Payload, x.Src, x.Dst, x.TTL, true)
	case Advert:
		in.receive(now, arrival(x.At, now), x.Payload, x.Src, x.Dst, 0, false)
	case Tick:
		in.tick(now)
	case TrackChange:
		in.trackChange(now, x)
	case BasePriority:
		in.track.base = x.Priority
		in.mu.Lock()
		in.status.ConfiguredPriority = int(x.Priority)
		in.mu.Unlock()
		in.updatePriority(now, "reload")
	case LinkFault:
		in.setLinkFault(now, x.Fault)
	case Relink:
		in.setLinkFault(now, true)
		in.relink(now)
	case groupFault:
		in.groupFault = x.fault
		in.applyFault(now)
	case machineEvent:
		in.perform(in.m.Step(now, x.ev))
	case syncLowerPrio:
		in.lowerPrioAnnounce(now)
	case Claimed:
		in.claimed(now, x.Claim)
	}
	in.snapshot()
}

// arrival is an advert's arrival time: the kernel's stamp, else now.
func arrival(at, now time.Time) time.Time {
	if at.IsZero() {
		return now
	}
	return at
}

// receive decodes one advert (and validates it when it comes from the
// socket); valid adverts step the machine, invalid ones are counted by
// reason and change nothing. at is when the kernel received it.
func (in *Instance) receive(now, at time.Time, payload []byte, src, dst netip.Addr, ttl int, validate bool) {
	a, err := vrrp.Decode(payload, src, dst)
	if err == nil && validate {
		if ttl < 0 || ttl > 255 {
			ttl = 0
		}
		err = in.recv.Validate(a, src, uint8(ttl))
	}
	if err != nil {
		reason := vrrp.ReasonOf(err)
		in.drops[reason].Add(1)
		in.log.Debug("advert dropped", "src", src, "reason", reason.String(), "err", err)
		return
	}
	in.advertsIn.Add(1)
	in.lastAdvertAt = at
	in.advertWhileMaster(now, a, src)
	in.perform(in.m.Step(now, vrrp.AdvertReceived{Advert: a, Src: src}))
	in.observeGap(at, a.Priority, src)
	if in.m.Deadline().After(now) {
		in.recheckAt = time.Time{} // heard: no late timer to recheck
	}
	if in.inherited && in.m.State() == vrrp.StateBackup && in.yieldsTo(a.Priority, src) {
		in.releaseInherited("another router is MASTER")
	}
}

// yieldsTo reports whether this BACKUP stays BACKUP while a router with
// priority prio at src advertises: it has the higher priority (or the same
// and the higher address), or we do not preempt.
func (in *Instance) yieldsTo(prio uint8, src netip.Addr) bool {
	p := in.m.Priority()
	return !in.cfg.Preempt || prio > p || (prio == p && src.Unmap().Compare(in.io.Sender.Source()) > 0)
}

// notify runs the notify scripts for a transition to state to.
func (in *Instance) notify(to vrrp.State) {
	n := in.cfg.Notify
	var specific config.ScriptCmd
	state := to.String()
	switch to {
	case vrrp.StateMaster:
		specific = n.Master
	case vrrp.StateBackup:
		specific = n.Backup
	case vrrp.StateFault:
		specific = n.Fault
	case vrrp.StateInit:
		specific, state = n.Stop, "STOP"
	}
	if !specific.IsZero() {
		in.d.Notifier.Notify(script.Command{Line: specific.Command})
	}
	if !n.Any.IsZero() {
		in.d.Notifier.Notify(script.Command{Line: n.Any.Command}, "INSTANCE", in.cfg.Name, state, strconv.Itoa(int(in.m.Priority())))
	}
}

// noRole is the Role without a dataplane.
type noRole struct{}

func (noRole) SetForwarding([]netip.Addr, bool) {}
func (noRole) Forwarding([]netip.Addr) bool     { return false }
