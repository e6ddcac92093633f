package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/netlab"
	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// The lab of the seed chapter, on TEST-NET-1: a client, two load
// balancers sharing the VIP by VRRP, and real servers with the VIP on lo
// (LVS-DR).
const (
	labVIP    = "192.0.2.100"
	labLVS1   = "192.0.2.11/24"
	labLVS2   = "192.0.2.12/24"
	labRS1    = "192.0.2.21/24"
	labRS2    = "192.0.2.22/24"
	labSorry  = "192.0.2.23/24"
	labClient = "192.0.2.50/24"
	labVRID   = 51
)

// labStarter starts processes from one OS thread that lives until the
// test's cleanup. testnet.Host.Start sets Pdeathsig, which the kernel
// fires when the *thread* that forked the child exits, and Go throws a
// thread away whenever a goroutine exits locked to it, as every
// testnet.Host.Do does: a process started from the test goroutine is
// killed by a later Do as soon as the runtime happens to have run Do's
// goroutine on the same thread. Starting from a thread that never runs
// anything else avoids that.
type labStarter struct {
	t    testing.TB
	jobs chan func()
	dead bool
}

// newLabStarter must be called before anything the test starts with it,
// so that its thread ends only after their cleanups have killed them.
func newLabStarter(t testing.TB) *labStarter {
	s := &labStarter{t: t, jobs: make(chan func())}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		for f := range s.jobs {
			f()
		}
	}()
	t.Cleanup(func() {
		if !s.dead {
			close(s.jobs)
		}
	})
	return s
}

// Run runs f on the starter's thread. f may fail the test (t.Fatal from
// the starter goroutine ends that goroutine; the test then stops here).
func (s *labStarter) Run(f func()) {
	s.t.Helper()
	if s.dead {
		s.t.Fatal("lab starter is gone after an earlier failure")
	}
	done := make(chan bool, 1)
	s.jobs <- func() {
		ok := false
		defer func() { done <- ok }()
		f()
		ok = true
	}
	if !<-done {
		s.dead = true
		s.t.FailNow()
	}
}

// lvsLab is the seed topology on one bridge. The load balancers' switch
// ports carry a pass-everything XDP program, because XDP_TX into a veth
// needs an XDP program on the peer end (issue 4).
type lvsLab struct {
	t      *testing.T
	Net    *testnet.Net
	Start  *labStarter
	Client *testnet.Host
	LVS1   *testnet.Host
	LVS2   *testnet.Host
	RS1    *testnet.Host
	RS2    *testnet.Host
	VIP    netip.Addr
}

// newLVSLab builds client, lvs1, lvs2, rs1 and rs2. The real servers hold
// the VIP on lo with arp_ignore=1 / arp_announce=2; nothing runs yet.
func newLVSLab(t *testing.T) *lvsLab {
	t.Helper()
	n := testnet.New(t)
	l := &lvsLab{t: t, Net: n, Start: newLabStarter(t), VIP: netip.MustParseAddr(labVIP)}
	l.Client = n.AddHost("client", labClient)
	// A veth hands the bridge frames whose TCP checksum the "hardware"
	// would finish (CHECKSUM_PARTIAL); a frame the load balancer's XDP
	// program sends on with XDP_TX has lost that note, so it would reach
	// the real server with a half-done checksum and be dropped
	// (TcpInCsumErrors). A real NIC delivers finished checksums: make the
	// client's veth finish them in software.
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("ethtool not installed: apt-get install ethtool")
	}
	l.Client.MustExec("ethtool", "-K", l.Client.Iface(), "tx", "off")
	l.LVS1 = n.AddHost("lvs1", labLVS1)
	l.LVS2 = n.AddHost("lvs2", labLVS2)
	l.RS1 = l.AddRealServer("rs1", labRS1)
	l.RS2 = l.AddRealServer("rs2", labRS2)
	n.AttachSwitchPass(l.LVS1)
	n.AttachSwitchPass(l.LVS2)
	return l
}

// AddRealServer adds an LVS-DR real server: the VIP on lo, and ARP
// settings that keep it from answering or announcing the VIP.
func (l *lvsLab) AddRealServer(name, addr string) *testnet.Host {
	l.t.Helper()
	h := l.Net.AddHost(name, addr)
	for _, kv := range []string{
		"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
		"net.ipv4.conf." + h.Iface() + ".arp_ignore=1", "net.ipv4.conf." + h.Iface() + ".arp_announce=2",
	} {
		h.MustExec("sysctl", "-q", "-w", kv)
	}
	h.MustExec("ip", "addr", "add", labVIP+"/32", "dev", "lo")
	return h
}

// labNginx is nginx-light serving one page that names its host.
type labNginx struct {
	t      testing.TB
	start  *labStarter
	Host   *testnet.Host
	Conf   string
	Prefix string
	Proc   *testnet.Process
}

