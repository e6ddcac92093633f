// Package tests holds xdpvip's end-to-end tests: real processes (xdpvip,
// keepalived, nginx) in network namespaces built by internal/testnet.
// One file per scenario; this file has the shared harness.
package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/testnet"
)

// xdpvipBin is the binary under test, built once by TestMain.
var xdpvipBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "xdpvip-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		xdpvipBin = filepath.Join(dir, "xdpvip")
		out, err := exec.Command("go", "build", "-o", xdpvipBin, "../cmd/xdpvip").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building xdpvip: %v\n%s", err, out)
			return 1
		}
		code := m.Run()
		printSuiteReport(os.Stdout)
		printFaultTable(os.Stdout)
		return code
	}()
	os.Exit(code)
}

// Node is one xdpvip daemon running in a test host's namespace.
type Node struct {
	t    testing.TB
	Host *testnet.Host
	Proc *testnet.Process
	Dir  string // config, socket, pid file
	Conf string
	Sock string
	// BPFDir is the node's own pin directory (pins are per interface name,
	// and every test host's interface is eth0).
	BPFDir string
}

// StartXdpvip writes conf into a fresh directory and runs `xdpvip run` in
// host's namespace with its own control socket, pid file and pin
// directory. extra flags are appended (e.g. "--dataplane", "none"). It
// waits until the control socket answers.
func StartXdpvip(t testing.TB, host *testnet.Host, conf string, extra ...string) *Node {
	t.Helper()
	dir := t.TempDir()
	n := &Node{t: t, Host: host, Dir: dir, Conf: filepath.Join(dir, "keepalived.conf"), Sock: filepath.Join(dir, "xdpvip.sock")}
	n.BPFDir = filepath.Join("/sys/fs/bpf", "xdpvip-test-"+filepath.Base(host.NS()))
	if err := os.WriteFile(n.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(n.BPFDir) })
	n.start(extra...)
	return n
}

// StartMaster starts one node on a network of its own (host name with
// address addr, running conf, extra flags as for StartXdpvip) and waits
// until its VI_1 is MASTER, within timeout.
func StartMaster(t testing.TB, name, addr, conf string, timeout time.Duration, extra ...string) (*testnet.Host, *Node) {
	t.Helper()
	h := testnet.New(t).AddHost(name, addr)
	node := StartXdpvip(t, h, conf, extra...)
	node.WaitState("VI_1", "MASTER", timeout)
	return h, node
}

// StartPair starts the two-node lab: lvs1 (192.0.2.11, priority 100) and
// lvs2 (192.0.2.12, priority 90) on one network, both with VRRPConf's
// VI_1 (VRID 51, advert_int 1, VIP 192.0.2.100/24, body as for
// VRRPConf) and extra flags, and waits until lvs1 is MASTER and lvs2
// BACKUP.
func StartPair(t testing.TB, body string, extra ...string) (a, b *testnet.Host, na, nb *Node) {
	t.Helper()
	n := testnet.New(t)
	a = n.AddHost("lvs1", "192.0.2.11/24")
	b = n.AddHost("lvs2", "192.0.2.12/24")
	na = StartXdpvip(t, a, VRRPConf("lvs1", 51, 100, "1", "192.0.2.100/24", body), extra...)
	nb = StartXdpvip(t, b, VRRPConf("lvs2", 51, 90, "1", "192.0.2.100/24", body), extra...)
	na.WaitState("VI_1", "MASTER", 6*time.Second)
	nb.WaitState("VI_1", "BACKUP", 2*time.Second)
	return a, b, na, nb
}

func (n *Node) start(extra ...string) {
	n.t.Helper()
	args := []string{"run", "-f", n.Conf, "--control-socket", n.Sock, "--pid-file", filepath.Join(n.Dir, "xdpvip.pid"),
		"--bpf-dir", n.BPFDir, "--log-level", "debug"}
	args = append(args, extra...)
	n.Proc = n.Host.Start(xdpvipBin, args...)
	testnet.Eventually(n.t, 10*time.Second, func() error {
		if n.Proc.Exited() {
			return fmt.Errorf("xdpvip exited at start:\n%s", n.Proc.Log())
		}
		_, err := n.StatusErr()
		return err
	})
}

