package healthcheck

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/script"
)

// fakeClock fires AfterFunc callbacks synchronously from Advance, in time
// order, so monitor tests step through delay_loop and retries without
// sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	when    time.Time
	seq     int
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return was
		}
	}
	return false
}

// Advance moves time forward by d, firing every timer that falls due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.Slice(c.timers, func(i, j int) bool {
			if !c.timers[i].when.Equal(c.timers[j].when) {
				return c.timers[i].when.Before(c.timers[j].when)
			}
			return c.timers[i].seq < c.timers[j].seq
		})
		if len(c.timers) == 0 || c.timers[0].when.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		c.now = t.when
		c.mu.Unlock()
		t.f()
	}
}

// scriptedChecker returns the queued outcomes in order, then the last one
// forever; it counts calls.
type scriptedChecker struct {
	mu       sync.Mutex
	outcomes []outcome
	calls    int
	at       []time.Time
	clock    Clock
}

type outcome struct {
	err     error
	weight  int
	dynamic bool
}

func (s *scriptedChecker) Check(ctx context.Context) error {
	_, _, err := s.CheckWeight(ctx)
	return err
}

func (s *scriptedChecker) CheckWeight(context.Context) (int, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.at = append(s.at, s.clock.Now())
	o := s.outcomes[0]
	if len(s.outcomes) > 1 {
		s.outcomes = s.outcomes[1:]
	}
	return o.weight, o.dynamic, o.err
}

var (
	ok   = outcome{}
	fail = outcome{err: errors.New("refused")}
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Kind.String())
	}
	return out
}

