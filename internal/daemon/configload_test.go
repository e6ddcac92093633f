package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
