package tests

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
)

// bpfGuestTests are pkg/dataplane's tests that must pass on the guest
// kernel: every prog.Run fixture (VRRP and DR), the ring buffer, the
// adverts larger than one bpf_csum_diff call takes before Linux 6.13, and
// attach/pin/detach on a real interface.
var bpfGuestTests = []string{
	"TestVRRPFixtures",
	"TestVRRPManyAddresses",
	"TestVRRPValidAdvertUpdatesStateAndEmitsEvent",
	"TestReadAdvertHonoursContext",
	"TestRemoveVRIDAndPeerReconfigure",
	"TestNonVRRPPassesUntouched",
	"TestDRFixtures",
	"TestFlowKeepsRealServerWhenOneIsAdded",
	"TestPersistenceAndSourceHash",
	"TestApplyRemovesServicesAndSkipsUnsupported",
	"TestUnresolvedRealServerIsNotUsed",
	"TestAttachPinReuseDetach",
	"TestAdvertOverTheWire",
}

// TestBPFOnDebianKernel boots Debian 12's stock kernel (6.1, what most
// LVS hosts run; this host runs a much newer one) under qemu and runs
// pkg/dataplane's BPF tests inside it: the program must load, pass the
// verifier and give the same verdicts and counters there. It skips only
// when qemu cannot start a guest.
func TestBPFOnDebianKernel(t *testing.T) {
	bin := buildGuestTest(t, "../pkg/dataplane", "dataplane.test")
	start := time.Now()
	res := bootGuest(t, 4*time.Minute, ipvsvm.Options{
		// xfrm_user, nfnetlink: the lab's netlink handles open every
		// family vishvananda/netlink supports.
		Modules:      append(append([]string{}, ipvsvm.DefaultModules...), "xfrm_user", "nfnetlink"),
		HostBinaries: append(append([]string{}, ipvsvm.DefaultHostBinaries...), "/usr/sbin/bpftool"),
		Files:        []ipvsvm.File{{Src: bin, Dst: "/dataplane.test", Mode: 0o755}},
		Command: "mount -t bpf bpf /sys/fs/bpf && uname -r && /dataplane.test -test.v -test.count=1 -test.timeout=200s -test.run '^(" +
			strings.Join(bpfGuestTests, "|") + ")$'",
		MemoryMB: 1024,
		Timeout:  220 * time.Second,
	})
	if !regexp.MustCompile(`(?m)^6\.1\.`).MatchString(res.Console) {
		t.Error("the guest did not report a 6.1 kernel")
	}
	results := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^--- (PASS|FAIL|SKIP): (Test\w+)`).FindAllStringSubmatch(res.Console, -1) {
		results[m[2]] = m[1]
	}
	for _, name := range bpfGuestTests {
		if r := results[name]; r != "PASS" {
			t.Errorf("%s in the guest: %q, want PASS", name, r)
		}
	}
	if res.ExitCode != 0 {
		t.Errorf("in-guest tests failed: exit %d", res.ExitCode)
	}
	t.Logf("guest run %v, harness total %v", res.Elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
