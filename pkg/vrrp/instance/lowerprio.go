package instance

import (
	"time"

	"github.com/xdpvip/xdpvip/pkg/script"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// A MASTER that hears a lower priority advert (the other router became
// MASTER beside it: a partition, a stalled peer) keeps the VIPs and, as
// keepalived 2.2.7's vrrp_state_master_rx does:
//   - sends garp_lower_prio_repeat rounds of gratuitous ARP / unsolicited NA
//     for its VIPs at once and, when garp_lower_prio_delay is set, as many
//     once more that long after (vrrp_lower_prio_gratuitous_arp_thread),
//     so the LAN's caches come back from the lower one;
//   - has every other member of its vrrp_sync_group with
//     garp_lower_prio_repeat set do the same for its own VIPs;
//   - runs notify_master_rx_lower_pri.
//
// Rounds are sent only while the instance holds its VIPs (keepalived's
// VRRP_VIP_ISSET): a delayed round that comes due after the instance left
// MASTER sends nothing. Every lower priority advert starts its own delayed
// round, as each starts a keepalived timer thread.

// syncLowerPrio is an input: another member of the sync group heard a
// lower priority advert.
type syncLowerPrio struct{}

func (syncLowerPrio) isInput() {}

// masterRxLowerPri carries out the machine's MasterRxLowerPri.
func (in *Instance) masterRxLowerPri(now time.Time, a vrrp.MasterRxLowerPri) {
	in.rxLowerPri.Add(1)
	in.log.Debug("advert with a lower priority received while MASTER", "src", a.Src, "priority", a.Priority,
		"ours", in.m.Priority(), "answered", !in.cfg.LowerPrioNoAdvert, "garp_rounds", in.cfg.GarpLowerPrioRepeat)
	in.lowerPrioAnnounce(now)
	if in.d.Group != nil {
		in.d.Group.lowerPrio(in)
	}
	if n := in.cfg.Notify.MasterRxLowerPri; !n.IsZero() {
		in.d.Notifier.Notify(script.Command{Line: n.Command})
	}
}

// lowerPrioAnnounce sends the garp_lower_prio_repeat rounds now and
// schedules the delayed ones (keepalived's vrrp_send_link_update plus its
// timer thread).
func (in *Instance) lowerPrioAnnounce(now time.Time) {
	n := in.cfg.GarpLowerPrioRepeat
	if n <= 0 {
		return
	}
	in.lowerPrioRounds(now, n)
	if d := in.cfg.GarpLowerPrioDelay; d > 0 {
		in.lowerPrioAt = append(in.lowerPrioAt, now.Add(d))
	}
}

// lowerPrioRounds sends n rounds if the instance holds its VIPs.
func (in *Instance) lowerPrioRounds(now time.Time, n int) {
	if in.m.State() != vrrp.StateMaster || in.io.Announcer == nil {
		return
	}
	for range n {
		in.announceAll()
	}
	if !in.conflict.last.IsZero() {
		in.conflict.lowerPrioAt = now
	}
}

// lowerPrioDue sends the delayed rounds that have come due.
func (in *Instance) lowerPrioDue(now time.Time) {
	due := 0
	for due < len(in.lowerPrioAt) && !now.Before(in.lowerPrioAt[due]) {
		due++
	}
	if due == 0 {
		return
	}
	in.lowerPrioAt = append(in.lowerPrioAt[:0], in.lowerPrioAt[due:]...)
	for range due {
		in.lowerPrioRounds(now, in.cfg.GarpLowerPrioRepeat)
	}
}

// nextLowerPrio is when the next delayed round is due; zero when none.
func (in *Instance) nextLowerPrio() time.Time {
	if len(in.lowerPrioAt) == 0 {
		return time.Time{}
	}
	return in.lowerPrioAt[0]
}

// lowerPrio tells the other members that from heard a lower priority
// advert; those with garp_lower_prio_repeat set announce their VIPs.
func (g *SyncGroup) lowerPrio(from *Instance) {
	g.mu.Lock()
	members := append([]*Instance(nil), g.members...)
	g.mu.Unlock()
	for _, m := range members {
		if m != from && m.cfg.GarpLowerPrioRepeat > 0 {
			m.Post(syncLowerPrio{})
		}
	}
}
