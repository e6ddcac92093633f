package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCallRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sock")
	s, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("status", func(context.Context) (any, error) {
		return map[string]int{"instances": 2}, nil
	})
	s.Handle("boom", func(context.Context) (any, error) { return nil, errors.New("broken") })
	go s.Serve()
	defer s.Close()

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got map[string]int
	if err := Call(ctx, path, "status", &got); err != nil {
		t.Fatal(err)
	}
	if got["instances"] != 2 {
		t.Errorf("got %v", got)
	}
	if err := Call(ctx, path, "boom", nil); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("boom: err %v", err)
	}
	if err := Call(ctx, path, "nope", nil); err == nil || !strings.Contains(err.Error(), "unknown method") {
		t.Errorf("nope: err %v", err)
	}
	if _, err := Listen(path, nil); err == nil {
		t.Error("second Listen on a live socket succeeded")
	}
}

func TestCallNoDaemon(t *testing.T) {
	err := Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "status", nil)
	if !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("err %v, want ErrNoDaemon", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sock")
	s, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a crashed daemon: the listener is gone, the file stays.
	s.ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	s.ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	s2, err := Listen(path, nil)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	s2.Close()
}
