package monitors

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/healthcheck"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// fakeManager records the verdicts it is given.
type fakeManager struct {
	mu    sync.Mutex
	calls []string
}

func (m *fakeManager) SetHealth(vs lvs.ServiceKey, rs lvs.RealServerKey, up bool) error {
	m.record(map[bool]string{true: "up ", false: "down "}[up] + rs.Addr.String())
	return nil
}

func (m *fakeManager) SetWeight(vs lvs.ServiceKey, rs lvs.RealServerKey, w int) error {
	m.record("weight " + rs.Addr.String())
	return nil
}

func (m *fakeManager) record(s string) {
	m.mu.Lock()
	m.calls = append(m.calls, s)
	m.mu.Unlock()
}

func (m *fakeManager) seen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

// switchCheck fails while ok is false.
type switchCheck struct{ ok atomic.Bool }

func (c *switchCheck) Check(context.Context) error {
	if c.ok.Load() {
		return nil
	}
	return errors.New("refused")
}

func spec(key, rs string, chk healthcheck.Checker) lvsconfig.Monitor {
	vs := lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}
	return lvsconfig.Monitor{Key: key, VS: vs, RS: lvs.RealServerKey{Addr: netip.MustParseAddr(rs), Port: 80},
		Config: healthcheck.MonitorConfig{VirtualServer: vs.String(), RealServer: rs + ":80", Weight: 1,
			Checkers: []healthcheck.CheckerConfig{{Name: "TCP_CHECK " + rs, Checker: chk,
				Timing: healthcheck.Timing{DelayLoop: 10 * time.Millisecond, ConnectTimeout: time.Second}}}}}
}

func waitFor(t *testing.T, m *fakeManager, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range m.seen() {
			if c == want {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %q reached the manager: %v", want, m.seen())
}

// TestApply: a reload keeps the monitors whose configuration did not
// change, starts the new ones and stops the removed ones; the verdicts
// reach the manager (up also sets the weight).
func TestApply(t *testing.T) {
	mgr := &fakeManager{}
	s := New(mgr, slog.New(slog.DiscardHandler))
	defer s.Stop()
	a, b := &switchCheck{}, &switchCheck{}
	if err := s.Apply([]lvsconfig.Monitor{spec("a", "10.0.1.1", a), spec("b", "10.0.1.2", b)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, mgr, "down 10.0.1.1")
	waitFor(t, mgr, "down 10.0.1.2")
	byKey := func() map[string]*healthcheck.Monitor {
		out := map[string]*healthcheck.Monitor{}
		for _, r := range s.List() {
			out[r.Spec.Key] = r.Monitor
		}
		return out
	}
	before := byKey()
	if err := s.Apply([]lvsconfig.Monitor{spec("a", "10.0.1.1", a), spec("c", "10.0.1.3", &switchCheck{})}); err != nil {
		t.Fatal(err)
	}
	after := byKey()
	if len(after) != 2 || after["a"] != before["a"] || after["c"] == nil || after["b"] != nil {
		t.Errorf("after the reload: %v (before %v): want a kept, b stopped, c started", after, before)
	}
	a.ok.Store(true)
	waitFor(t, mgr, "up 10.0.1.1")
	waitFor(t, mgr, "weight 10.0.1.1")
	s.Stop()
	if l := s.List(); len(l) != 0 {
		t.Errorf("%d monitors after Stop", len(l))
	}
}

// TestApplyRefusesABadSpec: a monitor that cannot be built is an error
// naming the real server.
func TestApplyRefusesABadSpec(t *testing.T) {
	s := New(&fakeManager{}, slog.New(slog.DiscardHandler))
	defer s.Stop()
	bad := spec("x", "10.0.1.9", &switchCheck{})
	bad.Config.Checkers[0].Timing.DelayLoop = 0
	err := s.Apply([]lvsconfig.Monitor{bad})
	if err == nil || !errors.Is(err, healthcheck.ErrSpec) {
		t.Fatalf("err %v, want a healthcheck.ErrSpec", err)
	}
	if want := "real server 10.0.1.9:80"; err.Error()[:len(want)] != want {
		t.Errorf("err %q does not start with %q", err, want)
	}
}
