package tests

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// faultVIP6 is an excluded VIP (not in the adverts) of another family, so
// that its add can be refused while the instance itself keeps working.
var faultVIP6 = netip.MustParseAddr("2001:db8::100")

// TestFaultNetlink: the VIP's address operations fail.
//
//   - "stray VIP": the VIP is already on the BACKUP's interface when its
//     daemon starts (left by a crash, a script or an operator), while the
//     MASTER holds it: the BACKUP must have removed it by the time it
//     answers, and never hold it beside the MASTER afterwards. The window
//     starts when the restarted daemon answers.
//   - "add refused": the instance also has an IPv6 virtual_ipaddress_excluded;
//     IPv6 is disabled on the BACKUP's interface (the kernel refuses the add
//     with EACCES), then the MASTER stops gracefully. The BACKUP must not
//     claim MASTER without the address: it retries, then goes FAULT (issue
//     10.1). The MASTER is started again and IPv6 enabled on the BACKUP, and
//     both must settle with every VIP on the MASTER.
func TestFaultNetlink(t *testing.T) {
	t.Run("stray VIP", func(t *testing.T) {
		runFaultScenario(t, faultScenario{
			name: "stray VIP on BACKUP at start", runs: 3, keepalived: true,
			inject: func(r *faultRun) {
				_, b := r.lab.roles()
				b.Stop()
				b.H().MustExec("ip", "addr", "add", faultVIP.String()+"/24", "dev", b.H().Iface())
				b.Restart()
				r.from = time.Now()
			},
		})
	})
	t.Run("add refused", func(t *testing.T) {
		var refused string
		runFaultScenario(t, faultScenario{
			name: "VIP add refused (IPv6 off)", runs: 3, keepalived: true,
			opts: faultOpts{
				extra: []string{"    virtual_ipaddress_excluded {\n        " + faultVIP6.String() + "/64\n    }"},
				watch: []netip.Addr{faultVIP6},
			},
			inject: func(r *faultRun) {
				m, b := r.lab.roles()
				setIPv6(r, b.H(), false)
				t0 := time.Now()
				m.Stop()
				err := testnet.Poll(5*time.Second, func() error {
					if s := b.State(); s != "FAULT" {
						return errState(s)
					}
					return nil
				})
				refused = b.State()
				if refused == "MASTER" && !r.lab.vips.holds(b.H().Name(), faultVIP6) {
					refused = "MASTER without " + faultVIP6.String()
				}
				r.note("%s with the add refused: %s", b.H().Name(), refused)
				r.expect(err == nil, "run %d: %s is %s 5 s after its VIP add was refused, want FAULT", r.n+1, b.H().Name(), refused)
				m.Restart()
				r.gapExtra = time.Since(t0)
				setIPv6(r, b.H(), true)
			},
		})
	})
}

// errState is a state other than the one waited for.
type errState string

func (e errState) Error() string { return "state " + string(e) }

// setIPv6 enables or disables IPv6 on h's interface.
func setIPv6(r *faultRun, h *testnet.Host, on bool) {
	v := "1"
	if on {
		v = "0"
	}
	h.MustExec("sysctl", "-qw", "net.ipv6.conf."+h.Iface()+".disable_ipv6="+v)
}
