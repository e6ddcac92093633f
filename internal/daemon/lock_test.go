package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpvip/xdpvip/internal/runlock"
)

func useLockDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	old := runlock.Dir
	runlock.Dir = dir
	t.Cleanup(func() { runlock.Dir = old })
	return dir
}

// TestRunRefusesSecondDaemon: a second Run on a held bpf dir returns the
// lock error before it creates its control socket or PID file.
func TestRunRefusesSecondDaemon(t *testing.T) {
	useLockDir(t)
	dir := t.TempDir()
	bpf := filepath.Join(dir, "bpf")
	held, err := runlock.Take(bpf)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	pid := filepath.Join(dir, "xdpvip.pid")
	if err := os.WriteFile(pid, []byte("4242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "ctl.sock")
	err = Run(t.Context(), Options{ConfigPath: filepath.Join(dir, "missing.conf"), PIDFile: pid, ControlSocket: sock,
		BPFDir: bpf, Dataplane: "none", Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "another xdpvip") {
		t.Fatalf("Run on a held bpf dir: %v", err)
	}
	if b, _ := os.ReadFile(pid); string(b) != "4242\n" {
		t.Errorf("the running daemon's pid file became %q", b)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket created: %v", err)
	}
}
