package tests

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestVRRPVIPAddRefused: lvs1 (priority 100) must also add an IPv6
// address (virtual_ipaddress_excluded) to an interface where IPv6 is
// disabled, so netlink refuses it. lvs1 does not stay MASTER without it:
// after its retries it goes FAULT with a priority-0 advert, and lvs2 holds
// the VIP alone. Once IPv6 is back, lvs1 retries after its hold and takes
// the VIP back (it preempts), again alone.
func TestVRRPVIPAddRefused(t *testing.T) {
	ln := newLBNet(t)
	const v6 = "2001:db8::100"
	conf := func(id string, prio int) string {
		return strings.Replace(fastConf(id, prio), "    version 3", "    version 3\n    virtual_ipaddress_excluded {\n        "+v6+"/64\n    }", 1)
	}
	ln.lvs1.MustExec("sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1")
	n2 := StartXdpvip(t, ln.lvs2, conf("lvs2", 90))
	n2.WaitState(vrrpInstance, "MASTER", 5*time.Second)
	n1 := StartXdpvip(t, ln.lvs1, conf("lvs1", 100))
	testnet.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(n1.Proc.Log(), "VIPs could not be added: entering FAULT") {
			return errors.New("lvs1 has not given up on the refused VIP")
		}
		return nil
	})
	dual, holder := watchVIPHolder(t, ln, 20*fastAdvert)
	if in := instanceOf(t, n1); in.State != "FAULT" || dual > 0 || holder != "lvs2" {
		t.Fatalf("lvs1 %s, VIP on both for %v, holder %q: want lvs1 FAULT and the VIP on lvs2 only\n%s", in.State, dual, holder, n1.Proc.Log())
	}
	if HasAddr(t, ln.lvs1, vipAddr.String()) {
		t.Fatal("lvs1 in FAULT kept the IPv4 VIP it could add")
	}
	t.Logf("lvs1 FAULT after the refused add, lvs2 sole holder")

	ln.lvs1.MustExec("sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0")
	n1.WaitState(vrrpInstance, "MASTER", 15*time.Second)
	testnet.Eventually(t, 2*time.Second, func() error {
		if !HasAddr(t, ln.lvs1, v6) || !HasAddr(t, ln.lvs1, vipAddr.String()) || HasAddr(t, ln.lvs2, vipAddr.String()) {
			return errors.New("VIPs not settled on lvs1")
		}
		return nil
	})
	n2.WaitState(vrrpInstance, "BACKUP", time.Second)
}
