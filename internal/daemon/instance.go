package daemon

import (
	"context"
	"errors"
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
	"github.com/xdpvip/xdpvip/pkg/vrrpnet"
)

// received is one VRRP datagram as a receive path (raw socket or the XDP
// ring buffer) hands it to an instance.
type received struct {
	payload  []byte
	src, dst netip.Addr
	ttl      int
}

// instance is the runtime of one vrrp_instance: it owns the election
// machine and carries out its actions (adverts, VIPs, GARP, notify).
// Everything that changes the machine happens on the instance's goroutine.
type instance struct {
	cfg  *config.VRRPInstance
	log  *slog.Logger
	m    *vrrp.Machine
	conn *vrrpnet.Conn
	recv vrrp.RecvConfig
	// vips are the addresses added while MASTER (excluded ones too);
	// advertised are the ones listed in adverts.
	vips       []netif.VIP
	advertised []netip.Addr
	vipMgr     *netif.VIPs
	ann        *netif.Announcer
	garpTiming netif.GARPTiming
	garp       *netif.GARPSchedule
	notifier   *script.Notifier
	hooks      instanceHooks

	events chan vrrp.Event
	// inbox receives datagrams from the receive path.
	inbox chan received

	advertsIn, advertsOut atomic.Uint64
	// queueFull counts datagrams dropped because the instance fell behind.
	queueFull atomic.Uint64
	drops     [vrrp.NumDropReasons]atomic.Uint64
	mu        sync.Mutex
	status    InstanceStatus
	state     vrrp.State

	// inherited is set while the VIPs and their forwarding were left by a
	// previous daemon that died as MASTER and this one has not decided yet.
	inherited bool

	done chan struct{}
}

// instanceHooks are how an instance tells the daemon about transitions.
type instanceHooks struct {
	// onState runs on the instance's goroutine after every transition.
	onState func(in *instance, from, to vrrp.State)
	// setRole tells the dataplane whether to forward the instance's VIPs.
	setRole func(in *instance, active bool)
	// roleActive reports whether the dataplane already forwards them.
	roleActive func(in *instance) bool
}

// newInstance prepares the runtime of cfg; nothing is sent until run.
func newInstance(cfg *config.VRRPInstance, conn *vrrpnet.Conn, vipMgr *netif.VIPs, ann *netif.Announcer,
	notifier *script.Notifier, log *slog.Logger, hooks instanceHooks, priority uint8) (*instance, error) {
	in := &instance{
		cfg: cfg, conn: conn, vipMgr: vipMgr, ann: ann, notifier: notifier, hooks: hooks,
		log:    log.With("instance", cfg.Name, "vrid", cfg.VRID),
		events: make(chan vrrp.Event, 64),
		inbox:  make(chan received, 256),
		done:   make(chan struct{}),
	}
	dev := cfg.Interface
	if cfg.UseVMAC && cfg.VMACName != "" {
		dev = cfg.VMACName
	}
	for _, v := range cfg.VIPs {
		nv, err := toNetifVIP(v, dev)
		if err != nil {
			return nil, err
		}
		in.vips = append(in.vips, nv)
		in.advertised = append(in.advertised, v.Prefix.Addr())
	}
	for _, v := range cfg.ExcludedVIPs {
		nv, err := toNetifVIP(v, dev)
		if err != nil {
			return nil, err
		}
		in.vips = append(in.vips, nv)
	}
	var auth uint8
	var authData [8]byte
	if cfg.AuthType == config.AuthPass && cfg.Version == 2 {
		auth = vrrp.AuthPass
		authData = vrrp.PasswordBytes(cfg.AuthPass)
	}
	in.recv = vrrp.RecvConfig{
		Version: uint8(cfg.Version), VRID: uint8(cfg.VRID), AuthType: auth, AuthData: authData,
		Interval: cfg.AdvertInt, UnicastPeers: cfg.UnicastPeers,
	}
	if !cfg.SkipCheckAdvAddr {
		in.recv.VIPs = in.advertised
	}
	initial := vrrp.StateBackup
	if cfg.InitialState == config.StateMaster {
		initial = vrrp.StateMaster
	}
	in.m = vrrp.NewMachine(vrrp.Params{
		Version: uint8(cfg.Version), VRID: uint8(cfg.VRID), Priority: priority,
		AdvertInterval: cfg.AdvertInt, NoPreempt: !cfg.Preempt, PreemptDelay: cfg.PreemptDelay,
		Accept: cfg.Accept, DownTimerAdverts: cfg.DownTimerAdverts, Primary: conn.Source(),
		InitialState: initial,
	})
	in.garpTiming = netif.GARPTiming{
		Delay: cfg.GarpMasterDelay, Repeat: cfg.GarpMasterRepeat,
		Refresh: cfg.GarpMasterRefresh, RefreshRepeat: cfg.GarpMasterRefreshRepeat,
	}
	in.status = InstanceStatus{
		Name: cfg.Name, Interface: cfg.Interface, VRID: cfg.VRID, Version: cfg.Version,
		Family: cfg.Family(), ConfiguredPriority: cfg.Priority, EffectivePriority: int(priority),
		State: vrrp.StateInit.String(), AdvertInterval: cfg.AdvertInt.String(),
		Source: conn.Source().String(), SyncGroup: cfg.SyncGroup,
	}
	for _, v := range in.vips {
		in.status.VIPs = append(in.status.VIPs, v.Prefix.String())
	}
	return in, nil
}

