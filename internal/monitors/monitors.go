// Package monitors runs the health monitors of the configured real servers
// and feeds their verdicts into the virtual-server manager. Apply follows
// a reload as a diff: monitors whose configuration is new start, those
// whose configuration is gone stop, and the others keep running with their
// state.
package monitors

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/healthcheck"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// Manager is what the monitors' verdicts go to (an *lvs.Manager).
type Manager interface {
	SetHealth(vs lvs.ServiceKey, rs lvs.RealServerKey, up bool) error
	SetWeight(vs lvs.ServiceKey, rs lvs.RealServerKey, weight int) error
}

// Set is the running monitors, by lvsconfig.Monitor.Key.
type Set struct {
	mgr Manager
	log *slog.Logger

	mu      sync.Mutex
	running map[string]*Running
}

// Running is one started monitor and the spec it was started from.
type Running struct {
	Spec    lvsconfig.Monitor
	Monitor *healthcheck.Monitor
}

// New returns an empty set whose monitors report to mgr.
func New(mgr Manager, log *slog.Logger) *Set {
	return &Set{mgr: mgr, log: log, running: map[string]*Running{}}
}

// Apply starts the monitors of specs that do not run yet and stops the
// running ones specs no longer has.
func (s *Set) Apply(specs []lvsconfig.Monitor) error {
	keys := map[string]bool{}
	var start []*Running
	s.mu.Lock()
	for _, spec := range specs {
		keys[spec.Key] = true
		if _, ok := s.running[spec.Key]; ok {
			continue
		}
		start = append(start, &Running{Spec: spec})
	}
	var stop []*Running
	for k, m := range s.running {
		if !keys[k] {
			stop = append(stop, m)
			delete(s.running, k)
		}
	}
	s.mu.Unlock()
	for _, m := range stop {
		m.Monitor.Stop()
	}
	for _, m := range start {
		m.Spec.Config.Logger = s.log
		m.Spec.Config.OnChange = s.onChange(m.Spec.Services(), m.Spec.RS)
		mon, err := healthcheck.NewMonitor(m.Spec.Config)
		if err != nil {
			return fmt.Errorf("real server %s: %w", m.Spec.Config.RealServer, err)
		}
		m.Monitor = mon
		s.mu.Lock()
		s.running[m.Spec.Key] = m
		s.mu.Unlock()
		mon.Start()
	}
	return nil
}

// onChange hands one real server's health events to the manager.
func (s *Set) onChange(services []lvs.ServiceKey, rsKey lvs.RealServerKey) func(healthcheck.Event) {
	// One check of a virtual_server_group's real server stands for every
	// address of the group (keepalived checks it once).
	return func(ev healthcheck.Event) {
		for _, vsKey := range services {
			var err error
			switch ev.Kind {
			case healthcheck.WeightChanged:
				err = s.mgr.SetWeight(vsKey, rsKey, ev.Weight)
			default:
				err = s.mgr.SetHealth(vsKey, rsKey, ev.Up)
				if err == nil && ev.Up {
					err = s.mgr.SetWeight(vsKey, rsKey, ev.Weight)
				}
			}
			if err != nil {
				s.log.Error("updating real server failed", "virtual_server", vsKey.String(), "real_server", rsKey.String(), "err", err)
			}
		}
	}
}

// List is the running monitors, in no particular order.
func (s *Set) List() []*Running {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Running, 0, len(s.running))
	for _, m := range s.running {
		out = append(out, m)
	}
	return out
}

// Stop stops every monitor; the set is empty afterwards.
func (s *Set) Stop() {
	s.mu.Lock()
	running := s.running
	s.running = map[string]*Running{}
	s.mu.Unlock()
	for _, m := range running {
		m.Monitor.Stop()
	}
}
