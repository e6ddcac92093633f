package instance

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// Split-brain detection. While MASTER, two kinds of evidence say another
// node also holds the VIPs: an ARP packet or neighbour advertisement for a
// VIP with a MAC that is not ours, and an advert for our VRID from another
// router (RFC 5798 §6.4.3: the machine yields to a better one and answers
// a worse one with an advert at once, so that it yields). Each is counted
// and the first of an episode is logged (then at most every
// conflictLogEvery). Once no evidence has come for conflictQuiet adverts'
// time, the episode is over: a MASTER that is still MASTER sends its GARP /
// NA schedule again (the LAN's ARP caches may point at the loser:
// keepalived issue #166) and re-runs notify_master, so what follows the
// MASTER follows again.
//
// An episode with adverts was settled by the election: the re-announce
// is at once. One with ARP / NA claims only means the other node does
// not hear our adverts (VRRP blocked, L2 working): it is still MASTER and
// re-announces too, so each re-announcement would start the other's next
// episode, a GARP war. The first such episode of a MASTER tenure
// re-announces at once; each later one owes a re-announcement that is
// made a backoff later (doubling from conflictQuiet to conflictBackoffMax)
// if no new evidence came by then: the war slows down, and once the other
// node stopped claiming (healed and yielded, without our hearing an
// advert of its) the LAN is repaired within conflictBackoffMax.
const (
	conflictQuietAdverts = 3
	conflictLogEvery     = 10 * time.Second
	conflictBackoffMax   = time.Minute
)

// ClaimReader is where the ARP packets and neighbour advertisements seen
// on the interface arrive (*netif.ClaimListener).
type ClaimReader interface {
	// ReadClaim blocks until the next frame; an error wrapping
	// netif.ErrNotClaim is a frame that did not decode, any other ends
	// the watch.
	ReadClaim() (netif.Claim, error)
}

// ClaimWatch is one IO's listener for ARP / NA claims and the MACs that
// are ours (the interface's, the VMAC with use_vmac): claims with them are
// no conflict.
type ClaimWatch struct {
	// Reader is nil when claims are not watched.
	Reader ClaimReader
	Own    []net.HardwareAddr
}

// Claimed is an input: a claim seen on the LAN.
type Claimed struct{ Claim netif.Claim }

func (Claimed) isInput() {}

// Conflict is one piece of split-brain evidence, as status shows it.
type Conflict struct {
	Time time.Time `json:"time"`
	// Kind is garp, arp-reply, arp-request, na or advert.
	Kind string `json:"kind"`
	// VIP and MAC are the claimed address and the other MAC (ARP / NA).
	VIP string `json:"vip,omitempty"`
	MAC string `json:"mac,omitempty"`
	// Source and Priority are the other MASTER's (advert).
	Source   string `json:"source,omitempty"`
	Priority int    `json:"priority,omitempty"`
	// Yielded is set when the advert was better than ours: we left
	// MASTER (as after a partition heals, and as in a plain preemption).
	Yielded bool `json:"yielded,omitempty"`
}

// ConflictStatus is the split-brain part of Status.
type ConflictStatus struct {
	// Conflicts counts the evidence seen while MASTER.
	Conflicts uint64 `json:"conflicts"`
	// ConflictActive is set from the first evidence until conflictQuiet
	// without any.
	ConflictActive bool      `json:"conflict_active"`
	LastConflict   *Conflict `json:"last_conflict,omitempty"`
	// ConflictReannounced counts the episodes that ended with this node
	// still MASTER, re-announcing its VIPs.
	ConflictReannounced uint64 `json:"conflict_reannounced"`
	// ClaimsUndecoded counts ARP / NA frames that did not decode.
	ClaimsUndecoded uint64 `json:"claims_undecoded"`
}

