package sdnotify

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestService: the daemon's lifecycle reaches systemd in order, and the
// watchdog ticks at half of $WATCHDOG_USEC until Stopping.
func TestService(t *testing.T) {
	c := fakeSystemd(t, false)
	t.Setenv("WATCHDOG_USEC", "40000") // 40 ms: ticks every 20 ms
	t.Setenv("WATCHDOG_PID", "")
	s := NewService(slog.New(slog.DiscardHandler))
	if s.Watchdog == nil {
		t.Fatal("no watchdog with WATCHDOG_USEC set")
	}
	s.Ready("1 VRRP instance(s)")
	if got := recv(t, c); got != "READY=1\nSTATUS=1 VRRP instance(s)\n" {
		t.Errorf("ready: %q", got)
	}
	s.Reloading()
	if got := recv(t, c); !strings.HasPrefix(got, "RELOADING=1\n") {
		t.Errorf("reloading: %q", got)
	}
	select {
	case <-s.Watchdog:
	case <-time.After(2 * time.Second):
		t.Fatal("the watchdog did not tick")
	}
	s.Ping()
	if got := recv(t, c); got != "WATCHDOG=1\n" {
		t.Errorf("ping: %q", got)
	}
	s.Stopping()
	if got := recv(t, c); got != "STOPPING=1\nSTATUS=leaving gracefully\n" {
		t.Errorf("stopping: %q", got)
	}
	// A tick already buffered may still arrive; none after that.
	select {
	case <-s.Watchdog:
	case <-time.After(50 * time.Millisecond):
	}
	select {
	case <-s.Watchdog:
		t.Error("the watchdog ticks after Stopping")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestServiceWithoutSystemd: no socket, no watchdog, and a socket that
// went away is logged, not fatal.
func TestServiceWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	s := NewService(slog.New(slog.DiscardHandler))
	if s.Watchdog != nil {
		t.Error("a watchdog without WATCHDOG_USEC")
	}
	s.Ready("x")
	s.Stopping()
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	var logged strings.Builder
	s = NewService(slog.New(slog.NewTextHandler(&logged, nil)))
	s.Ready("x")
	if !strings.Contains(logged.String(), "telling systemd failed") {
		t.Errorf("a failed notification is not logged: %q", logged.String())
	}
}