func toNetifVIP(v config.VIP, dev string) (netif.VIP, error) {
	if v.Dev != "" {
		dev = v.Dev
	}
	scope, err := scopeOf(v.Scope)
	if err != nil {
		return netif.VIP{}, fmt.Errorf("%s: virtual_ipaddress %s: %w", v.Pos, v.Prefix, err)
	}
	return netif.VIP{Prefix: v.Prefix, Dev: dev, Label: v.Label, Broadcast: v.Brd, Scope: scope}, nil
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

// post queues an event for the instance's goroutine without blocking the
// caller forever: the instance may be stopping.
func (in *instance) post(ev vrrp.Event) {
	select {
	case in.events <- ev:
	case <-in.done:
	}
}

// deliver hands a received datagram to the instance; when the instance
// has fallen behind by a whole inbox the datagram is dropped, counted as
// queue_full and logged (the first, then every 1000th).
func (in *instance) deliver(r received) {
	select {
	case in.inbox <- r:
	default:
		if n := in.queueFull.Add(1); n%1000 == 1 {
			in.log.Warn("advert inbox full, dropping adverts", "dropped", n)
		}
	}
}

// handleDatagram decodes and validates one datagram; valid adverts become
// machine events, invalid ones are counted by reason and change nothing.
func (in *instance) handleDatagram(now time.Time, r received) []vrrp.Action {
	a, err := vrrp.Decode(r.payload, r.src, r.dst)
	if err == nil {
		ttl := r.ttl
		if ttl < 0 || ttl > 255 {
			ttl = 0
		}
		err = in.recv.Validate(a, r.src, uint8(ttl))
	}
	if err != nil {
		reason := vrrp.ReasonOf(err)
		in.drops[reason].Add(1)
		in.log.Debug("advert dropped", "src", r.src, "reason", reason.String(), "err", err)
		return nil
	}
	in.advertsIn.Add(1)
	acts := in.m.Step(now, vrrp.AdvertReceived{Advert: a, Src: r.src})
	if in.inherited && in.m.State() == vrrp.StateBackup && in.yieldsTo(a, r.src) {
		in.releaseInherited("another router is MASTER")
	}
	return acts
}

// yieldsTo reports whether this BACKUP stays BACKUP while a's sender
// advertises: it has the higher priority (or the same and the higher
// address), or we do not preempt.
func (in *instance) yieldsTo(a *vrrp.Advert, src netip.Addr) bool {
	p := in.m.Priority()
	return !in.cfg.Preempt || a.Priority > p || (a.Priority == p && src.Compare(in.conn.Source()) > 0)
}

func (in *instance) setRole(active bool) {
	if in.hooks.setRole != nil {
		in.hooks.setRole(in, active)
	}
}

// adoptLeftovers looks for VIPs a previous daemon left on the interface
// (it died as MASTER). They are claimed, so leaving MASTER removes them.
// If the dataplane still forwards them, forwarding goes on while this
// daemon's election runs, so a restart does not interrupt VIP traffic;
// otherwise they are removed now, as keepalived does at start.
func (in *instance) adoptLeftovers() {
	var left []netif.VIP
	for _, v := range in.vips {
		if ok, err := in.vipMgr.Present(v); err == nil && ok {
			in.vipMgr.Claim(v)
			left = append(left, v)
		}
	}
	if len(left) == 0 {
		return
	}
	if in.hooks.roleActive != nil && in.hooks.roleActive(in) {
		in.inherited = true
		in.log.Info("VIPs left forwarding by a previous daemon: forwarding goes on while the election runs", "vips", len(left))
		return
	}
	for _, v := range left {
		if _, err := in.vipMgr.Remove(v); err != nil {
			in.log.Warn("removing a VIP left by a previous daemon failed", "vip", v.String(), "err", err)
		}
	}
	in.log.Info("removed VIPs left by a previous daemon", "vips", len(left))
}

// releaseInherited stops forwarding and removes VIPs adopted from a
// previous daemon, once this one is not going to be MASTER.
func (in *instance) releaseInherited(why string) {
	if !in.inherited {
		return
	}
	in.inherited = false
	in.setRole(false)
	for _, v := range in.vips {
		if _, err := in.vipMgr.Remove(v); err != nil {
			in.log.Error("removing VIP failed", "vip", v.String(), "err", err)
		}
	}
	in.log.Info("released the VIPs adopted from a previous daemon", "why", why)
}

// run is the instance's goroutine. It returns after the shutdown actions
// (priority-0 advert, VIPs removed, notify_stop) are done.
func (in *instance) run(ctx context.Context) {
	defer close(in.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	in.adoptLeftovers()
	in.perform(in.m.Step(time.Now(), vrrp.Startup{}))
	for {
		next := in.m.Deadline()
		if in.garp != nil {
			if at, ok := in.garp.Next(); ok && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			in.perform(in.m.Step(time.Now(), vrrp.Shutdown{}))
			return
		case r := <-in.inbox:
			in.perform(in.handleDatagram(time.Now(), r))
		case ev := <-in.events:
			in.perform(in.m.Step(time.Now(), ev))
		case <-timer.C:
			now := time.Now()
			if d := in.m.Deadline(); !d.IsZero() && !now.Before(d) {
				in.perform(in.m.Step(now, vrrp.Timer{}))
			}
			in.announceDue(now)
		}
	}
}

// perform carries out the machine's actions in order.
func (in *instance) perform(acts []vrrp.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case vrrp.SendAdvert:
			in.sendAdvert(a.Priority)
		case vrrp.BecomeMaster:
			in.becomeMaster(a.From)
		case vrrp.BecomeBackup:
			in.leaveMaster(a.From, vrrp.StateBackup)
		case vrrp.BecomeFault:
			in.leaveMaster(a.From, vrrp.StateFault)
		case vrrp.Stop:
			in.leaveMaster(a.From, vrrp.StateInit)
		}
	}
	in.snapshot()
}

