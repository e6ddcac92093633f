package tests

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xdpvip/xdpvip/internal/netlab"
	"github.com/xdpvip/xdpvip/internal/testnet"
)

// keepalivedBin is the interop peer: Debian's keepalived 2.2.7.
const keepalivedBin = netlab.KeepalivedBin

// RequireKeepalived skips the test when keepalived is not installed.
func RequireKeepalived(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(keepalivedBin); err != nil {
		t.Skipf("keepalived not installed (%v): apt-get install keepalived", err)
	}
}

// KA is one keepalived (VRRP subsystem only) running in the foreground in
// a test host's namespace, with its own pid files so several can run on one
// machine.
type KA struct {
	t    testing.TB
	Host *testnet.Host
	Proc *testnet.Process
	Dir  string
	Conf string
	// ownTmp runs keepalived with TMPDIR=Dir (see startKeepalivedTmp).
	ownTmp bool
}

// StartKeepalived writes conf into a fresh directory and runs keepalived
// in host's namespace: no fork (-n), VRRP only (-P), detailed log to the
// console (-l -D) and not to syslog (-G). It waits until the VRRP child has
// written its pid file.
func StartKeepalived(t testing.TB, host *testnet.Host, conf string) *KA {
	t.Helper()
	return startKA(t, host, conf, false)
}

func startKA(t testing.TB, host *testnet.Host, conf string, ownTmp bool) *KA {
	t.Helper()
	RequireKeepalived(t)
	setup, err := netlab.WriteKeepalived(t.TempDir(), conf)
	if err != nil {
		t.Fatal(err)
	}
	k := &KA{t: t, Host: host, Dir: setup.Dir, Conf: setup.Conf, ownTmp: ownTmp}
	k.start()
	return k
}

func (k *KA) setup() netlab.Keepalived { return netlab.Keepalived{Dir: k.Dir, Conf: k.Conf} }

func (k *KA) start() {
	k.t.Helper()
	k.setup().RemovePIDFiles()
	args := k.setup().Args(true)
	if k.ownTmp {
		k.Proc = k.Host.Start("env", append([]string{"TMPDIR=" + k.Dir, keepalivedBin}, args...)...)
	} else {
		k.Proc = k.Host.Start(keepalivedBin, args...)
	}
	testnet.Eventually(k.t, 10*time.Second, func() error {
		if k.Proc.Exited() {
			return fmt.Errorf("%s: keepalived exited at start:\n%s", k.Host.Name(), k.Proc.Log())
		}
		_, err := k.vrrpPID()
		return err
	})
}

// Restart starts keepalived again with the same config after it stopped.
func (k *KA) Restart() {
	k.t.Helper()
	if !k.Proc.Exited() {
		k.t.Fatalf("%s: keepalived restarted while running", k.Host.Name())
	}
	k.start()
}

// vrrpPID is the VRRP child's pid, from its pid file.
func (k *KA) vrrpPID() (int, error) { return k.setup().VRRPPID() }

// Stop sends SIGTERM (keepalived leaves gracefully: priority-0 advert, VIPs
// removed) and waits for it to exit.
func (k *KA) Stop() {
	k.t.Helper()
	stopProcess(k.t, k.Host, k.Proc, "keepalived", syscall.SIGTERM, 15*time.Second)
}

