package tests

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestFaultKill: SIGKILL of a daemon in the middle of a transition, the
// killed daemon started again at once (a supervisor's Restart=always):
//
//   - "entering MASTER": the MASTER stops gracefully, the BACKUP is killed
//     when its log says it enters MASTER (before its VIP add);
//   - "VIP added": the same, killed when its VIP add shows in the netlink
//     events (after the add, about when the first gratuitous ARP goes out);
//   - "reload": the MASTER gets a SIGHUP with a changed instance and is
//     killed 1, 5 or 20 ms later, in the middle of the reload.
//
// The triggers are polled every 200 µs, and SIGKILL follows within a
// millisecond or two on this machine, while a daemon goes from its log line
// to the VIP add and the first GARP in well under a millisecond: "before the
// VIP add" and "before the GARP" cannot be hit reliably from outside the
// process. Each run notes where the kill landed (VIP on the interface or
// not). After the kill both daemons run again; the VIP must never be on both
// nodes, and no longer on none than the gap bound counted from when the
// killed daemon is back.
func TestFaultKill(t *testing.T) {
	t.Run("entering MASTER", func(t *testing.T) {
		runFaultScenario(t, faultScenario{
			name: "SIGKILL at entering MASTER", runs: 3, keepalived: true,
			inject: func(r *faultRun) {
				tail := tailLog(r.lab.inRole("BACKUP").LogPath())
				killInTakeover(r, func(string, time.Time) error {
					_, err := tail.wait(enteringMaster[r.lab.impl], 5*time.Second)
					return err
				})
			},
		})
	})
	t.Run("VIP added", func(t *testing.T) {
		runFaultScenario(t, faultScenario{
			name: "SIGKILL after VIP add", runs: 3, keepalived: true,
			inject: func(r *faultRun) {
				killInTakeover(r, func(node string, t0 time.Time) error {
					_, err := r.lab.vips.waitAdd(node, t0, 5*time.Second)
					return err
				})
			},
		})
	})
	t.Run("reload", func(t *testing.T) {
		delays := []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond}
		runFaultScenario(t, faultScenario{
			name: "SIGKILL during reload", runs: len(delays), keepalived: true,
			inject: func(r *faultRun) {
				m, _ := r.lab.roles()
				b, err := os.ReadFile(m.ConfPath())
				if err != nil {
					r.Fatal(err)
				}
				// Alternately add and remove an excluded VIP (not in the
				// adverts, so the peers still agree): the instance
				// changes on every reload.
				const excluded = "    virtual_ipaddress_excluded {\n        192.0.2.101/24\n    }\n"
				conf := strings.Replace(string(b), "    virtual_ipaddress {", excluded+"    virtual_ipaddress {", 1)
				if strings.Contains(string(b), excluded) {
					conf = strings.Replace(string(b), excluded, "", 1)
				}
				if err := os.WriteFile(m.ConfPath(), []byte(conf), 0o644); err != nil {
					r.Fatal(err)
				}
				if err := m.HUP(); err != nil {
					r.Fatal(err)
				}
				time.Sleep(delays[r.n]) // where in the reload the kill lands
				t0 := time.Now()
				killNow(r, m)
				m.Restart()
				r.gapExtra = time.Since(t0)
				r.note("killed %v after SIGHUP, back after %v", delays[r.n], r.gapExtra.Round(10*time.Millisecond))
			},
		})
	})
}

// killInTakeover stops the MASTER gracefully so the BACKUP takes over,
// SIGKILLs the BACKUP as soon as trigger returns, starts the killed daemon
// again and, once it is MASTER, the stopped one. The gap bound counts from
// the killed daemon's return.
func killInTakeover(r *faultRun, trigger func(node string, t0 time.Time) error) {
	m, b := r.lab.roles()
	t0 := time.Now()
	fired := make(chan error, 1)
	go func() {
		err := trigger(b.H().Name(), t0)
		if err == nil {
			pid, perr := b.VRRPPID()
			if perr == nil {
				perr = unix.Kill(pid, unix.SIGKILL)
			}
			err = perr
		}
		fired <- err
	}()
	m.Stop()
	if err := <-fired; err != nil {
		r.Fatalf("%s: trigger: %v", b.H().Name(), err)
	}
	r.note("kill landed with the VIP %s", onOrOff(HasAddr(r.T, b.H(), faultVIP.String())))
	b.Crash()
	b.Restart()
	// Alone on the segment, the restarted daemon must become MASTER; only
	// then does the stopped one come back (both starting together would
	// race their Master_Down timers, a collision VRRP resolves only after
	// both have claimed MASTER).
	err := testnet.Poll(faultGapBound+5*time.Second, func() error {
		if s := b.State(); s != "MASTER" {
			return errState(s)
		}
		return nil
	})
	r.expect(err == nil, "run %d: the restarted %s did not become MASTER alone on the segment: %v", r.n+1, b.H().Name(), err)
	r.gapExtra = time.Since(t0)
	m.Restart()
}

// killNow SIGKILLs p's VRRP process, then the rest of it, and notes whether
// the VIP was on its interface when it died.
func killNow(r *faultRun, p faultPeer) {
	pid, err := p.VRRPPID()
	if err != nil {
		r.Fatal(err)
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		r.Fatal(err)
	}
	p.Crash()
}

func onOrOff(on bool) string {
	if on {
		return "on the interface"
	}
	return "not yet on the interface"
}
