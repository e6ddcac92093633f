package instance

import (
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// tick handles whatever has come due: an IO rebuild, VIP retries, the
// machine's timer, the GARP schedules, the split-brain episode.
func (in *Instance) tick(now time.Time) {
	if !in.relinkAt.IsZero() && !now.Before(in.relinkAt) {
		in.relink(now)
	}
	in.retryVIPs(now)
	in.timerDue(now)
	in.announceDue(now)
	in.lowerPrioDue(now)
	in.conflictDue(now)
}

// timerDue steps the machine's timer if it has passed, but only after what
// the receive path already holds has been heard: a daemon that was frozen
// or starved while its peer kept advertising must not take over (BACKUP)
// or talk over a better MASTER (MASTER) on a timer those adverts would
// have reset.
func (in *Instance) timerDue(now time.Time) {
	if !in.recheckAt.IsZero() && now.Before(in.recheckAt) {
		return
	}
	d := in.m.Deadline()
	if d.IsZero() || now.Before(d) {
		return
	}
	in.drainInbox()
	if d = in.m.Deadline(); d.IsZero() || now.Before(d) {
		return
	}
	if in.heardPeer(now) {
		if d = in.m.Deadline(); d.IsZero() || now.Before(d) {
			return
		}
	}
	if in.recheckAt.IsZero() && in.d.PeerSeen == nil && now.Sub(d) > in.m.MasterAdverInterval() {
		// The timer fired more than an interval late: the daemon was
		// stalled, and the socket may still hold adverts the receive
		// loop has not read. Give it one interval.
		in.recheckAt = now.Add(in.m.MasterAdverInterval())
		in.log.Warn("timer fired late: rechecking for adverts before acting", "late", now.Sub(d), "state", in.m.State().String())
		return
	}
	in.recheckAt = time.Time{}
	in.perform(in.m.Step(now, vrrp.Timer{}))
}

// drainInbox handles the adverts already queued (at most a full inbox, so
// a flood cannot hold the timer off for ever).
func (in *Instance) drainInbox() {
	for n := len(in.inbox); n > 0; n-- {
		select {
		case x := <-in.inbox:
			in.handle(x)
		default:
			return
		}
	}
}

// sameAdvertWithin is how far apart the inbox's arrival stamp of an advert
// and PeerSeen's (now − age, read a moment later) may be for the same one.
const sameAdvertWithin = 5 * time.Millisecond

// heardPeer asks PeerSeen for the last valid advert the receive path saw,
// and when it is recent (younger than Master_Down_Interval) steps it into
// the machine as received when it arrived. It reports whether it did.
func (in *Instance) heardPeer(now time.Time) bool {
	if in.d.PeerSeen == nil {
		return false
	}
	p, ok := in.d.PeerSeen.LastAdvert()
	if !ok || p.Age < 0 || p.Age >= in.m.MasterDownInterval() || p.Src.Unmap() == in.io.Sender.Source() {
		return false
	}
	arrived := now.Add(-p.Age)
	if !in.lastAdvertAt.IsZero() && !arrived.After(in.lastAdvertAt.Add(sameAdvertWithin)) {
		// The inbox delivered it already (or it was stepped here at an
		// earlier timer): stepping it again would answer, announce and
		// notify for one advert several times.
		return false
	}
	in.lastAdvertAt = arrived
	a := &vrrp.Advert{
		Version: in.recv.Version, Type: vrrp.TypeAdvertisement, VRID: in.recv.VRID,
		Priority: p.Priority, Interval: p.Interval, Addrs: in.advertised,
	}
	in.log.Info("timer due but the receive path heard the peer", "src", p.Src, "priority", p.Priority, "age", p.Age)
	in.perform(in.m.Step(arrived, vrrp.AdvertReceived{Advert: a, Src: p.Src}))
	return true
}
