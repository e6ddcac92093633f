package tests

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
)

// bpfGuestTests are pkg/dataplane's tests that must pass on the guest
// kernel: every prog.Run fixture (VRRP, DR and TUN), the ring buffer, the
// adverts larger than one bpf_csum_diff call takes before Linux 6.13,
// attach/pin/detach on a real interface, and the VLAN and TUN wire tests.
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
	"TestKernelHasWhatTheProgramNeeds",
	"TestMaxAddrsIsWhatTheProgramAccepts",
	"TestVIPFilterIsWhatTheProgramReads",
	"TestActiveFlagFollowsVIPState",
	"TestPinnedServicesGetTheActiveFlag",
	"TestFragmentsGoToOneRealServer",
	"TestFragmentsWithoutOneServiceGoToTheKernel",
	"TestIPv6ExtensionHeadersDR",
	"TestIPv6ExtensionHeadersVRRP",
	"TestFlowHitChecksTheServiceByID",
	"TestVLANFixtures",
	"TestVLANTagKeptWithoutVLANInfo",
	"TestVLANTaggedAdvertsPass",
	"TestNetlinkVLANsAndEgress",
	"TestAdvertTimeIsTheMonotonicClock",
	"TestVLANDirectRoutingOverTheWire",
	"TestTunnelFixtures",
	"TestTunnelPaddingAndNoDF",
	"TestTunnelTooBig",
	"TestTunnelVLANs",
	"TestTunnelFragmentsAndRedirect",
	"TestTunnelApply",
	"TestTunnelBadHeaders",
	"TestTunnelOverTheWire",
}

// debianKernels are the Debian 12 kernel series the BPF suite runs on:
// the stock 6.1 (what most bookworm LVS hosts run) and the 6.12 series
// bookworm-security also ships. Both predate 6.13, so both have the
// 512-byte bpf_csum_diff limit.
var debianKernels = []struct{ meta, release string }{
	{ipvsvm.MetaPackage, "6.1."},
	{"linux-image-6.12-amd64", "6.12."},
}

// TestBPFOnDebianKernel boots each of Debian 12's kernels under qemu and
// runs pkg/dataplane's BPF tests inside it: the program must load, pass
// the verifier and give the same verdicts and counters there as on this
// host's much newer kernel. It skips only when qemu cannot start a guest.
func TestBPFOnDebianKernel(t *testing.T) {
	bin := buildGuestTest(t, "../pkg/dataplane", "dataplane.test")
	for _, k := range debianKernels {
		t.Run(strings.TrimSuffix(k.release, "."), func(t *testing.T) {
			start := time.Now()
			res := bootGuest(t, 4*time.Minute, ipvsvm.Options{
				MetaPackage: k.meta,
				// xfrm_user, nfnetlink: the lab's netlink handles open
				// every family vishvananda/netlink supports; 8021q and
				// bonding for the VLAN tests; ipip, ip6_tunnel, fou, fou6
				// and ip_gre for the real server decapsulating in the TUN
				// test.
				Modules:      append(append([]string{}, ipvsvm.DefaultModules...), "xfrm_user", "nfnetlink", "8021q", "bonding", "ipip", "ip6_tunnel", "fou", "fou6", "ip_gre"),
				HostBinaries: append(append([]string{}, ipvsvm.DefaultHostBinaries...), "/usr/sbin/bpftool", "/usr/sbin/ethtool"),
				Files:        []ipvsvm.File{{Src: bin, Dst: "/dataplane.test", Mode: 0o755}},
				Command: "mount -t bpf bpf /sys/fs/bpf && uname -r && /dataplane.test -test.v -test.count=1 -test.timeout=200s -test.run '^(" +
					strings.Join(bpfGuestTests, "|") + ")$'",
				MemoryMB: 1024,
				Timeout:  220 * time.Second,
			})
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(k.release)).MatchString(res.Console) {
				t.Errorf("the guest did not report a %sx kernel", k.release)
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
		})
	}
}
