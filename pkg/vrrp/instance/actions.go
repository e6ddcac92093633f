package instance

import (
	"time"

	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// VIP add retries: a VIP netlink refused is tried again after
// vipRetryBackoff, doubling, vipAttempts times in all; if it still fails
// the instance goes FAULT (sending its priority-0 advert, so the BACKUP
// takes over at once) for vipFaultHold, then tries again.
const (
	vipAttempts     = 4
	vipRetryBackoff = 100 * time.Millisecond
	vipFaultHold    = 3 * time.Second
)

// vipRetry is the state of VIPs that failed to be added.
type vipRetry struct {
	pending  []netif.VIP
	attempts int
	at       time.Time // next retry; zero when nothing is pending
	// faultUntil is when a VIP fault ends; zero when there is none.
	faultUntil time.Time
}

func (r *vipRetry) next() time.Time {
	if r.at.IsZero() {
		return r.faultUntil
	}
	if r.faultUntil.IsZero() || r.at.Before(r.faultUntil) {
		return r.at
	}
	return r.faultUntil
}

// perform carries out the machine's actions in order.
func (in *Instance) perform(acts []vrrp.Action) {
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
		case vrrp.MasterRxLowerPri:
			in.masterRxLowerPri(in.d.Clock.Now(), a)
		}
	}
	in.snapshot()
}

func (in *Instance) sendAdvert(prio uint8) {
	adv := &vrrp.Advert{
		Version: in.recv.Version, Type: vrrp.TypeAdvertisement, VRID: in.recv.VRID, Priority: prio,
		AuthType: in.recv.AuthType, AuthData: in.recv.AuthData, Interval: in.cfg.AdvertInt, Addrs: in.advertised,
	}
	src := in.io.Sender.Source()
	for _, dst := range in.io.Sender.Destinations() {
		b, err := adv.Marshal(src, dst)
		if err == nil {
			err = in.io.Sender.Send(b, dst)
		}
		if err != nil {
			in.log.Warn("sending advert failed", "dst", dst, "err", err)
			continue
		}
		in.advertsOut.Add(1)
	}
}

func (in *Instance) becomeMaster(from vrrp.State) {
	now := in.d.Clock.Now()
	in.log.Info("entering MASTER state", "from", from.String(), "priority", in.m.Priority())
	in.inherited = false
	in.vipRetry.pending, in.vipRetry.attempts, in.vipRetry.at = nil, 1, time.Time{}
	in.addVIPs(now, in.vips)
	// Forward before announcing: the first frames after the GARP must not
	// reach the kernel stack.
	in.d.Role.SetForwarding(in.vipAddrs, true)
	in.garp = netif.NewGARPSchedule(in.garpTiming, now)
	in.announceDue(now)
	in.mu.Lock()
	in.becameBy[in.m.MasterCause()]++
	in.gaps.reset()
	in.mu.Unlock()
	in.transition(from, vrrp.StateMaster)
}

// addVIPs adds vips; the ones netlink refuses are kept for a retry.
func (in *Instance) addVIPs(now time.Time, vips []netif.VIP) {
	var failed []netif.VIP
	for _, v := range vips {
		existed, err := in.d.VIPs.Add(v)
		if err != nil {
			in.log.Error("adding VIP failed", "vip", v.String(), "attempt", in.vipRetry.attempts, "err", err)
			failed = append(failed, v)
		} else if existed {
			in.d.VIPs.Claim(v) // configured, so ours to remove on leaving
		}
	}
	in.vipRetry.pending = failed
	in.vipRetry.at = time.Time{}
	if len(failed) > 0 {
		in.vipRetry.at = now.Add(vipRetryBackoff << (in.vipRetry.attempts - 1))
	}
}