func (in *instance) advert(prio uint8) *vrrp.Advert {
	interval := in.cfg.AdvertInt
	return &vrrp.Advert{
		Version: in.recv.Version, Type: vrrp.TypeAdvertisement, VRID: in.recv.VRID, Priority: prio,
		AuthType: in.recv.AuthType, AuthData: in.recv.AuthData, Interval: interval, Addrs: in.advertised,
	}
}

func (in *instance) sendAdvert(prio uint8) {
	adv := in.advert(prio)
	for _, dst := range in.conn.Destinations() {
		b, err := adv.Marshal(in.conn.Source(), dst)
		if err == nil {
			err = in.conn.Send(b, dst)
		}
		if err != nil {
			in.log.Warn("sending advert failed", "dst", dst, "err", err)
			continue
		}
		in.advertsOut.Add(1)
	}
}

func (in *instance) becomeMaster(from vrrp.State) {
	in.log.Info("entering MASTER state", "from", from.String(), "priority", in.m.Priority())
	in.inherited = false
	for _, v := range in.vips {
		existed, err := in.vipMgr.Add(v)
		if err != nil {
			in.log.Error("adding VIP failed", "vip", v.String(), "err", err)
		} else if existed {
			in.vipMgr.Claim(v) // configured, so ours to remove on leaving
		}
	}
	// Forward before announcing: the first frames after the GARP must not
	// reach the kernel stack.
	in.setRole(true)
	now := time.Now()
	in.garp = netif.NewGARPSchedule(in.garpTiming, now)
	in.announceDue(now)
	in.transition(from, vrrp.StateMaster)
}

