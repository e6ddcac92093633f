package runlock

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func useLockDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	old := Dir
	Dir = dir
	t.Cleanup(func() { Dir = old })
	return dir
}

// TestBPFDirLock: a second lock on one bpf dir, however it is spelled,
// is refused with the holder's PID; another dir is independent; after a
// release the dir can be taken again and no lock file is left.
func TestBPFDirLock(t *testing.T) {
	locks := useLockDir(t)
	base := t.TempDir()
	bpf := filepath.Join(base, "bpf")
	if err := os.Mkdir(bpf, 0o700); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(base, "alias")
	if err := os.Symlink(bpf, alias); err != nil {
		t.Fatal(err)
	}
	first, err := Take(bpf)
	if err != nil {
		t.Fatal(err)
	}
	for _, spelling := range []string{bpf, bpf + "/", alias, filepath.Join(alias, "..", "bpf"), bpf + "/./"} {
		_, err := Take(spelling)
		if err == nil {
			t.Fatalf("second lock on %s granted", spelling)
		}
		want := "another xdpvip (pid " + strconv.Itoa(os.Getpid()) + ") is running with --bpf-dir " + bpf
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %q, want it to contain %q", spelling, err, want)
		}
	}
	// A dir that does not exist yet (ensureBPFFS creates it later).
	other, err := Take(filepath.Join(base, "not", "yet"))
	if err != nil {
		t.Fatalf("lock on another dir: %v", err)
	}
	if _, err := Take(filepath.Join(alias, "..", "not", "yet")); err == nil {
		t.Error("second lock on a not yet existing dir granted")
	}
	other.Release()
	first.Release()
	if left, _ := os.ReadDir(locks); len(left) != 0 {
		t.Errorf("lock files left after release: %v", left)
	}
	again, err := Take(alias)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Release()
}

// TestBPFDirLockRefusesLink: a link planted where the lock file goes is
// not followed.
func TestBPFDirLockRefusesLink(t *testing.T) {
	locks := useLockDir(t)
	bpf := t.TempDir()
	l, err := Take(bpf)
	if err != nil {
		t.Fatal(err)
	}
	path := l.path
	l.Release()
	if err := os.MkdirAll(locks, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if _, err := Take(bpf); err == nil {
		t.Fatal("lock through a symbolic link granted")
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Errorf("link target changed to %q", b)
	}
}

// TestPIDFile: written atomically with our PID, replacing a link instead
// of writing through it, and removed only while it still names us.
func TestPIDFile(t *testing.T) {
	dir := t.TempDir()
	pid := filepath.Join(dir, "run", "xdpvip.pid")
	if err := WritePIDFile(pid); err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid()) + "\n"
	if b, err := os.ReadFile(pid); err != nil || string(b) != me {
		t.Fatalf("pid file %q, %v; want %q", b, err, me)
	}

	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(pid)
	if err := os.Symlink(victim, pid); err != nil {
		t.Fatal(err)
	}
	// A leftover temporary file that is a link, too.
	tmp := filepath.Join(filepath.Dir(pid), ".xdpvip.pid."+strconv.Itoa(os.Getpid())+".tmp")
	if err := os.Symlink(victim, tmp); err != nil {
		t.Fatal(err)
	}
	if err := WritePIDFile(pid); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Errorf("write went through a link: victim now %q", b)
	}
	if st, err := os.Lstat(pid); err != nil || !st.Mode().IsRegular() {
		t.Errorf("pid file is not a regular file: %v %v", st, err)
	}
	if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}

	// Another daemon's PID file is not ours to remove.
	if err := os.WriteFile(pid, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	RemovePIDFile(pid)
	if _, err := os.Stat(pid); err != nil {
		t.Errorf("removed another process's pid file: %v", err)
	}
	if err := WritePIDFile(pid); err != nil {
		t.Fatal(err)
	}
	RemovePIDFile(pid)
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Errorf("own pid file not removed: %v", err)
	}
}

// TestStaleLocksSwept: taking a lock removes the lock files nobody holds
// (left by a daemon that was killed) and keeps those that are held.
func TestStaleLocksSwept(t *testing.T) {
	locks := useLockDir(t)
	heldDir := filepath.Join(t.TempDir(), "held")
	held, err := Take(heldDir)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	stale := filepath.Join(locks, "bpf-dead-000000000000.lock")
	if err := os.WriteFile(stale, []byte("99999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(locks, "unrelated")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Take(filepath.Join(t.TempDir(), "new"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale lock file kept: %v", err)
	}
	for _, keep := range []string{held.path, other, l.path} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s removed: %v", keep, err)
		}
	}
	if _, err := Take(heldDir); err == nil {
		t.Error("after the sweep a second lock on a held dir was granted")
	}
}
