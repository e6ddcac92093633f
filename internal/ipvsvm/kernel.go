package ipvsvm

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// MetaPackage is Debian's package that depends on the current stock
// kernel image, which ships the ip_vs modules.
const MetaPackage = "linux-image-amd64"

// Kernel is a stock kernel unpacked in the cache.
type Kernel struct {
	Package    string // e.g. linux-image-6.1.0-56-amd64
	Release    string // uname -r, e.g. 6.1.0-56-amd64
	Vmlinux    string // uncompressed ELF kernel
	ModulesDir string // its /lib/modules/<release>
}

// DefaultCacheDir is $XDPVIP_IPVSVM_CACHE, else $XDG_CACHE_HOME/xdpvip-ipvsvm,
// else /var/cache/xdpvip-ipvsvm when writable (root), else the user's cache
// directory.
func DefaultCacheDir() string {
	if d := os.Getenv("XDPVIP_IPVSVM_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "xdpvip-ipvsvm")
	}
	if unix.Access("/var/cache", unix.W_OK) == nil {
		return "/var/cache/xdpvip-ipvsvm"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "xdpvip-ipvsvm")
	}
	return filepath.Join(os.TempDir(), "xdpvip-ipvsvm")
}

// ParseAptDepends returns the kernel image package that `apt-cache depends
// linux-image-amd64` names ("  Depends: linux-image-6.1.0-56-amd64").
func ParseAptDepends(out string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") && f[1] != MetaPackage {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("ipvsvm: apt-cache depends %s names no kernel image", MetaPackage)
}

// FetchKernel returns the stock kernel (MetaPackage's) from the cache,
// downloading it with apt-get download and unpacking it with dpkg -x
// (never installing it) when the cache does not hold the current version.
// Offline, it falls back to the newest kernel already cached for it.
func FetchKernel(ctx context.Context, cacheDir string, logf func(string, ...any)) (*Kernel, error) {
	return FetchKernelOf(ctx, cacheDir, MetaPackage, logf)
}

// FetchKernelOf is FetchKernel for another Debian meta package, e.g.
// linux-image-6.12-amd64 (bookworm's newer kernel series).
func FetchKernelOf(ctx context.Context, cacheDir, meta string, logf func(string, ...any)) (*Kernel, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("ipvsvm: lock %s: %w", cacheDir, err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN) //nolint:errcheck

	pkg, err := resolveKernelPackage(ctx, meta, logf)
	if err != nil {
		if k, cerr := newestCached(cacheDir, meta); cerr == nil {
			logf("ipvsvm: %v; using cached %s", err, k.Package)
			return k, nil
		}
		return nil, err
	}
	if k, err := cachedKernel(cacheDir, pkg); err == nil {
		return k, nil
	}
	logf("ipvsvm: downloading %s into %s", pkg, cacheDir)
	dir := filepath.Join(cacheDir, pkg)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := runIn(ctx, dir, "apt-get", "download", "-q", pkg); err != nil {
		return nil, fmt.Errorf("ipvsvm: apt-get download %s: %w: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("ipvsvm: apt-get download %s left %d .deb files", pkg, len(debs))
	}
	root := filepath.Join(dir, "root")
	if out, err := runIn(ctx, dir, "dpkg", "-x", debs[0], root); err != nil {
		return nil, fmt.Errorf("ipvsvm: dpkg -x: %w: %s", err, out)
	}
	_ = os.Remove(debs[0])
	bz, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(bz) != 1 {
		return nil, fmt.Errorf("ipvsvm: %s holds %d boot/vmlinuz-* files", pkg, len(bz))
	}
	release := strings.TrimPrefix(filepath.Base(bz[0]), "vmlinuz-")
	if err := ExtractVmlinux(bz[0], filepath.Join(dir, "vmlinux")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, metaFile), []byte(meta+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(release+"\n"), 0o644); err != nil {
		return nil, err
	}
	return cachedKernel(cacheDir, pkg)
}

// metaFile, in a cached kernel's directory, names the meta package it
// was fetched for (absent: MetaPackage, caches from before it existed).
const metaFile = "meta"

func resolveKernelPackage(ctx context.Context, meta string, logf func(string, ...any)) (string, error) {
	out, err := runIn(ctx, "", "apt-cache", "depends", meta)
	if err == nil {
		if pkg, perr := ParseAptDepends(out); perr == nil {
			return pkg, nil
		}
	}
	logf("ipvsvm: apt-cache does not know %s; running apt-get update", meta)
	if uout, uerr := runIn(ctx, "", "apt-get", "update", "-qq"); uerr != nil {
		return "", fmt.Errorf("ipvsvm: apt-get update: %w: %s", uerr, uout)
	}
	out, err = runIn(ctx, "", "apt-cache", "depends", meta)
	if err != nil {
		return "", fmt.Errorf("ipvsvm: apt-cache depends %s: %w: %s", meta, err, out)
	}
	return ParseAptDepends(out)
}

func cachedKernel(cacheDir, pkg string) (*Kernel, error) {
	dir := filepath.Join(cacheDir, pkg)
	b, err := os.ReadFile(filepath.Join(dir, "ready"))
	if err != nil {
		return nil, err
	}
	release := strings.TrimSpace(string(b))
	k := &Kernel{
		Package:    pkg,
		Release:    release,
		Vmlinux:    filepath.Join(dir, "vmlinux"),
		ModulesDir: filepath.Join(dir, "root", "lib", "modules", release),
	}
	for _, p := range []string{k.Vmlinux, k.ModulesDir} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func newestCached(cacheDir, meta string) (*Kernel, error) {
	readies, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*", "ready"))
	sort.Strings(readies)
	for i := len(readies) - 1; i >= 0; i-- {
		dir := filepath.Dir(readies[i])
		got := MetaPackage
		if b, err := os.ReadFile(filepath.Join(dir, metaFile)); err == nil {
			got = strings.TrimSpace(string(b))
		}
		if got != meta {
			continue
		}
		if k, err := cachedKernel(cacheDir, filepath.Base(dir)); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("ipvsvm: no cached kernel for %s", meta)
}

func runIn(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
