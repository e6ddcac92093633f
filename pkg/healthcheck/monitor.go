package healthcheck

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/xdpvip/xdpvip/pkg/script"
)

// CheckerConfig is one checker of a real server with its schedule.
type CheckerConfig struct {
	// Name identifies the checker in logs and events, e.g.
	// "TCP_CHECK 10.0.0.1:80".
	Name    string
	Checker Checker
	Timing  Timing
	// Alpha starts the checker down: the real server needs a success
	// before it is up.
	Alpha bool
}

// MonitorConfig is one real server's checkers and what to do with their
// results.
type MonitorConfig struct {
	// VirtualServer and RealServer name the servers in logs and events,
	// e.g. "10.0.0.100:80" and "192.168.1.10:80".
	VirtualServer, RealServer string
	// Weight is the real server's configured weight, reported while no
	// misc_dynamic checker sets one.
	Weight   int
	Checkers []CheckerConfig
	// Omega runs notify_down on Stop for a server that is up.
	Omega bool
	// NotifyUp and NotifyDown are run (without extra arguments, as
	// keepalived) on the server's transitions; empty Line means none.
	NotifyUp, NotifyDown script.Command
	// Notifier runs the notify scripts; nil makes one per Monitor.
	Notifier *script.Notifier
	// OnChange is called on every transition and dynamic weight change,
	// in order, one call at a time per Monitor. It must not call the
	// Monitor's methods.
	OnChange func(Event)
	// Logger gets one line per transition; nil means slog.Default().
	Logger *slog.Logger
	// Clock is the time source; nil means SystemClock.
	Clock Clock
	// Rand draws the warmup delay (a value in [0,1)); nil means
	// math/rand/v2.
	Rand func() float64
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// ServerUp: every checker passes now.
	ServerUp EventKind = iota + 1
	// ServerDown: a checker failed after its retries.
	ServerDown
	// WeightChanged: a dynamic checker changed the weight of a live
	// server.
	WeightChanged
)

