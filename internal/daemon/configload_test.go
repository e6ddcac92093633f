package daemon

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

// hangingLoads makes every load after the first `real` ones block until
// the test ends, and returns a channel that gets a value when one starts.
func hangingLoads(t *testing.T, real int) <-chan struct{} {
	t.Helper()
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	calls := 0
	var inFlight sync.WaitGroup
	old := loadConfigFile
	loadConfigFile = func(path string) (*config.Config, []config.Diagnostic, error) {
		inFlight.Add(1)
		defer inFlight.Done()
		calls++
		if calls <= real {
			return old(path)
		}
		started <- struct{}{}
		<-release
		return nil, nil, errors.New("released")
	}
	t.Cleanup(func() {
		close(release)
		inFlight.Wait() // every load has read loadConfigFile and returned
		loadConfigFile = old
	})
	return started
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestConfigLoaderGivesUp: a wedged load returns to its caller when the
// context ends or the timeout passes, and no second load starts beside it.
func TestConfigLoaderGivesUp(t *testing.T) {
	started := hangingLoads(t, 0)
	l := newConfigLoader()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.load(ctx, "wedged.conf", quietLogger())
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
	if _, err := l.load(context.Background(), "wedged.conf", quietLogger()); !errors.Is(err, errLoadRunning) {
		t.Errorf("second load beside a wedged one: err = %v, want errLoadRunning", err)
	}

	l2 := newConfigLoader()
	l2.timeout = 50 * time.Millisecond
	start := time.Now()
	_, err := l2.load(context.Background(), "slow.conf", quietLogger())
	if err == nil || !strings.Contains(err.Error(), "given up") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("timeout of 50ms took %s", el)
	}
	<-started // it did start, and is abandoned
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
	l := newConfigLoader()
	cfg, err := l.load(context.Background(), good, log)
	if err != nil || cfg.Global.RouterID != "r1" {
		t.Fatalf("cfg %+v, err %v", cfg, err)
	}
	if !strings.Contains(logs.String(), "good.conf:4: include:") {
		t.Errorf("warning not logged: %q", logs.String())
	}
	if _, err := l.load(context.Background(), bad, log); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "bad.conf:2: virtual_router_id") {
		t.Errorf("bad config: err = %v", err)
	}
}

// TestRunStopsWhileReloadHangs: a SIGHUP whose configuration load never
// returns does not keep the daemon from stopping on SIGTERM.
func TestRunStopsWhileReloadHangs(t *testing.T) {
	useLockDir(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte("global_defs {\n router_id hang\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	started := hangingLoads(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{}, 1)
	runErr := make(chan error, 1)
	go func() {
		runErr <- Run(ctx, Options{
			ConfigPath: conf, ControlSocket: filepath.Join(dir, "ctl.sock"), BPFDir: filepath.Join(dir, "bpf"),
			Dataplane: "none", Logger: quietLogger(), Reload: reload,
		})
	}()
	reload <- struct{}{}
	select {
	case <-started:
	case err := <-runErr:
		t.Fatalf("Run returned before the reload: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the reload's load never started")
	}
	cancel() // what SIGTERM does
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run ignored the cancellation while a reload's load hung")
	}
}