func (in *instance) leaveMaster(from, to vrrp.State) {
	in.log.Info("entering "+to.String()+" state", "from", from.String())
	in.garp = nil
	switch {
	case from == vrrp.StateMaster:
		in.setRole(false)
		for _, v := range in.vips {
			if _, err := in.vipMgr.Remove(v); err != nil {
				in.log.Error("removing VIP failed", "vip", v.String(), "err", err)
			}
		}
	case from == vrrp.StateInit && to == vrrp.StateBackup:
		// Adopted VIPs keep forwarding until the election decides.
	default:
		in.releaseInherited("entering " + to.String())
	}
	in.transition(from, to)
}

// announceDue sends the gratuitous ARPs / NAs the schedule says are due.
func (in *instance) announceDue(now time.Time) {
	if in.garp == nil || in.ann == nil {
		return
	}
	for n := in.garp.Due(now); n > 0; n-- {
		for _, v := range in.vips {
			if err := in.ann.Announce(v.Prefix.Addr()); err != nil {
				in.log.Warn("announcing VIP failed", "vip", v.Prefix.Addr(), "err", err)
			}
		}
	}
}

// transition records the change, tells the daemon and runs the notify
// scripts (asynchronously: a hung script never holds up the election).
func (in *instance) transition(from, to vrrp.State) {
	in.mu.Lock()
	in.status.LastTransition = time.Now()
	in.mu.Unlock()
	if in.hooks.onState != nil {
		in.hooks.onState(in, from, to)
	}
	in.notify(to)
}

func (in *instance) notify(to vrrp.State) {
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
		in.notifier.Notify(scriptCommand(specific, 0))
	}
	if !n.Any.IsZero() {
		in.notifier.Notify(scriptCommand(n.Any, 0), "INSTANCE", in.cfg.Name, state, strconv.Itoa(int(in.m.Priority())))
	}
}

// snapshot refreshes the status the control socket reads.
func (in *instance) snapshot() {
	st := in.m.Stats()
	in.mu.Lock()
	defer in.mu.Unlock()
	s := &in.status
	in.state = in.m.State()
	s.State = in.state.String()
	s.EffectivePriority = int(in.m.Priority())
	if a := in.m.MasterAddr(); a.IsValid() {
		s.Master = a.String()
		s.MasterPriority = int(in.m.MasterPriority())
	} else {
		s.Master, s.MasterPriority = "", 0
	}
	s.MasterIsSelf = in.m.State() == vrrp.StateMaster
	if s.MasterIsSelf {
		s.Master, s.MasterPriority = in.conn.Source().String(), int(in.m.Priority())
	}
	s.MasterAdvertInterval = in.m.MasterAdverInterval().String()
	s.Transitions = st.Transitions
}

// setConfiguredPriority records a priority changed by a reload.
func (in *instance) setConfiguredPriority(p int) {
	in.mu.Lock()
	in.status.ConfiguredPriority = p
	in.mu.Unlock()
}

// State is the instance's state as of its last step.
func (in *instance) State() vrrp.State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

// Status returns a copy of the instance's status with live counters.
func (in *instance) Status() InstanceStatus {
	in.mu.Lock()
	s := in.status
	s.VIPs = append([]string(nil), in.status.VIPs...)
	in.mu.Unlock()
	s.AdvertsIn = in.advertsIn.Load()
	s.AdvertsOut = in.advertsOut.Load()
	s.Drops = map[string]uint64{}
	for i := range in.drops {
		if n := in.drops[i].Load(); n > 0 {
			s.Drops[vrrp.DropReason(i).String()] = n
		}
	}
	if n := in.queueFull.Load(); n > 0 {
		s.Drops["queue_full"] = n
	}
	return s
}

// receiveLoop reads the raw socket until ctx ends and hands datagrams to
// the instance. Errors about one datagram are counted; a closed socket ends
// the loop.
func (in *instance) receiveLoop(ctx context.Context) {
	for {
		p, err := in.conn.Recv(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, vrrpnet.ErrClosed) {
				return
			}
			if errors.Is(err, vrrpnet.ErrTruncated) || errors.Is(err, vrrpnet.ErrBadIPv4Header) {
				in.drops[vrrp.DropTruncated].Add(1)
				continue
			}
			in.log.Warn("receiving adverts failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		in.deliver(received{payload: p.Payload, src: p.Src, dst: p.Dst, ttl: p.TTL})
	}
}