// requireNginx skips the test when nginx is not installed.
func requireNginx(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not installed: apt-get install nginx-light")
	}
}

// StartNginx runs nginx in h's namespace, listening on port 80 and
// answering every request with h's name, access log on.
func (l *lvsLab) StartNginx(h *testnet.Host) *labNginx {
	t := l.t
	t.Helper()
	requireNginx(t)
	setup, err := netlab.WriteNginx(t.TempDir(), h.Name())
	if err != nil {
		t.Fatal(err)
	}
	g := &labNginx{t: t, start: l.Start, Host: h, Prefix: setup.Dir, Conf: setup.Conf}
	g.Start()
	return g
}

// Start runs nginx (again) and waits until it answers on port 80.
func (g *labNginx) Start() {
	g.t.Helper()
	g.start.Run(func() { g.Proc = g.Host.Start("nginx", g.setup().Args()...) })
	addr := g.Host.Addr(4)
	testnet.Eventually(g.t, 10*time.Second, func() error {
		if g.Proc.Exited() {
			return fmt.Errorf("%s: nginx exited:\n%s", g.Host.Name(), g.Proc.Log())
		}
		body, err := labGet(g.Host, addr, time.Second)
		if err != nil {
			return err
		}
		if body != g.Host.Name() {
			return fmt.Errorf("%s: nginx answered %q", g.Host.Name(), body)
		}
		return nil
	})
}

// Stop stops nginx as `docker stop` does (SIGTERM, fast shutdown) and
// waits until it has exited.
func (g *labNginx) Stop() {
	g.t.Helper()
	stopProcess(g.t, g.Host, g.Proc, "nginx", syscall.SIGTERM, 10*time.Second)
}

func (g *labNginx) setup() netlab.Nginx { return netlab.Nginx{Dir: g.Prefix, Conf: g.Conf} }