// Restart starts the daemon again with the same config after it stopped.
func (n *Node) Restart(extra ...string) {
	n.t.Helper()
	n.start(extra...)
}

// StatusErr asks the daemon for its status.
func (n *Node) StatusErr() (daemon.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var st daemon.Status
	err := control.Call(ctx, n.Sock, "status", &st)
	return st, err
}

// Status asks the daemon for its status and fails the test if it cannot.
func (n *Node) Status() daemon.Status {
	n.t.Helper()
	st, err := n.StatusErr()
	if err != nil {
		n.t.Fatalf("%s: status: %v\n%s", n.Host.Name(), err, n.Proc.Log())
	}
	return st
}

// Instance returns the named instance's status.
func (n *Node) Instance(name string) (daemon.InstanceStatus, error) {
	st, err := n.StatusErr()
	if err != nil {
		return daemon.InstanceStatus{}, err
	}
	for _, in := range st.Instances {
		if in.Name == name {
			return in, nil
		}
	}
	return daemon.InstanceStatus{}, fmt.Errorf("%s: no instance %q", n.Host.Name(), name)
}

// WaitState waits until the instance is in state (MASTER, BACKUP, FAULT).
func (n *Node) WaitState(instance, state string, timeout time.Duration) {
	n.t.Helper()
	testnet.Eventually(n.t, timeout, func() error {
		in, err := n.Instance(instance)
		if err != nil {
			return err
		}
		if in.State != state {
			return fmt.Errorf("%s: %s is %s, want %s", n.Host.Name(), instance, in.State, state)
		}
		return nil
	})
}

// LVS returns the daemon's virtual-server listing.
func (n *Node) LVS() daemon.LVSList {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var l daemon.LVSList
	if err := control.Call(ctx, n.Sock, "lvs", &l); err != nil {
		n.t.Fatalf("%s: lvs: %v", n.Host.Name(), err)
	}
	return l
}

// CLI runs an xdpvip subcommand against this node's control socket.
func (n *Node) CLI(args ...string) (string, error) {
	args = append(args, "--control-socket", n.Sock)
	out, err := exec.Command(xdpvipBin, args...).CombinedOutput()
	return string(out), err
}

// Stop sends sig and waits for the process to exit.
func (n *Node) Stop(sig syscall.Signal) {
	n.t.Helper()
	stopProcess(n.t, n.Host, n.Proc, "xdpvip", sig, 15*time.Second)
}

// stopProcess sends sig to p (what, running on host) unless it has
// exited, and fails the test unless it exits within timeout.
func stopProcess(t testing.TB, host *testnet.Host, p *testnet.Process, what string, sig syscall.Signal, timeout time.Duration) {
	t.Helper()
	if p.Exited() {
		return
	}
	if err := p.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v to %s: %v", host.Name(), sig, what, err)
	}
	waitExit(t, host, p, what, timeout)
}

// waitExit fails the test unless p (what, running on host) exits within
// timeout.
func waitExit(t testing.TB, host *testnet.Host, p *testnet.Process, what string, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(timeout):
		t.Fatalf("%s: %s did not exit within %v:\n%s", host.Name(), what, timeout, p.Log())
	}
}

// HasAddr reports whether addr is configured on the host's interface.
func HasAddr(t testing.TB, h *testnet.Host, addr string) bool {
	t.Helper()
	out, err := h.Exec(context.Background(), "ip", "-o", "addr", "show", "dev", h.Iface())
	if err != nil {
		t.Fatalf("%s: ip addr: %v", h.Name(), err)
	}
	return strings.Contains(string(out), " "+addr+"/")
}

// VRRPConf renders a minimal keepalived.conf with one vrrp_instance; body
// holds extra instance lines (authentication, unicast_peer, nopreempt…).
func VRRPConf(name string, vrid, prio int, advertInt string, vip string, body string) string {
	return fmt.Sprintf(`global_defs {
    router_id %s
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
%s
    virtual_ipaddress {
        %s
    }
}
`, name, vrid, prio, advertInt, body, vip)
}
