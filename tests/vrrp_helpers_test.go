package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/nsutil"
	"github.com/xdpvip/xdpvip/internal/testnet"
)

// The VRRP scenario every test in the vrrp_*_test.go files shares: two
// load balancers and a client on one bridge, VRID 51, advert_int 1, PASS
// authentication, one VIP.
const (
	vrrpVRID     = 51
	vrrpPass     = "123456"
	vrrpInstance = "VI_1"
	advertInt    = time.Second
	// specMargin is what issue 3 allows on top of a protocol bound.
	specMargin = 100 * time.Millisecond
	// tcpPort is where every LB namespace answers with its host name.
	tcpPort = 7000
)

var (
	vipAddr  = netip.MustParseAddr("192.0.2.100")
	lvs1Addr = netip.MustParseAddr("192.0.2.11")
	lvs2Addr = netip.MustParseAddr("192.0.2.12")
)

// lbNet is the test topology: lvs1 and lvs2 (the VRRP peers) and a client.
type lbNet struct {
	net                *testnet.Net
	lvs1, lvs2, client *testnet.Host
}

func newLBNet(t *testing.T) *lbNet {
	t.Helper()
	n := testnet.New(t)
	return &lbNet{
		net:    n,
		lvs1:   n.AddHost("lvs1", "192.0.2.11/24"),
		lvs2:   n.AddHost("lvs2", "192.0.2.12/24"),
		client: n.AddHost("client", "192.0.2.50/24"),
	}
}

// instConf is one node's keepalived.conf for the shared scenario.
type instConf struct {
	routerID string
	priority int
	// lines are extra vrrp_instance lines (nopreempt, notify, track_*).
	lines []string
	// top is extra top-level text (vrrp_script blocks).
	top string
}

func (c instConf) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n}\n%s\n", c.routerID, c.top)
	fmt.Fprintf(&b, `vrrp_instance %s {
    state BACKUP
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %d
    authentication {
        auth_type PASS
        auth_pass %s
    }
`, vrrpInstance, vrrpVRID, c.priority, int(advertInt/time.Second), vrrpPass)
	for _, l := range c.lines {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s/24\n    }\n}\n", vipAddr)
	return b.String()
}

// skewTime is VRRPv2's Skew_Time for priority (RFC 3768 §6.1).
func skewTime(priority int) time.Duration {
	return time.Duration(256-priority) * time.Second / 256
}

// masterDownInterval is VRRPv2's Master_Down_Interval for priority.
func masterDownInterval(priority int) time.Duration {
	return 3*advertInt + skewTime(priority)
}

// instanceOf returns the shared instance's status from n, failing the
// test if the daemon does not answer.
func instanceOf(t testing.TB, n *Node) daemon.InstanceStatus {
	t.Helper()
	in, err := n.Instance(vrrpInstance)
	if err != nil {
		t.Fatalf("%s: %v\n%s", n.Host.Name(), err, n.Proc.Log())
	}
	return in
}

// statusJSON runs `xdpvip status --json` against n and decodes it.
func statusJSON(t testing.TB, n *Node) daemon.Status {
	t.Helper()
	out, err := n.CLI("status", "--json")
	if err != nil {
		t.Fatalf("%s: xdpvip status --json: %v\n%s", n.Host.Name(), err, out)
	}
	var st daemon.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%s: xdpvip status --json is not a Status: %v\n%s", n.Host.Name(), err, out)
	}
	return st
}

// holdState fails the test if the instance leaves state at any time
// during d (it is polled every 50 ms).
func holdState(t testing.TB, n *Node, state string, d time.Duration) {
	t.Helper()
	holdStateUntil(t, n, state, time.Now().Add(d))
}

// holdStateUntil is holdState up to a point in time.
func holdStateUntil(t testing.TB, n *Node, state string, until time.Time) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		in := instanceOf(t, n)
		if in.State != state {
			t.Fatalf("%s: %s left %s for %s (master %s, priority %d)", n.Host.Name(), vrrpInstance, state, in.State, in.Master, in.EffectivePriority)
		}
		if !time.Now().Before(until) {
			return
		}
		<-tick.C
	}
}

// waitOneMaster waits until one of the nodes is MASTER and the other
// BACKUP, and returns the MASTER.
func waitOneMaster(t testing.TB, a, b *Node, timeout time.Duration) *Node {
	t.Helper()
	var master *Node
	testnet.Eventually(t, timeout, func() error {
		x, err := a.Instance(vrrpInstance)
		if err != nil {
			return err
		}
		y, err := b.Instance(vrrpInstance)
		if err != nil {
			return err
		}
		switch {
		case x.State == "MASTER" && y.State == "BACKUP":
			master = a
		case x.State == "BACKUP" && y.State == "MASTER":
			master = b
		default:
			return fmt.Errorf("%s is %s, %s is %s: want one MASTER and one BACKUP", a.Host.Name(), x.State, b.Host.Name(), y.State)
		}
		return nil
	})
	return master
}