// AccessCount is the number of requests in nginx's access log.
func (g *labNginx) AccessCount() int {
	b, err := os.ReadFile(g.setup().AccessLog())
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// labGet makes one HTTP/1.1 request on a new TCP connection from h to
// addr:80 and returns the body with surrounding space trimmed: the name
// of the real server that answered.
func labGet(h *testnet.Host, addr netip.Addr, timeout time.Duration) (string, error) {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			var c net.Conn
			err := h.Do(func() error {
				var err error
				d := net.Dialer{Timeout: timeout}
				c, err = d.DialContext(ctx, "tcp4", address)
				return err
			})
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := cl.Get("http://" + netip.AddrPortFrom(addr, 80).String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %q", resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// labSplit sends n requests from h to addr, one connection each, and
// counts the answers by real server; failed requests are returned as
// errors (at most the first few are kept).
func labSplit(h *testnet.Host, addr netip.Addr, n int) (map[string]int, []error) {
	got := map[string]int{}
	var errs []error
	failed := 0
	for range n {
		name, err := labGet(h, addr, 2*time.Second)
		if err != nil {
			failed++
			if len(errs) < 5 {
				errs = append(errs, err)
			}
			continue
		}
		got[name]++
	}
	if failed > len(errs) {
		errs = append(errs, fmt.Errorf("%d more failed requests", failed-len(errs)))
	}
	return got, errs
}

// labConf renders a load balancer's keepalived.conf: the seed's
// vrrp_instance (VRRP over eth0, VRID 51, advert_int 1, PASS
// authentication, the VIP) followed by vs, the virtual_server block(s).
func labConf(routerID, state string, prio int, vs string) string {
	return fmt.Sprintf(`global_defs {
    router_id %s
}
vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 123456
    }
    virtual_ipaddress {
        %s
    }
}
%s`, routerID, state, labVRID, prio, labVIP, vs)
}

// labTCPReal renders the seed's real_server block with a fast TCP_CHECK
// (delay_loop comes from the virtual server); extra goes inside the block.
func labTCPReal(addr string, weight int, extra string) string {
	return fmt.Sprintf(`    real_server %s 80 {
        weight %d
%s        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
            connect_port 80
        }
    }
`, strings.Split(addr, "/")[0], weight, extra)
}

// labVS renders the seed's virtual_server for the VIP with delay_loop 1,
// wrr, DR, TCP; extra holds additional virtual-server lines and reals the
// real_server blocks.
func labVS(persistence int, extra string, reals ...string) string {
	p := ""
	if persistence > 0 {
		p = fmt.Sprintf("    persistence_timeout %d\n", persistence)
	}
	return fmt.Sprintf(`virtual_server %s 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
%s%s%s}
`, labVIP, p, extra, strings.Join(reals, ""))
}

// StartLBs runs xdpvip with the XDP dataplane on lvs1 (MASTER, priority
// 100) and lvs2 (BACKUP, 90) with the virtual-server block vs, and waits
// for lvs1 to be MASTER and lvs2 BACKUP.
func (l *lvsLab) StartLBs(vs string) (*Node, *Node) {
	l.t.Helper()
	n1 := l.StartNode(l.LVS1, labConf("lvs1", "MASTER", 100, vs), "--dataplane", "xdp")
	n2 := l.StartNode(l.LVS2, labConf("lvs2", "BACKUP", 90, vs), "--dataplane", "xdp")
	n1.WaitState("VI_1", "MASTER", 10*time.Second)
	n2.WaitState("VI_1", "BACKUP", 5*time.Second)
	return n1, n2
}

// StartNode is StartXdpvip from the lab's starter thread.
func (l *lvsLab) StartNode(h *testnet.Host, conf string, extra ...string) *Node {
	l.t.Helper()
	var n *Node
	l.Start.Run(func() { n = StartXdpvip(l.t, h, conf, extra...) })
	return n
}

// RestartNode is Node.Restart from the lab's starter thread.
func (l *lvsLab) RestartNode(n *Node, extra ...string) {
	l.t.Helper()
	l.Start.Run(func() { n.Restart(extra...) })
}

// labService is the lab's virtual server in node's listing.
func labService(node *Node) (lvs.ServiceView, error) {
	for _, s := range node.LVS().Services {
		if s.Addr.String() == labVIP && s.Port == 80 {
			return s, nil
		}
	}
	return lvs.ServiceView{}, fmt.Errorf("%s: virtual server %s:80 not listed", node.Host.Name(), labVIP)
}

// cliLVS runs `xdpvip lvs --json` against node and decodes it.
func cliLVS(node *Node) (lvs.ListJSON, error) {
	var l lvs.ListJSON
	out, err := node.CLI("lvs", "--json")
	if err != nil {
		return l, fmt.Errorf("%s: xdpvip lvs --json: %v: %s", node.Host.Name(), err, out)
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		return l, fmt.Errorf("%s: xdpvip lvs --json: %v: %s", node.Host.Name(), err, out)
	}
	return l, nil
}

// cliDest finds real server rs of the lab's virtual server in `xdpvip lvs
// --json`.
func cliDest(node *Node, rs string) (lvs.DestView, lvs.ServiceView, error) {
	l, err := cliLVS(node)
	if err != nil {
		return lvs.DestView{}, lvs.ServiceView{}, err
	}
	addr := strings.Split(rs, "/")[0]
	for _, s := range l.Services {
		if s.Addr.String() != labVIP || s.Port != 80 {
			continue
		}
		for _, d := range s.Dests {
			if d.Addr.String() == addr {
				return d, s, nil
			}
		}
		return lvs.DestView{}, s, fmt.Errorf("%s: real server %s not listed: %+v", node.Host.Name(), addr, s.Dests)
	}
	return lvs.DestView{}, lvs.ServiceView{}, fmt.Errorf("%s: virtual server %s:80 not listed", node.Host.Name(), labVIP)
}

// waitCLIDest waits until `xdpvip lvs --json` on node lists real server
// rs as up (or down) and returns its entry.
func waitCLIDest(t testing.TB, node *Node, rs string, up bool, timeout time.Duration) lvs.DestView {
	t.Helper()
	var last lvs.DestView
	testnet.Eventually(t, timeout, func() error {
		if node.Proc.Exited() {
			return fmt.Errorf("%s: xdpvip exited:\n%s", node.Host.Name(), node.Proc.Log())
		}
		d, _, err := cliDest(node, rs)
		if err != nil {
			return err
		}
		last = d
		if d.Up != up {
			return fmt.Errorf("%s: real server %s up=%v (state %s), want up=%v", node.Host.Name(), rs, d.Up, d.State, up)
		}
		return nil
	})
	return last
}

// errLabNotAnswered is returned by waitAnswered when no request came back.
var errLabNotAnswered = errors.New("no answer through the VIP")

// waitServedBy waits until requests through the VIP are answered by every
// real server in want (and only by them), sending up to batch requests per
// attempt.
func waitServedBy(t testing.TB, client *testnet.Host, vip netip.Addr, want []string, batch int, timeout time.Duration) {
	t.Helper()
	testnet.Eventually(t, timeout, func() error {
		got, errs := labSplit(client, vip, batch)
		if len(got) == 0 {
			return fmt.Errorf("%w: %v", errLabNotAnswered, errs)
		}
		for _, w := range want {
			if got[w] == 0 {
				return fmt.Errorf("no answer from %s in %d requests: %v (errors %v)", w, batch, got, errs)
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("answered by %v, want only %v", got, want)
		}
		return nil
	})
}