func (k EventKind) String() string {
	switch k {
	case ServerUp:
		return "up"
	case ServerDown:
		return "down"
	case WeightChanged:
		return "weight"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change of a real server's health.
type Event struct {
	Time          time.Time
	Kind          EventKind
	VirtualServer string
	RealServer    string
	// Up and Weight are the server's state after the change.
	Up     bool
	Weight int
	// Checker is the checker whose result caused the change.
	Checker string
	// Reason is the check's error for ServerDown, nil otherwise.
	Reason error
}

// CheckerStatus is one checker's current verdict.
type CheckerStatus struct {
	Name string
	Up   bool
	// LastError is the last check's error (nil after a success).
	LastError error
	// Retrying is how many retries of the current failure have been made.
	Retrying int
	// Successes and Failures count every check since the Monitor started
	// (each retry is a check).
	Successes, Failures uint64
	// Latency is the distribution of check durations.
	Latency LatencyHistogram
}

// LatencyBounds are the upper bounds of LatencyHistogram's buckets.
var LatencyBounds = []time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// LatencyHistogram counts check durations: Counts[i] is the number of
// checks that took at most LatencyBounds[i] (cumulative, as Prometheus
// buckets are); Count and Sum cover all of them, slower ones included.
type LatencyHistogram struct {
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

func (h *LatencyHistogram) observe(d time.Duration) {
	if h.Counts == nil {
		h.Counts = make([]uint64, len(LatencyBounds))
	}
	for i, b := range LatencyBounds {
		if d <= b {
			h.Counts[i]++
		}
	}
	h.Count++
	h.Sum += d
}

func (h LatencyHistogram) clone() LatencyHistogram {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}

// Status is a real server's current health.
type Status struct {
	Up       bool
	Weight   int
	Checkers []CheckerStatus
}

// Monitor runs one real server's checkers, each on its own timer: no
// goroutine exists between checks, and one runs only while a check is in
// flight.
type Monitor struct {
	cfg   MonitorConfig
	clock Clock
	log   *slog.Logger
	ctx   context.Context
	stop  context.CancelFunc

	mu       sync.Mutex
	runs     []*checkerRun
	up       bool
	weight   int
	started  bool
	stopped  bool
	inflight sync.WaitGroup
}

type checkerRun struct {
	cfg     CheckerConfig
	state   checkState
	dynamic int  // weight from the last dynamic success
	hasDyn  bool // dynamic holds a weight
	lastErr error
	timer   Timer
	// successes, failures and latency are the checker's statistics.
	successes, failures uint64
	latency             LatencyHistogram
}

// NewMonitor validates cfg and returns a stopped Monitor whose initial
// state is down if any checker has Alpha, up otherwise.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	if len(cfg.Checkers) == 0 {
		return nil, fmt.Errorf("%w: real server %s has no checker", ErrSpec, cfg.RealServer)
	}
	m := &Monitor{cfg: cfg, clock: cfg.Clock, log: cfg.Logger}
	if m.clock == nil {
		m.clock = SystemClock{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.cfg.Notifier == nil {
		m.cfg.Notifier = &script.Notifier{Logger: m.log}
	}
	if m.cfg.Rand == nil {
		m.cfg.Rand = rand.Float64
	}
	m.up = true
	for i, c := range cfg.Checkers {
		if c.Checker == nil {
			return nil, fmt.Errorf("%w: checker %d of %s is nil", ErrSpec, i, cfg.RealServer)
		}
		if c.Timing.DelayLoop <= 0 {
			return nil, fmt.Errorf("%w: %s: delay_loop must be positive", ErrSpec, c.Name)
		}
		if c.Timing.Retry < 0 || c.Timing.DelayBeforeRetry < 0 || c.Timing.ConnectTimeout < 0 || c.Timing.Warmup < 0 {
			return nil, fmt.Errorf("%w: %s: negative timing", ErrSpec, c.Name)
		}
		r := &checkerRun{cfg: c}
		r.state.up = !c.Alpha
		if c.Alpha {
			m.up = false
		}
		m.runs = append(m.runs, r)
	}
	m.weight = cfg.Weight
	m.ctx, m.stop = context.WithCancel(context.Background())
	return m, nil
}

// Start schedules every checker's first check after a random part of its
// warmup. It is a no-op on a started Monitor.
func (m *Monitor) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.stopped {
		return
	}
	m.started = true
	for _, r := range m.runs {
		d := time.Duration(m.cfg.Rand() * float64(r.cfg.Timing.Warmup))
		m.scheduleLocked(r, d)
	}
}

// Stop cancels the pending checks, aborts the ones in flight and waits for
// them. With Omega, notify_down runs for a server that is up. Stop does not
// report an Event.
func (m *Monitor) Stop() {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	for _, r := range m.runs {
		if r.timer != nil {
			r.timer.Stop()
		}
	}
	wasUp := m.up
	m.mu.Unlock()
	m.stop()
	m.inflight.Wait()
	if m.cfg.Omega && wasUp && m.cfg.NotifyDown.Line != "" {
		m.log.Info("real server notify_down on shutdown (omega)", m.attrs("", nil)...)
		m.cfg.Notifier.Notify(m.cfg.NotifyDown)
	}
}

// Status returns the server's current health.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Up: m.up, Weight: m.weight}
	for _, r := range m.runs {
		s.Checkers = append(s.Checkers, CheckerStatus{
			Name: r.cfg.Name, Up: r.state.up, LastError: r.lastErr, Retrying: r.state.retried,
			Successes: r.successes, Failures: r.failures, Latency: r.latency.clone(),
		})
	}
	return s
}

func (m *Monitor) scheduleLocked(r *checkerRun, d time.Duration) {
	if m.stopped {
		return
	}
	r.timer = m.clock.AfterFunc(d, func() { m.run(r) })
}

// run performs one check of r and schedules the next.
func (m *Monitor) run(r *checkerRun) {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.inflight.Add(1)
	m.mu.Unlock()
	defer m.inflight.Done()

	ctx, cancel := m.ctx, context.CancelFunc(func() {})
	if t := r.cfg.Timing.ConnectTimeout; t > 0 {
		ctx, cancel = context.WithTimeout(m.ctx, t)
	}
	began := time.Now()
	weight, dynamic, err := check(ctx, r.cfg.Checker)
	took := time.Since(began)
	cancel()
	if m.ctx.Err() != nil {
		return // stopped while checking: the result means nothing
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	r.lastErr = err
	if err == nil {
		r.successes++
	} else {
		r.failures++
	}
	r.latency.observe(took)
	next, changed := r.state.observe(err == nil, r.cfg.Timing)
	if err == nil && dynamic {
		r.dynamic, r.hasDyn = weight, true
	}
	m.updateLocked(r, changed, err)
	m.scheduleLocked(r, next)
}

// check runs c, asking a DynamicChecker for its weight.
func check(ctx context.Context, c Checker) (weight int, dynamic bool, err error) {
	if dc, ok := c.(DynamicChecker); ok {
		return dc.CheckWeight(ctx)
	}
	return 0, false, c.Check(ctx)
}

// updateLocked recomputes the server's state after r's check and reports
// what changed.
func (m *Monitor) updateLocked(r *checkerRun, changed bool, err error) {
	up := true
	weight := m.cfg.Weight
	for _, x := range m.runs {
		up = up && x.state.up
		if x.hasDyn {
			weight += x.dynamic - m.cfg.Weight
		}
	}
	weight = max(weight, 0)
	prevUp, prevWeight := m.up, m.weight
	m.up, m.weight = up, weight

	ev := Event{
		Time: m.clock.Now(), VirtualServer: m.cfg.VirtualServer, RealServer: m.cfg.RealServer,
		Up: up, Weight: weight, Checker: r.cfg.Name,
	}
	switch {
	case up != prevUp && up:
		ev.Kind = ServerUp
		m.log.Info("real server up", m.attrs(r.cfg.Name, nil, slog.Int("weight", weight))...)
		m.notifyLocked(m.cfg.NotifyUp)
	case up != prevUp:
		ev.Kind, ev.Reason = ServerDown, err
		m.log.Warn("real server down", m.attrs(r.cfg.Name, err, slog.Int("retries", r.cfg.Timing.Retry))...)
		m.notifyLocked(m.cfg.NotifyDown)
	case up && weight != prevWeight:
		ev.Kind = WeightChanged
		m.log.Info("real server weight changed", m.attrs(r.cfg.Name, nil, slog.Int("from", prevWeight), slog.Int("weight", weight))...)
	default:
		if changed {
			// A checker changed but the server did not (another checker
			// still fails): log it, there is nothing to report.
			m.log.Info("checker state changed", m.attrs(r.cfg.Name, err, slog.Bool("checker_up", r.state.up))...)
		}
		return
	}
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(ev)
	}
}

func (m *Monitor) notifyLocked(c script.Command) {
	if c.Line != "" {
		m.cfg.Notifier.Notify(c)
	}
}

func (m *Monitor) attrs(checker string, err error, extra ...any) []any {
	a := []any{slog.String("virtual_server", m.cfg.VirtualServer), slog.String("real_server", m.cfg.RealServer)}
	if checker != "" {
		a = append(a, slog.String("checker", checker))
	}
	if err != nil {
		a = append(a, slog.String("reason", err.Error()))
	} else if checker != "" {
		a = append(a, slog.String("reason", "check succeeded"))
	}
	return append(a, extra...)
}