// conflictState is an episode of split-brain evidence.
type conflictState struct {
	// last is the time of the last evidence; zero when no episode is on.
	last time.Time
	// masterEpoch is the machine's BecameMaster count when the episode
	// began: an instance that left MASTER since has nothing to repair.
	masterEpoch uint64
	loggedAt    time.Time
	unlogged    int
	// undecoded counts the listener's frames that did not decode (the
	// watch goroutine adds, Status reads).
	undecoded atomic.Uint64
	// advert is set when the episode had an advert from another router,
	// claims when it had an ARP / NA claim.
	advert, claims bool
	// fresh is set when the episode began within an advert interval of
	// our becoming MASTER: the other one had not yet heard our first
	// advert (a preemption's usual overlap), and our takeover's GARPs
	// went out after anything it announced.
	fresh bool
	// lowerPrioAt is the last garp_lower_prio round sent during the
	// episode, claimAt its last ARP / NA claim; zero when none.
	lowerPrioAt, claimAt time.Time

	// Kept across episodes within one MASTER tenure (claims only):
	// backoff is the delay of the next owed re-announcement, zero before
	// the first claims-only episode; owedAt is when an owed one is made.
	backoff time.Duration
	owedAt  time.Time
	tenure  uint64
}

// conflictQuiet is how long an episode lasts after its last evidence.
func (in *Instance) conflictQuiet() time.Duration {
	return conflictQuietAdverts * in.cfg.AdvertInt
}

// conflictEnd is when the current episode ends or an owed
// re-announcement is due; zero when neither.
func (in *Instance) conflictEnd() time.Time {
	if in.conflict.last.IsZero() {
		return in.conflict.owedAt
	}
	return in.conflict.last.Add(in.conflictQuiet())
}

// claimed handles an ARP / NA claim: a VIP with another MAC while MASTER
// is a conflict.
func (in *Instance) claimed(now time.Time, c netif.Claim) {
	if in.m.State() != vrrp.StateMaster || !slices.Contains(in.vipAddrs, c.Addr.Unmap()) {
		return
	}
	for _, own := range in.io.Claims.Own {
		if bytes.Equal(own, c.MAC) {
			return
		}
	}
	in.conflict.claims = true
	in.conflict.claimAt = now
	in.conflictSeen(now, Conflict{Kind: string(c.Kind), VIP: c.Addr.String(), MAC: c.MAC.String()})
}

// advertWhileMaster counts an advert from another router for our VRID
// received while MASTER (before the machine decides who yields).
func (in *Instance) advertWhileMaster(now time.Time, a *vrrp.Advert, src netip.Addr) {
	if in.m.State() != vrrp.StateMaster || a.Priority == vrrp.PriorityStop || src.Unmap() == in.io.Sender.Source() {
		return
	}
	in.conflict.advert = true
	// As the machine decides (two owners: it steps down to 254).
	p, src := in.m.Priority(), src.Unmap()
	yield := a.Priority > p || a.Priority == vrrp.PriorityOwner || (a.Priority == p && src.Compare(in.io.Sender.Source()) > 0)
	in.conflictSeen(now, Conflict{Kind: "advert", Source: src.String(), Priority: int(a.Priority), Yielded: yield})
}

func (in *Instance) conflictSeen(now time.Time, c Conflict) {
	c.Time = now
	cs := &in.conflict
	starts := cs.last.IsZero()
	in.mu.Lock()
	if starts {
		cs.masterEpoch = in.m.Stats().BecameMaster
		cs.fresh = now.Sub(in.status.LastTransition) < in.cfg.AdvertInt
	}
	cs.last, cs.owedAt = now, time.Time{}
	in.status.Conflicts++
	in.status.ConflictActive = true
	in.status.LastConflict = &c
	n := in.status.Conflicts
	in.mu.Unlock()
	if !starts && now.Sub(cs.loggedAt) < conflictLogEvery {
		cs.unlogged++
		return
	}
	attrs := []any{"kind", c.Kind, "vip", c.VIP, "mac", c.MAC, "source", c.Source, "priority", c.Priority,
		"conflicts", n, "not_logged", cs.unlogged}
	if c.Yielded {
		// A plain preemption looks the same: not a warning.
		in.log.Info("another MASTER with a better priority or address: yielding (RFC 5798 §6.4.3)", attrs...)
	} else {
		in.log.Warn("split brain: another node claims our VRRP instance while we are MASTER", attrs...)
	}
	cs.loggedAt, cs.unlogged = now, 0
}