// retryVIPs tries the refused VIPs again when their time has come; after
// the last attempt the instance goes FAULT.
func (in *Instance) retryVIPs(now time.Time) {
	r := &in.vipRetry
	if !r.faultUntil.IsZero() && !now.Before(r.faultUntil) {
		r.faultUntil = time.Time{}
		in.vipFault = false
		in.log.Info("retrying after the VIP fault")
		in.faultChanged(now)
	}
	if r.at.IsZero() || now.Before(r.at) {
		return
	}
	if in.m.State() != vrrp.StateMaster {
		r.pending, r.at = nil, time.Time{}
		return
	}
	r.attempts++
	in.addVIPs(now, r.pending)
	if len(r.pending) == 0 {
		in.log.Info("VIPs added on retry", "attempt", r.attempts)
		in.announceAll()
		return
	}
	if r.attempts < vipAttempts {
		return
	}
	in.log.Error("VIPs could not be added: entering FAULT", "vips", len(r.pending), "attempts", r.attempts, "retry_in", vipFaultHold)
	r.pending, r.at = nil, time.Time{}
	r.faultUntil = now.Add(vipFaultHold)
	in.vipFault = true
	in.faultChanged(now)
}

func (in *Instance) leaveMaster(from, to vrrp.State) {
	in.log.Info("entering "+to.String()+" state", "from", from.String())
	in.garp = nil
	in.vipRetry.pending, in.vipRetry.at = nil, time.Time{}
	switch {
	case from == vrrp.StateMaster:
		// Stop forwarding before the VIPs go, so no frame for a VIP reaches
		// a stack that no longer has it.
		in.d.Role.SetForwarding(in.vipAddrs, false)
		in.removeVIPs()
	case from == vrrp.StateInit && to == vrrp.StateBackup:
		// Adopted VIPs keep forwarding until the election decides.
	default:
		in.releaseInherited("entering " + to.String())
	}
	in.transition(from, to)
}

func (in *Instance) removeVIPs() {
	for _, v := range in.vips {
		if _, err := in.d.VIPs.Remove(v); err != nil {
			in.log.Error("removing VIP failed", "vip", v.String(), "err", err)
		}
	}
}

// adoptLeftovers looks for VIPs a previous daemon left on the interface
// (it died as MASTER). They are claimed, so leaving MASTER removes them.
// If the dataplane still forwards them, forwarding goes on while this
// daemon's election runs, so a restart does not interrupt VIP traffic;
// otherwise they are removed now, as keepalived does at start.
func (in *Instance) adoptLeftovers() {
	var left []netif.VIP
	for _, v := range in.vips {
		if ok, err := in.d.VIPs.Present(v); err == nil && ok {
			in.d.VIPs.Claim(v)
			left = append(left, v)
		}
	}
	if len(left) == 0 {
		return
	}
	if in.d.Role.Forwarding(in.vipAddrs) {
		in.inherited = true
		in.log.Info("VIPs left forwarding by a previous daemon: forwarding goes on while the election runs", "vips", len(left))
		return
	}
	for _, v := range left {
		if _, err := in.d.VIPs.Remove(v); err != nil {
			in.log.Warn("removing a VIP left by a previous daemon failed", "vip", v.String(), "err", err)
		}
	}
	in.log.Info("removed VIPs left by a previous daemon", "vips", len(left))
}

// releaseInherited stops forwarding and removes VIPs adopted from a
// previous daemon, once this one is not going to be MASTER.
func (in *Instance) releaseInherited(why string) {
	if !in.inherited {
		return
	}
	in.inherited = false
	in.d.Role.SetForwarding(in.vipAddrs, false)
	in.removeVIPs()
	in.log.Info("released the VIPs adopted from a previous daemon", "why", why)
}

// announceDue sends the gratuitous ARPs / NAs the schedule says are due.
func (in *Instance) announceDue(now time.Time) {
	if in.garp == nil || in.io.Announcer == nil {
		return
	}
	for n := in.garp.Due(now); n > 0; n-- {
		in.announceAll()
	}
}

func (in *Instance) announceAll() {
	if in.io.Announcer == nil {
		return
	}
	in.garpRounds.Add(1)
	for _, v := range in.vipAddrs {
		if err := in.io.Announcer.Announce(v); err != nil {
			in.log.Warn("announcing VIP failed", "vip", v, "err", err)
		}
	}
}

// transition records the change, takes the sync group along and runs the
// notify scripts (asynchronously: a hung script never holds up the
// election).
func (in *Instance) transition(from, to vrrp.State) {
	in.recheckAt = time.Time{} // a late timer's recheck ends with the state it was for
	in.mu.Lock()
	in.status.LastTransition = in.d.Clock.Now()
	in.state = to
	in.mu.Unlock()
	if in.d.Group != nil {
		in.d.Group.follow(in, to)
	}
	in.notify(to)
}
