package configload

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
)

// hangingLoads makes l's loads block until the test ends, and returns a
// channel that gets a value when one starts.
func hangingLoads(t *testing.T, l *Loader) <-chan struct{} {
	t.Helper()
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	var inFlight sync.WaitGroup
	l.Read = func(path string) (*config.Config, []config.Diagnostic, error) {
		inFlight.Add(1)
		defer inFlight.Done()
		started <- struct{}{}
		<-release
		return nil, nil, errors.New("released")
	}
	t.Cleanup(func() {
		close(release)
		inFlight.Wait()
	})
	return started
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestConfigLoaderGivesUp: a wedged load returns to its caller when the
// context ends or the timeout passes, and no second load starts beside it.
func TestConfigLoaderGivesUp(t *testing.T) {
	l := New()
	started := hangingLoads(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.Load(ctx, "wedged.conf", quietLogger())
		errc <- err
	}()
	<-started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "wedged.conf") {
			t.Errorf("err = %v, want the path and context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("load did not return after its context was cancelled")
	}
	if _, err := l.Load(context.Background(), "wedged.conf", quietLogger()); !errors.Is(err, ErrRunning) {
		t.Errorf("second load beside a wedged one: err = %v, want ErrRunning", err)
	}

	l2 := New()
	started2 := hangingLoads(t, l2)
	l2.Timeout = 50 * time.Millisecond
	start := time.Now()
	_, err := l2.Load(context.Background(), "slow.conf", quietLogger())
	if err == nil || !strings.Contains(err.Error(), "given up") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("timeout of 50ms took %s", el)
	}
	<-started2 // it did start, and is abandoned
}

func TestConfigLoaderLoads(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(good, []byte("global_defs {\n router_id r1\n}\ninclude nothing/*.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("vrrp_instance V {\n virtual_router_id 300\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	l := New()
	cfg, err := l.Load(context.Background(), good, log)
	if err != nil || cfg.Global.RouterID != "r1" {
		t.Fatalf("cfg %+v, err %v", cfg, err)
	}
	if !strings.Contains(logs.String(), "good.conf:4: include:") {
		t.Errorf("warning not logged: %q", logs.String())
	}
	if _, err := l.Load(context.Background(), bad, log); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "bad.conf:2: virtual_router_id") {
		t.Errorf("bad config: err = %v", err)
	}
}
