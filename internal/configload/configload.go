// Package configload reads keepalived.conf off the caller's goroutine with
// a bound, so a load that hangs (a file wedged in the kernel, a hung
// network filesystem) can neither keep the daemon's signal loop from
// seeing SIGTERM nor stack up behind itself.
package configload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
)

// DefaultTimeout bounds one load of the configuration. The lexer's
// limits keep the largest configuration they admit to about 0.25 s, so
// only a read wedged in the kernel (a hung network filesystem) gets here.
const DefaultTimeout = 30 * time.Second

// ErrRunning refuses a load while an abandoned one has not returned.
var ErrRunning = errors.New("the previous configuration load has not finished yet (wedged reading a file?): not starting another")

// Loader reads the configuration off the caller's goroutine, so a
// load that hangs can neither keep the signal loop from seeing SIGTERM
// nor stack up: the caller gives up on a load when its context ends or
// after the timeout, and no new load starts while an abandoned one is
// still running.
type Loader struct {
	// Timeout bounds one load.
	Timeout time.Duration
	// Read reads a configuration file (config.Load; tests replace it).
	Read    func(path string) (*config.Config, []config.Diagnostic, error)
	mu      sync.Mutex
	running bool
}

// New returns a Loader with DefaultTimeout that reads with config.Load.
func New() *Loader {
	return &Loader{Timeout: DefaultTimeout, Read: config.Load}
}

// Load reads path, logs its warnings and returns the configuration, or
// the error that keeps it from being used.
func (l *Loader) Load(ctx context.Context, path string, log *slog.Logger) (*config.Config, error) {
	l.mu.Lock()
	if l.running {
		l.mu.Unlock()
		return nil, ErrRunning
	}
	l.running = true
	l.mu.Unlock()

	type result struct {
		cfg   *config.Config
		diags []config.Diagnostic
		err   error
	}
	done := make(chan result, 1)
	go func() {
		cfg, diags, err := l.Read(path)
		l.mu.Lock()
		l.running = false
		l.mu.Unlock()
		done <- result{cfg, diags, err}
	}()
	timer := time.NewTimer(l.Timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		for _, dg := range r.diags {
			if dg.Severity == config.Warning {
				log.Warn(dg.String())
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		return r.cfg, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("loading %s: %w", path, ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("loading %s: no result after %s, given up", path, l.Timeout)
	}
}