// Crash kills keepalived and its VRRP child with SIGKILL at once (the
// whole process group, as testnet starts every process as a group leader),
// so no priority-0 advert goes out and the VIPs stay where they are.
func (k *KA) Crash() {
	k.t.Helper()
	child, childErr := k.vrrpPID()
	if err := syscall.Kill(-k.Proc.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		k.t.Fatalf("%s: SIGKILL keepalived group: %v", k.Host.Name(), err)
	}
	if childErr == nil {
		// The child could have left the group; kill it by pid as well.
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
	waitExit(k.t, k.Host, k.Proc, "keepalived", 5*time.Second)
	if childErr == nil {
		testnet.Eventually(k.t, 5*time.Second, func() error {
			if pidAlive(child) {
				return fmt.Errorf("keepalived VRRP child %d still alive", child)
			}
			return nil
		})
	}
}

// pidAlive reports whether pid runs (a zombie does not count: it sends nothing).
func pidAlive(pid int) bool { return netlab.PIDAlive(pid) }

// kaStateLine matches keepalived 2.2's transition log lines, e.g.
// "(VI_1) Entering MASTER STATE" or "(VI_1) Entering BACKUP STATE (init)".
var kaStateLine = regexp.MustCompile(`\(([^)\s]+)\) Entering (\w+) STATE`)

// States lists the states keepalived logged for instance, oldest first.
func (k *KA) States(instance string) []string {
	var out []string
	for _, m := range kaStateLine.FindAllStringSubmatch(k.Proc.Log(), -1) {
		if m[1] == instance {
			out = append(out, m[2])
		}
	}
	return out
}

// State is the last state keepalived logged for instance ("" before any).
func (k *KA) State(instance string) string {
	s := k.States(instance)
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// WaitState waits until keepalived logs that instance entered state.
func (k *KA) WaitState(instance, state string, timeout time.Duration) {
	k.t.Helper()
	testnet.Eventually(k.t, timeout, func() error {
		if got := k.State(instance); got != state {
			if k.Proc.Exited() {
				return fmt.Errorf("%s: keepalived exited:\n%s", k.Host.Name(), k.Proc.Log())
			}
			return fmt.Errorf("%s: keepalived %s is %q, want %s", k.Host.Name(), instance, got, state)
		}
		return nil
	})
}

// LogCount counts the lines of keepalived's log that contain s.
func (k *KA) LogCount(s string) int {
	return strings.Count(k.Proc.Log(), s)
}

// AddrWatch records when an address appears on or leaves a host's
// interface, from the kernel's netlink notifications in that namespace, so
// failover times are measured at the moment the new MASTER adds the VIP
// rather than when a poll happens to look.
type AddrWatch struct {
	mu     sync.Mutex
	events []addrEvent
}

type addrEvent struct {
	addr netip.Addr
	up   bool
	at   time.Time
}

// WatchAddrs subscribes to address changes in host's namespace until the
// test ends.
func WatchAddrs(t testing.TB, host *testnet.Host) *AddrWatch {
	t.Helper()
	ns, err := netns.GetFromName(host.NS())
	if err != nil {
		t.Fatalf("%s: open namespace: %v", host.Name(), err)
	}
	defer ns.Close()
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
		t.Fatalf("%s: subscribe to address changes: %v", host.Name(), err)
	}
	w := &AddrWatch{}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for u := range ch {
			at := time.Now()
			a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok {
				continue
			}
			w.mu.Lock()
			w.events = append(w.events, addrEvent{addr: a.Unmap(), up: u.NewAddr, at: at})
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(done)
		// The subscription closes ch once it sees done, at the latest when
		// the next message or the socket's end arrives; do not wait for it
		// longer than the namespace lives.
		select {
		case <-finished:
		case <-time.After(2 * time.Second):
		}
	})
	return w
}

// errAddrNotYet is returned by AddedAfter while the address has not appeared.
var errAddrNotYet = errors.New("address not added yet")

// AddedAfter returns when addr was first added at or after t0.
func (w *AddrWatch) AddedAfter(addr netip.Addr, t0 time.Time) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e.up && e.addr == addr && !e.at.Before(t0) {
			return e.at, nil
		}
	}
	return time.Time{}, fmt.Errorf("%v: %w", addr, errAddrNotYet)
}

// WaitAdded waits until addr is added at or after t0 and returns how long
// after t0 that was.
func (w *AddrWatch) WaitAdded(t testing.TB, addr netip.Addr, t0 time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	var at time.Time
	testnet.Eventually(t, timeout, func() error {
		var err error
		at, err = w.AddedAfter(addr, t0)
		return err
	})
	return at.Sub(t0)
}

// KAConf renders a keepalived.conf for keepalived itself (and, being plain
// keepalived syntax, for xdpvip too): one vrrp_instance VI_1 on eth0 that
// starts as BACKUP. version is 2 or 3; pass is the PASS password ("" for
// none).
func KAConf(routerID string, version, vrid, prio int, advertInt, pass, vip string) string {
	var body strings.Builder
	fmt.Fprintf(&body, "    version %d\n", version)
	if pass != "" {
		fmt.Fprintf(&body, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", pass)
	}
	return VRRPConf(routerID, vrid, prio, advertInt, vip, strings.TrimRight(body.String(), "\n"))
}

// requireCommand skips the test when a command is missing.
func requireCommand(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: apt-get install %s", name, pkg)
	}
}
