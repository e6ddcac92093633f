package tests

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
)

// bootGuest boots Debian's stock kernel under qemu with o (the
// accelerator from $XDPVIP_IPVSVM_ACCEL), logs the guest console and
// returns the result. It skips when not root (the kernel cache is filled
// with apt-get download) or when qemu cannot start a guest, and fails the
// test when the guest prints no result.
func bootGuest(t *testing.T, timeout time.Duration, o ipvsvm.Options) *ipvsvm.Result {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: apt-get download into the kernel cache and the guest's test setup")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	o.Accel = os.Getenv("XDPVIP_IPVSVM_ACCEL")
	o.Logf = t.Logf
	res, err := ipvsvm.Run(ctx, o)
	if errors.Is(err, ipvsvm.ErrQEMUUnavailable) {
		t.Skipf("qemu cannot start the guest: %v", err)
	}
	if res != nil {
		t.Logf("guest console (%s, %v):\n%s", res.Accel, res.Elapsed.Round(time.Millisecond), res.Console)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// buildGuestTest compiles a package's tests into a static binary for the
// guest and returns its path.
func buildGuestTest(t *testing.T, pkgDir, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: apt-get download into the kernel cache and the guest's test setup")
	}
	bin := t.TempDir() + "/" + name
	if err := ipvsvm.BuildStaticTest(pkgDir, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}
