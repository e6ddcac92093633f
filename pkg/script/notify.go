package script

import (
	"context"
	"log/slog"
	"sync"
)

// Notifier runs notify scripts in the background: Notify returns at once,
// the script runs with its timeout, and its outcome is logged. The zero
// value is ready to use and logs to slog.Default().
type Notifier struct {
	// Logger receives one line per script run; nil means slog.Default().
	Logger *slog.Logger
	// Done, if set, is called with each outcome (for tests and metrics).
	// It runs on the script's goroutine.
	Done func(c Command, extra []string, res Result, err error)

	wg sync.WaitGroup
}

// Notify starts c with extra appended to its argv and returns without
// waiting. keepalived's vrrp `notify` scripts get TYPE NAME STATE PRIORITY
// as extra; notify_up / notify_down get none.
func (n *Notifier) Notify(c Command, extra ...string) {
	extra = append([]string(nil), extra...)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		res, err := Run(context.Background(), c, extra...)
		log := n.Logger
		if log == nil {
			log = slog.Default()
		}
		attrs := []any{
			slog.String("script", c.Line),
			slog.Any("args", extra),
			slog.Duration("duration", res.Duration),
		}
		switch {
		case err != nil:
			log.Warn("notify script failed", append(attrs, slog.String("error", err.Error()), slog.String("output", string(res.Output)))...)
		case res.ExitCode != 0:
			log.Warn("notify script exited non-zero", append(attrs, slog.Int("exit", res.ExitCode), slog.String("output", string(res.Output)))...)
		default:
			log.Debug("notify script ran", append(attrs, slog.Int("exit", 0))...)
		}
		if n.Done != nil {
			n.Done(c, extra, res, err)
		}
	}()
}

// Wait blocks until every script started so far has finished or timed
// out (for shutdown and tests).
func (n *Notifier) Wait() { n.wg.Wait() }
