package instance

import (
	"net/netip"
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// Near-miss telemetry: the gaps between consecutive adverts from the
// current MASTER, by their kernel-side arrival times (the XDP program's
// bpf_ktime_get_ns stamp, or the raw socket's SO_TIMESTAMPNS), so a daemon
// that was itself stalled still measures what the wire did. A gap near
// Master_Down_Interval is a failover that nearly happened.

// gapBoundsRel are the histogram's bucket bounds in advert intervals: on
// time (≤1.1), one advert late (≤2.1), two late, and up to the default
// Master_Down_Interval (3 intervals + skew) and beyond.
var gapBoundsRel = []float64{0.5, 0.9, 1.1, 1.5, 2.1, 2.5, 3.1, 4, 6}

const (
	// gapWindow is how far back the largest recent gap looks.
	gapWindow = time.Minute
	// gapWarnRatio is the fraction of Master_Down_Interval past which a
	// gap is logged as a near miss.
	gapWarnRatio = 0.5
	// gapWarnEvery rate-limits the near-miss warning.
	gapWarnEvery = 10 * time.Second
)

// GapHistogram is a cumulative histogram of advert gaps in seconds:
// Counts[i] gaps ≤ Bounds[i].
type GapHistogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

type gapSample struct {
	at    time.Time
	gap   time.Duration
	ratio float64
}

// gapTracker measures the gaps between adverts from one MASTER.
type gapTracker struct {
	bounds []time.Duration
	counts []uint64
	count  uint64
	sum    time.Duration
	// last is when the MASTER's last advert arrived; from is its address.
	last time.Time
	from netip.Addr
	// recent are the gaps of the last gapWindow, oldest first.
	recent []gapSample
	// warnedAt is the last near-miss warning; suppressed counts the near
	// misses not logged since.
	warnedAt   time.Time
	suppressed int
}

func newGapTracker(interval time.Duration) gapTracker {
	g := gapTracker{counts: make([]uint64, len(gapBoundsRel))}
	for _, r := range gapBoundsRel {
		g.bounds = append(g.bounds, time.Duration(r*float64(interval)))
	}
	return g
}

// reset forgets the last advert: the next one starts a new series (the
// MASTER changed, or we are not BACKUP).
func (g *gapTracker) reset() { g.last, g.from = time.Time{}, netip.Addr{} }

// observe records an advert from src that arrived at at, while
// Master_Down_Interval is mdi. It returns the gap to the previous advert
// from src and its ratio to mdi; ok is false for the first of a series.
func (g *gapTracker) observe(at time.Time, src netip.Addr, mdi time.Duration) (gap time.Duration, ratio float64, ok bool) {
	last, from := g.last, g.from
	if from == src && at.Before(last) {
		return 0, 0, false // out of order: the series goes on from the later one
	}
	g.last, g.from = at, src
	if last.IsZero() || from != src {
		return 0, 0, false
	}
	gap = at.Sub(last)
	for i, b := range g.bounds {
		if gap <= b {
			g.counts[i]++
		}
	}
	g.count++
	g.sum += gap
	if mdi > 0 {
		ratio = float64(gap) / float64(mdi)
	}
	g.recent = append(g.recent, gapSample{at: at, gap: gap, ratio: ratio})
	g.prune(at)
	return gap, ratio, true
}

// prune drops the gaps older than gapWindow before now.
func (g *gapTracker) prune(now time.Time) {
	n := 0
	for n < len(g.recent) && now.Sub(g.recent[n].at) > gapWindow {
		n++
	}
	if n > 0 {
		g.recent = append(g.recent[:0], g.recent[n:]...)
	}
}

// largest is the largest gap of the gapWindow before now, with its ratio
// to Master_Down_Interval.
func (g *gapTracker) largest(now time.Time) (time.Duration, float64) {
	var gap time.Duration
	var ratio float64
	for _, s := range g.recent {
		if now.Sub(s.at) <= gapWindow && s.ratio >= ratio {
			gap, ratio = s.gap, s.ratio
		}
	}
	return gap, ratio
}

// histogram is a copy of the histogram in seconds.
func (g *gapTracker) histogram() *GapHistogram {
	h := &GapHistogram{Counts: append([]uint64(nil), g.counts...), Count: g.count, Sum: g.sum.Seconds()}
	for _, b := range g.bounds {
		h.Bounds = append(h.Bounds, b.Seconds())
	}
	return h
}

// warnDue reports whether a near miss at now is to be logged, and how
// many were suppressed since the last one logged.
func (g *gapTracker) warnDue(now time.Time) (bool, int) {
	if !g.warnedAt.IsZero() && now.Sub(g.warnedAt) < gapWarnEvery {
		g.suppressed++
		return false, 0
	}
	n := g.suppressed
	g.warnedAt, g.suppressed = now, 0
	return true, n
}

// observeGap records the arrival at at of a valid advert with priority
// prio from src: while BACKUP and src is the MASTER, the gap since its
// previous advert is measured, and logged (rate-limited) when it passes
// half of Master_Down_Interval.
func (in *Instance) observeGap(at time.Time, prio uint8, src netip.Addr) {
	mdi := in.m.MasterDownInterval()
	in.mu.Lock()
	if in.m.State() != vrrp.StateBackup || prio == vrrp.PriorityStop || src.Unmap() != in.m.MasterAddr() {
		in.gaps.reset()
		in.mu.Unlock()
		return
	}
	gap, ratio, ok := in.gaps.observe(at, src.Unmap(), mdi)
	warn, suppressed := false, 0
	if ok && ratio > gapWarnRatio {
		warn, suppressed = in.gaps.warnDue(at)
	}
	in.mu.Unlock()
	if warn {
		in.log.Warn("near miss: gap between the MASTER's adverts passed half of Master_Down_Interval",
			"master", src, "gap", gap, "master_down_interval", mdi, "ratio", ratio, "suppressed", suppressed)
	}
}
