package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
)

// configLoadTimeout bounds one load of the configuration. The lexer's
// limits keep the largest configuration they admit to about 0.25 s, so
// only a read wedged in the kernel (a hung network filesystem) gets here.
const configLoadTimeout = 30 * time.Second

// loadConfigFile reads a configuration; tests replace it.
var loadConfigFile = config.Load

// errLoadRunning refuses a load while an abandoned one has not returned.
var errLoadRunning = errors.New("the previous configuration load has not finished yet (wedged reading a file?): not starting another")

// configLoader reads the configuration off the caller's goroutine, so a
// load that hangs can neither keep the signal loop from seeing SIGTERM
// nor stack up: the caller gives up on a load when its context ends or
// after the timeout, and no new load starts while an abandoned one is
// still running.
type configLoader struct {
	timeout time.Duration
	mu      sync.Mutex
	running bool
}

func newConfigLoader() *configLoader {
	return &configLoader{timeout: configLoadTimeout}
}

// load reads path, logs its warnings and returns the configuration, or
// the error that keeps it from being used.
func (l *configLoader) load(ctx context.Context, path string, log *slog.Logger) (*config.Config, error) {
	l.mu.Lock()
	if l.running {
		l.mu.Unlock()
		return nil, errLoadRunning
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
		cfg, diags, err := loadConfigFile(path)
		l.mu.Lock()
		l.running = false
		l.mu.Unlock()
		done <- result{cfg, diags, err}
	}()
	timer := time.NewTimer(l.timeout)
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
		return nil, fmt.Errorf("loading %s: no result after %s, given up", path, l.timeout)
	}
}
