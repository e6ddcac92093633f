package tests

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// reloadVI2 is a second instance a reload adds (VRID 52, VIP .101).
const reloadVI2 = `
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.101/24
    }
}
`

// reloadWith writes conf as n's configuration and sends SIGHUP.
func reloadWith(t *testing.T, n *Node, conf string) {
	t.Helper()
	if err := os.WriteFile(n.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// TestVRRPReloadRefused: a SIGHUP whose configuration loads but cannot be
// applied — VI_1's interface mistyped — is refused as a whole: the MASTER
// keeps VI_1 (no transition, VIP kept, the BACKUP never takes it), the
// new instance written beside it is not started either, and the log says
// "reload refused" naming the instance, never "reloaded". A later good
// reload applies, and the log lists what it did.
func TestVRRPReloadRefused(t *testing.T) {
	for _, dp := range []string{"xdp", "none"} {
		t.Run(dp, func(t *testing.T) {
			ln, n1, n2 := fastPair(t, dp)
			before := instanceOf(t, n1)
			hup := func(conf string) { t.Helper(); reloadWith(t, n1, conf) }
			bad := strings.Replace(fastConf("lvs1", 100), "interface eth0", "interface eht0", 1) + reloadVI2
			hup(bad)
			testnet.Eventually(t, 5*time.Second, func() error {
				if !strings.Contains(n1.Proc.Log(), "reload refused") {
					return errors.New("no \"reload refused\" in the log yet")
				}
				return nil
			})
			log := n1.Proc.Log()
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, "reload refused") {
					t.Log(l)
				}
			}
			if !strings.Contains(log, "VI_1") || !strings.Contains(log, "eht0") || strings.Contains(log, "configuration reloaded") {
				t.Fatalf("the refusal does not name VI_1 and eht0, or a reload is claimed:\n%s", log)
			}
			dual, holder := watchVIPHolder(t, ln, 20*fastAdvert)
			after := instanceOf(t, n1)
			if dual > 0 || holder != "lvs1" || after.State != "MASTER" || after.Transitions != before.Transitions || after.Interface != "eth0" {
				t.Fatalf("after a refused reload: VIP on both %v, holder %q, lvs1 %s on %s, transitions %d (was %d)",
					dual, holder, after.State, after.Interface, after.Transitions, before.Transitions)
			}
			if st := n1.Status(); st.Reloads != 0 || len(st.Instances) != 1 || HasAddr(t, ln.lvs1, "192.0.2.101") {
				t.Fatalf("a refused reload half-applied: reloads %d, %d instances", st.Reloads, len(st.Instances))
			}
			if in := instanceOf(t, n2); in.State != "BACKUP" {
				t.Fatalf("lvs2 %s after lvs1's refused reload", in.State)
			}

			hup(fastConf("lvs1", 100) + reloadVI2)
			n1.WaitState("VI_2", "MASTER", 8*time.Second)
			if st := n1.Status(); st.Reloads != 1 || !strings.Contains(n1.Proc.Log(), `applied="kept: VI_1; started: VI_2"`) {
				t.Fatalf("good reload: reloads %d; log:\n%s", st.Reloads, n1.Proc.Log())
			}
			if in := instanceOf(t, n1); in.Transitions != before.Transitions {
				t.Fatalf("VI_1 moved on a reload that kept it: %d transitions (was %d)", in.Transitions, before.Transitions)
			}
		})
	}
}
