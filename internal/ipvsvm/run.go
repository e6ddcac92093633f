package ipvsvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure Run.
type Options struct {
	CacheDir     string   // default DefaultCacheDir()
	MetaPackage  string   // the kernel's Debian meta package; default MetaPackage
	Modules      []string // default DefaultModules
	HostBinaries []string // default DefaultHostBinaries; extra ones are appended by the caller
	Files        []File
	Command      string
	Accel        string // see BootOptions.Accel
	MemoryMB     int
	Timeout      time.Duration
	Console      io.Writer
	Logf         func(format string, args ...any)
}

// Run fetches (or reuses) the stock kernel, builds the initramfs in a
// temporary directory, boots it and returns the guest's result. A result
// with a non-zero ExitCode is not an error: the caller decides.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.Modules == nil {
		o.Modules = DefaultModules
	}
	if o.HostBinaries == nil {
		o.HostBinaries = DefaultHostBinaries
	}
	if o.MetaPackage == "" {
		o.MetaPackage = MetaPackage
	}
	k, err := FetchKernelOf(ctx, o.CacheDir, o.MetaPackage, o.Logf)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ipvsvm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	initrd := filepath.Join(dir, "initramfs.gz")
	t0 := time.Now()
	if err := BuildInitramfs(Image{Kernel: k, Modules: o.Modules, HostBinaries: o.HostBinaries, Files: o.Files, Command: o.Command}, initrd); err != nil {
		return nil, err
	}
	if st, err := os.Stat(initrd); err == nil {
		o.Logf("ipvsvm: initramfs %d KiB built in %v; booting %s", st.Size()>>10, time.Since(t0).Round(time.Millisecond), k.Release)
	}
	accel := o.Accel
	verdict := kvmVerdictFile(o.CacheDir)
	if accel == "" || accel == "auto" {
		// A KVM that cannot run the stock kernel hangs silently; remember
		// that per host kernel so only the first run pays the probe.
		if b, err := os.ReadFile(verdict); err == nil && strings.TrimSpace(string(b)) == "broken" {
			accel = "tcg"
		}
	}
	res, err := Boot(ctx, BootOptions{
		Vmlinux: k.Vmlinux, Initrd: initrd, MemoryMB: o.MemoryMB, Accel: accel,
		Timeout: o.Timeout, Console: o.Console,
	})
	if (accel == "" || accel == "auto") && res != nil {
		v := "ok"
		if res.Accel != "kvm" {
			v = "broken"
		}
		_ = os.WriteFile(verdict, []byte(v+"\n"), 0o644)
	}
	if err != nil {
		return res, fmt.Errorf("%w (kernel %s)", err, k.Release)
	}
	return res, nil
}

// kvmVerdictFile records whether KVM could boot the stock kernel on this
// host kernel ("ok" or "broken").
func kvmVerdictFile(cacheDir string) string {
	var u unix.Utsname
	release := "unknown"
	if unix.Uname(&u) == nil {
		release = unix.ByteSliceToString(u.Release[:])
	}
	return filepath.Join(cacheDir, "kvm-"+release)
}