// crash kills n with SIGKILL (no priority-0 advert, VIPs left behind) and
// waits for the process to be gone.
func crash(t testing.TB, n *Node) {
	t.Helper()
	if err := n.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: kill: %v", n.Host.Name(), err)
	}
	testnet.Eventually(t, 5*time.Second, func() error {
		if !n.Proc.Exited() {
			return errors.New("xdpvip still running after SIGKILL")
		}
		return nil
	})
}

// ping sends one echo request from h to dst; it fails the test if no
// answer comes back.
func ping(t testing.TB, h *testnet.Host, dst netip.Addr) {
	t.Helper()
	testnet.Eventually(t, 5*time.Second, func() error {
		_, err := h.Exec(context.Background(), "ping", "-n", "-c1", "-W1", dst.String())
		return err
	})
}

// waitNeighMAC waits until h's neighbour entry for addr holds mac and
// returns the entry and how long after since it got there. It only reads
// the table: it never flushes it or sends anything that would make h
// resolve addr again. It fails the test if the entry ever disappears or
// leaves the resolved states on the way (a re-resolution, not a GARP).
func waitNeighMAC(t testing.TB, h *testnet.Host, addr netip.Addr, mac net.HardwareAddr, since time.Time, timeout time.Duration) (testnet.Neighbor, time.Duration) {
	t.Helper()
	var last testnet.Neighbor
	var lost error
	testnet.Eventually(t, timeout, func() error {
		nb, err := h.Neigh(addr)
		if err != nil {
			lost = fmt.Errorf("%s: neighbour entry for %s gone: %w", h.Name(), addr, err)
			return err
		}
		if !resolvedState(nb.State) {
			// The entry was re-resolved (or is being): the MAC did not
			// move by gratuitous ARP alone.
			lost = fmt.Errorf("%s: neighbour entry left the resolved states: %s", h.Name(), nb)
		}
		last = nb
		if !bytes.Equal(nb.MAC, mac) {
			return fmt.Errorf("%s: neighbour %s, want MAC %s", h.Name(), nb, mac)
		}
		return nil
	})
	if lost != nil {
		t.Fatal(lost)
	}
	return last, time.Since(since)
}

// resolvedState reports whether a neighbour state is one a resolved entry
// has: REACHABLE, STALE, DELAY or PROBE (not INCOMPLETE or FAILED).
func resolvedState(state int) bool {
	return state&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE) != 0
}

// inNS runs f inside h's network namespace without throwing the thread
// away (see nsutil.Do).
func inNS(h *testnet.Host, f func() error) error { return nsutil.Do(h.NS(), f) }

// mustInNS is inNS that fails the test on error.
func mustInNS(t testing.TB, h *testnet.Host, f func() error) {
	t.Helper()
	if err := inNS(h, f); err != nil {
		t.Fatalf("%s: %v", h.Name(), err)
	}
}

// serveName runs a TCP listener on every address of h's namespace at
// tcpPort that answers each connection with h's name. The VIP is served
// as soon as it is added to the interface.
func serveName(t testing.TB, h *testnet.Host) {
	t.Helper()
	serveTCP(t, h, tcpPort, func(c net.Conn) {
		_, _ = io.WriteString(c, h.Name()+"\n")
		c.Close()
	})
}

// serveTCP listens on port on every IPv4 address of h's namespace until
// the test ends and hands each connection to handle in a goroutine.
func serveTCP(t testing.TB, h *testnet.Host, port int, handle func(net.Conn)) {
	t.Helper()
	h.ServeTCP(t, fmt.Sprintf("0.0.0.0:%d", port), handle)
}

// dialName connects from h to addr:tcpPort and returns the name the
// listener answered with.
func dialName(h *testnet.Host, addr netip.Addr, timeout time.Duration) (string, error) {
	var name string
	err := inNS(h, func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(addr, tcpPort).String(), timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		b, err := io.ReadAll(c)
		name = strings.TrimSpace(string(b))
		return err
	})
	return name, err
}

// waitTCPFrom waits until a TCP connect from h to addr is answered by the
// host named want and returns how long after since that was.
func waitTCPFrom(t testing.TB, h *testnet.Host, addr netip.Addr, want string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	testnet.Eventually(t, timeout, func() error {
		got, err := dialName(h, addr, 500*time.Millisecond)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("TCP %s:%d answered by %q, want %q", addr, tcpPort, got, want)
		}
		return nil
	})
	return time.Since(since)
}

// sendFrames writes whole Ethernet frames out of h's interface through an
// AF_PACKET socket, so every byte (TTL, checksums, lengths) is the test's.
func sendFrames(t testing.TB, h *testnet.Host, dstMAC net.HardwareAddr, frames ...[]byte) {
	t.Helper()
	mustInNS(t, h, func() error {
		ifi, err := net.InterfaceByName(h.Iface())
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(sa.Addr[:], dstMAC)
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, sa); err != nil {
				return fmt.Errorf("sending %d-byte frame: %w", len(f), err)
			}
		}
		return nil
	})
}

// writeScript writes an executable shell script into dir and returns its
// path.
func writeScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// touchFile creates an empty file (the flag a check script tests for).
func touchFile(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// removeFile removes a flag file.
func removeFile(t testing.TB, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// syscallTERM and ctxBG keep the scenario files short.
const syscallTERM = syscall.SIGTERM

func ctxBG() context.Context { return context.Background() }
