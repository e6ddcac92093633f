package netif

import (
	"errors"
	"fmt"
	"time"
)

// GARPTiming holds keepalived's gratuitous ARP / NA timing keywords.
type GARPTiming struct {
	// Delay is garp_master_delay: the second burst comes this long after
	// becoming MASTER (keepalived default 5s; 0 = no second burst).
	Delay time.Duration
	// Repeat is garp_master_repeat: announcements per burst (default 5).
	Repeat int
	// Refresh is garp_master_refresh: a refresh burst every Refresh while
	// MASTER, counted from becoming MASTER (default 0 = none).
	Refresh time.Duration
	// RefreshRepeat is garp_master_refresh_repeat (default 1).
	RefreshRepeat int
	// Interval is garp_interval / vrrp_garp_interval: the gap between two
	// announcements of one burst (default 0 = all at once).
	Interval time.Duration
}

// DefaultGARPTiming is keepalived's default.
var DefaultGARPTiming = GARPTiming{Delay: 5 * time.Second, Repeat: 5, RefreshRepeat: 1}

// ErrBadGARPTiming is returned by Validate.
var ErrBadGARPTiming = errors.New("netif: invalid GARP timing")

// Validate rejects negative durations and counts.
func (t GARPTiming) Validate() error {
	if t.Delay < 0 || t.Refresh < 0 || t.Interval < 0 || t.Repeat < 0 || t.RefreshRepeat < 0 {
		return fmt.Errorf("%w: %+v", ErrBadGARPTiming, t)
	}
	return nil
}

type burst struct {
	at   time.Time
	left int
}

// GARPSchedule is the pure timing of announcements after becoming MASTER.
// It knows nothing of sockets or clocks: the caller passes the time in and
// sends as many announcements (of each VIP) as Due says.
//
//	t0                 first burst, Repeat announcements
//	t0 + Delay         second burst, Repeat announcements (if Delay > 0)
//	t0 + k*Refresh     refresh burst, RefreshRepeat announcements (k ≥ 1, if Refresh > 0)
//
// With Interval > 0, the announcements of a burst are Interval apart.
type GARPSchedule struct {
	t         GARPTiming
	bursts    []burst
	refreshAt time.Time // zero: no refresh
}

// NewGARPSchedule starts the schedule for a transition to MASTER at t0.
// Invalid (negative) values are treated as zero.
func NewGARPSchedule(t GARPTiming, t0 time.Time) *GARPSchedule {
	t.Delay, t.Refresh, t.Interval = max(t.Delay, 0), max(t.Refresh, 0), max(t.Interval, 0)
	t.Repeat, t.RefreshRepeat = max(t.Repeat, 0), max(t.RefreshRepeat, 0)
	s := &GARPSchedule{t: t}
	if t.Repeat > 0 {
		s.bursts = append(s.bursts, burst{t0, t.Repeat})
		if t.Delay > 0 {
			s.bursts = append(s.bursts, burst{t0.Add(t.Delay), t.Repeat})
		}
	}
	if t.Refresh > 0 && t.RefreshRepeat > 0 {
		s.refreshAt = t0.Add(t.Refresh)
	}
	return s
}

// Due returns how many announcements to send at now and advances the
// schedule past them. After a clock jump, missed refreshes are not replayed:
// one refresh burst is sent and the next is Refresh after now.
func (s *GARPSchedule) Due(now time.Time) int {
	if !s.refreshAt.IsZero() && !now.Before(s.refreshAt) {
		s.bursts = append(s.bursts, burst{s.refreshAt, s.t.RefreshRepeat})
		s.refreshAt = s.refreshAt.Add(s.t.Refresh)
		if !s.refreshAt.After(now) {
			s.refreshAt = now.Add(s.t.Refresh)
		}
	}
	n := 0
	kept := s.bursts[:0]
	for _, b := range s.bursts {
		if now.Before(b.at) {
			kept = append(kept, b)
			continue
		}
		if s.t.Interval == 0 {
			n += b.left
			continue
		}
		n++
		b.left--
		b.at = b.at.Add(s.t.Interval)
		if b.left > 0 {
			kept = append(kept, b)
		}
	}
	s.bursts = kept
	return n
}

// Next is when Due next returns more than zero; ok is false when nothing is
// left (no refresh configured and all bursts sent).
func (s *GARPSchedule) Next() (at time.Time, ok bool) {
	for _, b := range s.bursts {
		if !ok || b.at.Before(at) {
			at, ok = b.at, true
		}
	}
	if !s.refreshAt.IsZero() && (!ok || s.refreshAt.Before(at)) {
		at, ok = s.refreshAt, true
	}
	return at, ok
}