// conflictDue ends the episode once it has been quiet for conflictQuiet;
// an instance still MASTER (and MASTER since the episode began)
// re-announces its VIPs and re-runs notify_master.
func (in *Instance) conflictDue(now time.Time) {
	end := in.conflictEnd()
	if end.IsZero() || now.Before(end) {
		return
	}
	cs := &in.conflict
	tenure := in.m.Stats().BecameMaster
	master := in.m.State() == vrrp.StateMaster
	if cs.last.IsZero() { // an owed re-announcement
		cs.owedAt = time.Time{}
		if master && tenure == cs.tenure {
			in.reannounce(now, "owed after a split brain seen in ARP / NA only")
		}
		return
	}
	repair := master && tenure == cs.masterEpoch
	advert, overlap := cs.advert, cs.fresh && !cs.claims
	// The lower priority adverts were answered with garp_lower_prio
	// rounds (keepalived's own repair), after the last claim if any, or
	// a delayed round is still to come: the LAN has been told already.
	lowerPrioRepaired := !cs.lowerPrioAt.IsZero() && (cs.claimAt.Before(cs.lowerPrioAt) || len(in.lowerPrioAt) > 0)
	cs.last, cs.advert, cs.claims, cs.fresh = time.Time{}, false, false, false
	cs.lowerPrioAt, cs.claimAt = time.Time{}, time.Time{}
	in.mu.Lock()
	in.status.ConflictActive = false
	in.mu.Unlock()
	if !repair {
		in.log.Info("split brain over: this node is no longer the MASTER it was")
		return
	}
	if cs.tenure != tenure {
		cs.tenure, cs.backoff = tenure, 0
	}
	switch {
	case overlap:
		in.log.Info("the other MASTER yielded right after our takeover: its GARPs stand")
	case advert && lowerPrioRepaired:
		cs.backoff = 0
		in.log.Info("split brain over: settled by the election; the garp_lower_prio rounds re-announced the VIPs already")
	case advert && in.cfg.StrictMode:
		// vrrp_strict: RFC 5798 §6.4.3 discards a lower priority advert,
		// and keepalived sends nothing for it (no answer, no GARP).
		cs.backoff = 0
		in.log.Info("split brain over: settled by the election; vrrp_strict sends no GARPs for lower priority adverts")
	case advert:
		cs.backoff = 0
		in.reannounce(now, "the election settled it")
	case cs.backoff == 0:
		cs.backoff = in.conflictQuiet()
		in.reannounce(now, "seen in ARP / NA only")
	default:
		cs.owedAt = now.Add(cs.backoff)
		in.log.Warn("split brain seen in ARP / NA only is over: re-announcing after a backoff", "in", cs.backoff)
		cs.backoff = min(2*cs.backoff, conflictBackoffMax)
	}
}

// reannounce sends the GARP / NA schedule again and re-runs notify_master.
func (in *Instance) reannounce(now time.Time, why string) {
	in.mu.Lock()
	in.status.ConflictReannounced++
	in.mu.Unlock()
	in.log.Warn("split brain over: re-announcing the VIPs and re-running notify_master", "why", why, "quiet", in.conflictQuiet())
	in.garp = netif.NewGARPSchedule(in.garpTiming, now)
	in.announceDue(now)
	in.notify(vrrp.StateMaster)
}

// watchClaims posts the claims of the current IO's listener until it is
// closed.
func (in *Instance) watchClaims() {
	r := in.io.Claims.Reader
	if r == nil {
		return
	}
	go func() {
		for {
			c, err := r.ReadClaim()
			if errors.Is(err, netif.ErrNotClaim) {
				if n := in.conflict.undecoded.Add(1); n%1000 == 1 {
					in.log.Warn("ARP/NA frame dropped: it does not decode", "err", err, "dropped", n)
				}
				continue
			}
			if err != nil {
				if !errors.Is(err, net.ErrClosed) && in.ctx.Err() == nil {
					in.log.Warn("ARP/NA listener stopped", "err", err)
				}
				return
			}
			if slices.Contains(in.vipAddrs, c.Addr.Unmap()) {
				in.Post(Claimed{Claim: c})
			}
		}
	}()
}

// openClaimWatch listens on iface (the parent with use_vmac: frames for
// the VMAC pass it first); ours are its MAC and vmac, if any.
func openClaimWatch(iface string, vmac net.HardwareAddr) (ClaimWatch, func() error, error) {
	l, err := netif.OpenClaimListener(iface)
	if err != nil {
		return ClaimWatch{}, nil, err
	}
	w := ClaimWatch{Reader: l, Own: []net.HardwareAddr{l.MAC()}}
	if vmac != nil {
		w.Own = append(w.Own, vmac)
	}
	return w, l.Close, nil
}
