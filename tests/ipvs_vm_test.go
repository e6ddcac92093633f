package tests

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
)

// TestIPVSInVM boots Debian's stock kernel (it has IPVS; this host's does
// not) under qemu and runs pkg/ipvs's TestVM* tests inside it against the
// real kernel IPVS. It skips only when qemu cannot start a guest.
func TestIPVSInVM(t *testing.T) {
	bin := buildGuestTest(t, "../pkg/ipvs", "ipvs.test")
	start := time.Now()
	res := bootGuest(t, 3*time.Minute, ipvsvm.Options{
		Files:   []ipvsvm.File{{Src: bin, Dst: "/ipvs.test", Mode: 0o755}},
		Command: "XDPVIP_IPVS_VM=1 /ipvs.test -test.v -test.count=1 -test.timeout=150s -test.run '^TestVM'",
	})
	if res.ExitCode != 0 {
		t.Fatalf("in-guest tests failed: exit %d", res.ExitCode)
	}
	// Every in-guest test must have run and passed, not skipped.
	ran := regexp.MustCompile(`(?m)^--- (PASS|FAIL|SKIP): (TestVM\w+)`).FindAllStringSubmatch(res.Console, -1)
	if len(ran) < 8 {
		t.Errorf("only %d TestVM* results on the console; want 8", len(ran))
	}
	for _, m := range ran {
		if m[1] != "PASS" {
			t.Errorf("%s: %s", m[2], m[1])
		}
	}
	for _, name := range []string{"TestVMHTTPThroughDR", "TestVMTunnels"} {
		if !strings.Contains(res.Console, "--- PASS: "+name) {
			t.Errorf("%s did not pass", name)
		}
	}
	t.Logf("harness total %v", time.Since(start).Round(time.Millisecond))
}
