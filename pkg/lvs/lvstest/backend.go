// Package lvstest provides a fake lvs.Backend that records what it is asked
// to program, for tests of the Manager and of code that drives it.
package lvstest

import (
	"slices"
	"sync"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// Backend is an lvs.Backend that records every Apply call. Set Err to make
// Apply fail (the call is still recorded); set StatsResult for Stats.
type Backend struct {
	mu          sync.Mutex
	applies     [][]lvs.Service
	err         error
	statsResult []lvs.ServiceStats
	closed      bool
}

// Name implements lvs.Backend.
func (b *Backend) Name() string { return "fake" }

// Apply implements lvs.Backend: it records a deep copy of services.
func (b *Backend) Apply(services []lvs.Service) error {
	cp := make([]lvs.Service, len(services))
	for i, s := range services {
		cp[i] = s
		cp[i].Dests = slices.Clone(s.Dests)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applies = append(b.applies, cp)
	return b.err
}

// Stats implements lvs.Backend.
func (b *Backend) Stats() ([]lvs.ServiceStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.statsResult), nil
}

// Close implements lvs.Backend.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// SetErr makes later Apply calls return err (nil to succeed again).
func (b *Backend) SetErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// SetStats sets what Stats returns.
func (b *Backend) SetStats(stats []lvs.ServiceStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.statsResult = stats
}

// Applies returns the number of Apply calls so far.
func (b *Backend) Applies() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.applies)
}

// Last returns the services of the last Apply call, and false if there
// was none.
func (b *Backend) Last() ([]lvs.Service, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.applies) == 0 {
		return nil, false
	}
	return b.applies[len(b.applies)-1], true
}

// Closed reports whether Close was called.
func (b *Backend) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Discard is an lvs.Backend that accepts everything and records nothing
// (for benchmarks).
type Discard struct{}

// Name implements lvs.Backend.
func (Discard) Name() string { return "discard" }

// Apply implements lvs.Backend.
func (Discard) Apply([]lvs.Service) error { return nil }

// Stats implements lvs.Backend.
func (Discard) Stats() ([]lvs.ServiceStats, error) { return nil, nil }

// Close implements lvs.Backend.
func (Discard) Close() error { return nil }