func TestCheckStateRetries(t *testing.T) {
	timing := Timing{DelayLoop: 10 * time.Second, Retry: 2, DelayBeforeRetry: 3 * time.Second}
	type step struct {
		ok      bool
		next    time.Duration
		changed bool
		up      bool
	}
	tests := []struct {
		name  string
		start bool // initial up
		steps []step
	}{
		{name: "up stays up", start: true, steps: []step{
			{true, 10 * time.Second, false, true},
			{true, 10 * time.Second, false, true},
		}},
		{name: "down after retries are spent", start: true, steps: []step{
			{true, 10 * time.Second, false, true},
			{false, 3 * time.Second, false, true},
			{false, 3 * time.Second, false, true},
			{false, 10 * time.Second, true, false},
			{false, 10 * time.Second, false, false}, // down: no retries
			{true, 10 * time.Second, true, true},    // one success brings it up
		}},
		{name: "success during retries resets them", start: true, steps: []step{
			{true, 10 * time.Second, false, true},
			{false, 3 * time.Second, false, true},
			{true, 10 * time.Second, false, true},
			{false, 3 * time.Second, false, true},
			{false, 3 * time.Second, false, true},
			{false, 10 * time.Second, true, false},
		}},
		{name: "alpha: first run retries, success comes up", start: false, steps: []step{
			{false, 3 * time.Second, false, false},
			{true, 10 * time.Second, true, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := checkState{up: tt.start}
			for i, st := range tt.steps {
				next, changed := s.observe(st.ok, timing)
				if next != st.next || changed != st.changed || s.up != st.up {
					t.Fatalf("step %d (ok=%v): next=%v changed=%v up=%v; want %v %v %v",
						i, st.ok, next, changed, s.up, st.next, st.changed, st.up)
				}
			}
		})
	}
}

func TestMonitorRetryTimeline(t *testing.T) {
	clk := newFakeClock()
	chk := &scriptedChecker{clock: clk, outcomes: []outcome{ok, fail, fail, fail, fail, ok}}
	var log eventLog
	m, err := NewMonitor(MonitorConfig{
		VirtualServer: "10.0.0.100:80", RealServer: "192.168.1.10:80", Weight: 5,
		Checkers: []CheckerConfig{{Name: "TCP_CHECK", Checker: chk,
			Timing: Timing{DelayLoop: 6 * time.Second, Retry: 3, DelayBeforeRetry: 3 * time.Second, ConnectTimeout: 3 * time.Second}}},
		OnChange: log.add, Logger: quietLogger(), Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	if !m.Status().Up {
		t.Fatal("without alpha the server starts up")
	}
	m.Start()
	defer m.Stop()
	clk.Advance(0) // first check at once (no warmup)
	// ok at 0; fail at 6 (retry 1), 9 (retry 2), 12 (retry 3), 15 -> down;
	// next at 21: fail (down, no retry); at 27: ok -> up.
	clk.Advance(14 * time.Second)
	if !m.Status().Up || len(log.kinds()) != 0 {
		t.Fatalf("down before the retries were spent: %v %v", m.Status(), log.kinds())
	}
	clk.Advance(1 * time.Second) // t=15
	if m.Status().Up {
		t.Fatal("still up after retries were spent")
	}
	clk.Advance(12 * time.Second) // t=27
	if !m.Status().Up {
		t.Fatal("not up after a success")
	}
	var offsets []time.Duration
	for _, at := range chk.at {
		offsets = append(offsets, at.Sub(start))
	}
	want := []time.Duration{0, 6, 9, 12, 15, 21, 27}
	if len(offsets) != len(want) {
		t.Fatalf("checks at %v, want %v s", offsets, want)
	}
	for i := range want {
		if offsets[i] != want[i]*time.Second {
			t.Fatalf("checks at %v, want %v s", offsets, want)
		}
	}
	if got := strings.Join(log.kinds(), ","); got != "down,up" {
		t.Fatalf("events %s, want down,up", got)
	}
	// Every check is counted (retries too) and timed: ok, 4 fails, ok, ok.
	cs := m.Status().Checkers[0]
	if cs.Successes != 3 || cs.Failures != 4 || cs.Latency.Count != 7 || len(cs.Latency.Counts) != len(LatencyBounds) ||
		cs.Latency.Counts[len(LatencyBounds)-1] != 7 {
		t.Errorf("checker statistics %d ok / %d failed, latency %+v; want 3 / 4 and 7 checks under 10 s", cs.Successes, cs.Failures, cs.Latency)
	}
	log.mu.Lock()
	down := log.events[0]
	log.mu.Unlock()
	if down.Reason == nil || down.RealServer != "192.168.1.10:80" || down.VirtualServer != "10.0.0.100:80" ||
		down.Checker != "TCP_CHECK" || down.Weight != 5 || !down.Time.Equal(start.Add(15*time.Second)) {
		t.Errorf("down event = %+v", down)
	}
}

func TestMonitorAlphaStartsDown(t *testing.T) {
	clk := newFakeClock()
	chk := &scriptedChecker{clock: clk, outcomes: []outcome{ok}}
	var log eventLog
	m, err := NewMonitor(MonitorConfig{RealServer: "rs", Weight: 1,
		Checkers: []CheckerConfig{{Name: "c", Checker: chk, Alpha: true, Timing: Timing{DelayLoop: time.Second}}},
		OnChange: log.add, Logger: quietLogger(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status().Up {
		t.Fatal("alpha server starts up")
	}
	m.Start()
	defer m.Stop()
	clk.Advance(0)
	if !m.Status().Up || strings.Join(log.kinds(), ",") != "up" {
		t.Fatalf("status %+v, events %v", m.Status(), log.kinds())
	}
}

func TestMonitorAllCheckersMustPass(t *testing.T) {
	clk := newFakeClock()
	a := &scriptedChecker{clock: clk, outcomes: []outcome{ok}}
	b := &scriptedChecker{clock: clk, outcomes: []outcome{ok, fail, ok}}
	var log eventLog
	m, err := NewMonitor(MonitorConfig{RealServer: "rs", Weight: 1,
		Checkers: []CheckerConfig{
			{Name: "a", Checker: a, Timing: Timing{DelayLoop: time.Second}},
			{Name: "b", Checker: b, Timing: Timing{DelayLoop: 2 * time.Second}},
		},
		OnChange: log.add, Logger: quietLogger(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Stop()
	clk.Advance(0)               // a ok, b ok
	clk.Advance(2 * time.Second) // b fails, retry 0 -> down
	clk.Advance(2 * time.Second) // b ok -> up
	if got := strings.Join(log.kinds(), ","); got != "down,up" {
		t.Fatalf("events %s, want down,up", got)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.events[0].Checker != "b" {
		t.Errorf("down caused by %q, want b", log.events[0].Checker)
	}
}

func TestMonitorDynamicWeight(t *testing.T) {
	clk := newFakeClock()
	chk := &scriptedChecker{clock: clk, outcomes: []outcome{
		{weight: 10, dynamic: true}, {weight: 10, dynamic: true}, {weight: 3, dynamic: true}, fail, {weight: 7, dynamic: true},
	}}
	var log eventLog
	m, err := NewMonitor(MonitorConfig{RealServer: "rs", Weight: 1,
		Checkers: []CheckerConfig{{Name: "MISC_CHECK", Checker: chk, Timing: Timing{DelayLoop: time.Second}}},
		OnChange: log.add, Logger: quietLogger(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Stop()
	clk.Advance(4 * time.Second)
	log.mu.Lock()
	defer log.mu.Unlock()
	var got []string
	for _, e := range log.events {
		got = append(got, e.Kind.String()+":"+strings.Repeat("|", e.Weight))
	}
	want := []string{"weight:" + strings.Repeat("|", 10), "weight:|||", "down:|||", "up:|||||||"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestMonitorWarmupAndStop(t *testing.T) {
	clk := newFakeClock()
	chk := &scriptedChecker{clock: clk, outcomes: []outcome{ok}}
	m, err := NewMonitor(MonitorConfig{RealServer: "rs",
		Checkers: []CheckerConfig{{Name: "c", Checker: chk, Timing: Timing{DelayLoop: time.Second, Warmup: 10 * time.Second}}},
		Logger:   quietLogger(), Clock: clk, Rand: func() float64 { return 0.5 }})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	clk.Advance(4999 * time.Millisecond)
	if chk.calls != 0 {
		t.Fatalf("checked %d times during warmup", chk.calls)
	}
	clk.Advance(time.Millisecond)
	if chk.calls != 1 {
		t.Fatalf("checked %d times at the end of warmup, want 1", chk.calls)
	}
	m.Stop()
	clk.Advance(time.Minute)
	if chk.calls != 1 {
		t.Fatalf("checked %d times after Stop", chk.calls)
	}
}

func TestMonitorNotifyScripts(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "notified")
	notify := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(notify, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	chk := &scriptedChecker{clock: clk, outcomes: []outcome{fail, ok}}
	n := &script.Notifier{Logger: quietLogger()}
	m, err := NewMonitor(MonitorConfig{RealServer: "rs", Omega: true,
		Checkers:   []CheckerConfig{{Name: "c", Checker: chk, Timing: Timing{DelayLoop: time.Second}}},
		NotifyUp:   script.Command{Line: notify + " UP 'rs one'", Timeout: 5 * time.Second},
		NotifyDown: script.Command{Line: notify + " DOWN 'rs one'", Timeout: 5 * time.Second},
		Notifier:   n, Logger: quietLogger(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	clk.Advance(0) // fail -> down
	n.Wait()
	clk.Advance(time.Second) // ok -> up
	n.Wait()
	m.Stop() // omega: notify_down
	n.Wait()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "DOWN rs one\nUP rs one\nDOWN rs one\n"; got != want {
		t.Fatalf("notify calls %q, want %q", got, want)
	}
}

func TestNewMonitorRejectsBadConfig(t *testing.T) {
	good := CheckerConfig{Name: "c", Checker: &scriptedChecker{}, Timing: Timing{DelayLoop: time.Second}}
	tests := []struct {
		name string
		cfg  MonitorConfig
	}{
		{"no checker", MonitorConfig{}},
		{"nil checker", MonitorConfig{Checkers: []CheckerConfig{{Name: "x", Timing: good.Timing}}}},
		{"zero delay_loop", MonitorConfig{Checkers: []CheckerConfig{{Name: "x", Checker: good.Checker}}}},
		{"negative retry", MonitorConfig{Checkers: []CheckerConfig{{Name: "x", Checker: good.Checker, Timing: Timing{DelayLoop: 1, Retry: -1}}}}},
	}
	for _, tt := range tests {
		if _, err := NewMonitor(tt.cfg); !errors.Is(err, ErrSpec) {
			t.Errorf("%s: err = %v, want ErrSpec", tt.name, err)
		}
	}
}
