// Package runlock makes one xdpvip the owner of a bpf dir (an flock'ed
// lock file taken before anything else is touched) and writes its PID file
// last, atomically, without following links.
package runlock

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir holds one lock file per bpf dir in use. The lock cannot live in
// the bpf dir itself: bpffs refuses regular files (EPERM), and a flock on
// the directory would be taken on a different inode when the daemon then
// mounts bpffs over a directory that had nothing mounted (see
// dataplane.ensureBPFFS), so two daemons could both hold "the" lock. A
// file under /run exists before anything is mounted, on a filesystem
// that supports flock, and goes with a reboot, as the pins do.
var Dir = "/run/xdpvip"

// Lock is the flock that makes one daemon the owner of a bpf dir. It
// is held as long as the file stays open; the kernel drops it when the
// process dies, however it dies.
type Lock struct {
	f    *os.File
	path string
}

// Take takes the lock for bpfDir, or says which process holds it.
// It creates nothing but Dir and the lock file, so a refused daemon
// has touched none of the running one's files.
func Take(bpfDir string) (*Lock, error) {
	key := canonicalPath(bpfDir)
	sum := sha256.Sum256([]byte(key))
	name := "bpf-" + strings.Trim(strings.ReplaceAll(key, "/", "_"), "_")
	if len(name) > 64 {
		name = name[:64]
	}
	path := filepath.Join(Dir, name+"-"+hex.EncodeToString(sum[:6])+".lock")
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bpf dir lock: %w", err)
	}
	// A holder removes the file when it leaves; a lock taken on a file
	// that was removed (or replaced) meanwhile is not the lock, so try
	// again on what the path names now.
	for range 8 {
		l, again, err := tryLock(path, key)
		if !again {
			if err == nil {
				sweepStaleLocks(path)
			}
			return l, err
		}
	}
	return nil, fmt.Errorf("bpf dir lock %s: keeps being replaced", path)
}

func tryLock(path, key string) (l *Lock, again bool, err error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("bpf dir lock %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, false, fmt.Errorf("bpf dir lock %s: not a regular file", path)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil && len(bytes.TrimSpace(b)) > 0 {
			holder = " (pid " + string(bytes.TrimSpace(b)) + ")"
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, fmt.Errorf("another xdpvip%s is running with --bpf-dir %s (it holds %s): not starting a second one", holder, key, path)
		}
		return nil, false, fmt.Errorf("bpf dir lock %s: %w", path, err)
	}
	if now, err := os.Lstat(path); err != nil || !os.SameFile(st, now) {
		f.Close()
		return nil, true, nil
	}
	// The holder's PID, for the message above; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}, false, nil
}

// release removes the lock file and drops the lock, in that order: a
// daemon that opened the file before the removal finds, once it has the
// flock, that the path no longer names it, and tries again.
func (l *Lock) Release() {
	os.Remove(l.path)
	l.f.Close()
}

// sweepStaleLocks removes the lock files of daemons that died without
// releasing them (SIGKILL, a crash), so they do not pile up, one per bpf
// dir ever used. A file is removed only while its flock is held here, and
// a daemon that opened it just before finds the path gone once it has the
// flock and tries again, so removing never hands out a second lock.
func sweepStaleLocks(own string) {
	names, _ := filepath.Glob(filepath.Join(Dir, "bpf-*.lock"))
	for _, name := range names {
		if name == own {
			continue
		}
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			var st, now unix.Stat_t
			if unix.Fstat(fd, &st) == nil && unix.Lstat(name, &now) == nil && st.Dev == now.Dev && st.Ino == now.Ino {
				_ = unix.Unlink(name)
			}
		}
		unix.Close(fd)
	}
}

// canonicalPath is dir made absolute and clean, with the symbolic links in
// its longest existing ancestor resolved, so that two spellings of one
// directory get one lock.
func canonicalPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = filepath.Clean(dir)
	}
	rest := ""
	for p := abs; ; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		if filepath.Dir(p) == p {
			return abs
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// WritePIDFile writes the PID file atomically: a new temporary file in the
// same directory (O_EXCL|O_NOFOLLOW: never an existing file or a link
// someone planted) renamed over path (rename replaces a link at path
// instead of following it).
func WritePIDFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid())+".tmp")
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EEXIST) {
		// Left by a process with our PID that died before the rename; a
		// link there is removed, not followed.
		if rerr := os.Remove(tmp); rerr != nil {
			return fmt.Errorf("pid file: %w", rerr)
		}
		fd, err = unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	}
	if err != nil {
		return fmt.Errorf("pid file %s: %w", tmp, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file %s: %w", path, werr)
	}
	return nil
}

// RemovePIDFile removes path if it still names this process.
func RemovePIDFile(path string) {
	b, err := os.ReadFile(path)
	if err == nil && string(bytes.TrimSpace(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}
