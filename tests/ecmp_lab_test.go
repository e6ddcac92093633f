package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/netlab"
	"github.com/xdpvip/xdpvip/internal/testnet"
)

// The ECMP lab (issue 14): BIRD 2 in a namespace as the top-of-rack
// router, three xdpvip load balancers peering with it over eBGP, two
// nginx real servers (LVS-DR, the VIP on lo) on the rack subnet, and a
// client on another subnet behind the router:
//
//	client 10.78.50.2 ── eth1 router 10.78.50.1 / 10.78.1.1 eth0 ── rack bridge
//	                                                        ├── lb1 10.78.1.11  (AS 65010)
//	                                                        ├── lb2 10.78.1.12
//	                                                        ├── lb3 10.78.1.13
//	                                                        ├── rs1 10.78.1.21  (VIP on lo)
//	                                                        └── rs2 10.78.1.22
//
// The router installs the VIP's /32 with one next hop per announcing node
// (`merge paths on`) and hashes flows on the 5-tuple
// (fib_multipath_hash_policy=1).
const (
	ecmpVIP      = "10.78.9.1"
	ecmpRouter   = "10.78.1.1"
	ecmpClientGW = "10.78.50.1"
	ecmpHold     = 3 * time.Second
	ecmpNodes    = 3
	// The long-lived downloads: bigSize bytes at bigRate bytes/s each.
	bigSize = 150 << 10
	bigRate = "10k"
)

type ecmpLab struct {
	t      *testing.T
	Rack   *testnet.Net
	Start  *labStarter
	Router *testnet.Host
	Client *testnet.Host
	LBs    []*testnet.Host
	RSs    []*testnet.Host
	Nodes  []*Node
	bird   *testnet.Process
	birdS  string
	VIP    netip.Addr
	// BFD: BIRD and the nodes run BFD on their sessions.
	BFD bool
	// conf renders node i's keepalived.conf.
	conf    func(i int, h *testnet.Host) string
	Nginx   []*testnet.Process
	started time.Time
	// Announced is how long the router took, from starting the daemons,
	// to have a next hop for every node.
	Announced time.Duration
}

// requireBird skips when BIRD 2 is not installed.
func requireBird(t testing.TB) {
	t.Helper()
	for _, b := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skip("BIRD 2 not installed: apt-get install bird2 (tools/deps.sh)")
		}
	}
}

// newECMPLab builds the lab and starts BIRD, nginx and the three daemons,
// and waits until the router has the VIP with three next hops. With bfd,
// the BGP sessions have BFD (300 ms × 3) too.
func newECMPLab(t *testing.T, bfd bool) *ecmpLab {
	t.Helper()
	return newECMPLabWith(t, bfd, false)
}

// newECMPLabWith is newECMPLab, the nodes exchanging their flows when
// flowSync is set.
func newECMPLabWith(t *testing.T, bfd, flowSync bool) *ecmpLab {
	t.Helper()
	l := newBGPLab(t, ecmpNodes, bfd, func(i int, h *testnet.Host) string {
		return ecmpConfReals(h.Name(), i%2 == 1, bfd, 2, flowSync)
	})
	l.WaitNextHops(ecmpNodes, 20*time.Second)
	l.Announced = time.Since(l.started)
	t.Logf("router has %d next hops %v after starting the daemons", ecmpNodes, l.Announced.Round(time.Millisecond))
	return l
}

// newBGPLab builds the lab with nodes load balancers, each running
// conf(i, host), and starts everything.
func newBGPLab(t *testing.T, nodes int, bfd bool, conf func(i int, h *testnet.Host) string) *ecmpLab {
	t.Helper()
	requireBird(t)
	requireNginx(t)
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("ethtool not installed: apt-get install ethtool")
	}
	rack := testnet.New(t)
	l := &ecmpLab{t: t, Rack: rack, Start: newLabStarter(t), VIP: netip.MustParseAddr(ecmpVIP), BFD: bfd, conf: conf}
	l.Router = rack.AddHost("router", ecmpRouter+"/24")
	for i := range nodes {
		l.LBs = append(l.LBs, rack.AddHost(fmt.Sprintf("lb%d", i+1), fmt.Sprintf("10.78.1.%d/24", 11+i)))
	}
	for range 2 {
		l.addRealServer()
	}
	for _, h := range l.LBs {
		rack.AttachSwitchPass(h)
	}

	// The client subnet: its own bridge, the router's second leg plugged
	// into it by hand (a testnet host has one interface).
	cnet := testnet.New(t)
	l.Client = cnet.AddHost("client", "10.78.50.2/24")
	l.Client.MustExec("ip", "route", "add", "default", "via", ecmpClientGW)
	mustRun(t, "ip", "-n", l.Router.NS(), "link", "add", "eth1", "type", "veth", "peer", "name", "prt", "netns", cnet.SwitchNS())
	mustRun(t, "ip", "-n", cnet.SwitchNS(), "link", "set", "prt", "master", testnet.BridgeName, "up")
	mustRun(t, "ip", "-n", l.Router.NS(), "addr", "add", ecmpClientGW+"/24", "dev", "eth1")
	mustRun(t, "ip", "-n", l.Router.NS(), "link", "set", "eth1", "up")
	l.Router.MustExec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
	// Finished checksums on the wire, as a NIC delivers them: an XDP_TX'd
	// frame has lost the veth's CHECKSUM_PARTIAL note (see newLVSLab).
	l.Client.MustExec("ethtool", "-K", "eth0", "tx", "off")
	l.Router.MustExec("ethtool", "-K", "eth0", "tx", "off")
	l.Router.MustExec("ethtool", "-K", "eth1", "tx", "off")

	l.startBird()
	for _, rs := range l.RSs {
		l.Nginx = append(l.Nginx, l.startNginx(rs))
	}
	l.started = time.Now()
	for i, h := range l.LBs {
		l.Nodes = append(l.Nodes, l.startLB(h, i))
	}
	return l
}

// addRealServer adds rsN (10.78.1.20+N): an LVS-DR real server with the
// VIP on lo, answering the client through the router.
func (l *ecmpLab) addRealServer() *testnet.Host {
	i := len(l.RSs) + 1
	h := l.Rack.AddHost(fmt.Sprintf("rs%d", i), fmt.Sprintf("10.78.1.%d/24", 20+i))
	for _, kv := range []string{
		"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
		"net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2",
	} {
		h.MustExec("sysctl", "-q", "-w", kv)
	}
	h.MustExec("ip", "addr", "add", ecmpVIP+"/32", "dev", "lo")
	h.MustExec("ip", "route", "add", "default", "via", ecmpRouter)
	l.RSs = append(l.RSs, h)
	return h
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// ecmpConfReals is a load balancer's keepalived.conf: no vrrp_instance, a
// bgp block without router_id/interface (the defaults come from the route
// to the router), and the VIP announced for ECMP with real servers
// rs1..rsN. reverse lists them in the other order: the table must not
// depend on it. With flowSync the other nodes are flow_sync_peer.
func ecmpConfReals(name string, reverse, bfd bool, n int, flowSync bool) string {
	var reals []string
	for i := range n {
		reals = append(reals, labTCPReal(fmt.Sprintf("10.78.1.%d", 21+i), 1, ""))
	}
	if reverse {
		slices.Reverse(reals)
	}
	bfdLine, peers := "", ""
	if bfd {
		bfdLine = "        bfd\n"
	}
	for i := range ecmpNodes {
		if other := fmt.Sprintf("lb%d", i+1); flowSync && other != name {
			peers += fmt.Sprintf("    flow_sync_peer 10.78.1.%d\n", 11+i)
		}
	}
	return netlab.ECMPConf(name, ecmpRouter, int(ecmpHold/time.Second), bfdLine, peers, ecmpVIP, strings.Join(reals, ""))
}

func (l *ecmpLab) startLB(h *testnet.Host, i int) *Node {
	l.t.Helper()
	var n *Node
	l.Start.Run(func() { n = StartXdpvip(l.t, h, l.conf(i, h), "--dataplane", "xdp") })
	return n
}

func (l *ecmpLab) startBird() {
	t := l.t
	t.Helper()
	dir := t.TempDir()
	l.birdS = filepath.Join(dir, "bird.ctl")
	var b strings.Builder
	fmt.Fprintf(&b, `log stderr all;
router id %s;
protocol device { scan time 1; }
protocol kernel {
    ipv4 { import none; export all; };
    merge paths on;
    scan time 1;
}
template bgp lb {
    local %s as 65000;
    direct;
    hold time %d;
    keepalive time 1;
    connect retry time 1;
    error wait time 1, 2;
    graceful restart on;
    ipv4 { import all; export none; };
    bfd %s;
}
`, ecmpRouter, ecmpRouter, int(ecmpHold/time.Second), map[bool]string{true: "on", false: "off"}[l.BFD])
	if l.BFD {
		b.WriteString("protocol bfd {\n    interface \"eth0\" { interval 300 ms; multiplier 3; };\n}\n")
	}
	for i := range l.LBs {
		fmt.Fprintf(&b, "protocol bgp lb%d from lb { neighbor 10.78.1.%d as 65010; }\n", i+1, 11+i)
	}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l.Start.Run(func() {
		l.bird = l.Router.Start("bird", "-f", "-c", conf, "-s", l.birdS, "-P", filepath.Join(dir, "bird.pid"))
	})
	testnet.Eventually(t, 10*time.Second, func() error {
		if l.bird.Exited() {
			return fmt.Errorf("bird exited:\n%s", l.bird.Log())
		}
		_, err := l.Birdc("show", "status")
		return err
	})
}

// Birdc runs a birdc command against the lab's BIRD.
func (l *ecmpLab) Birdc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := l.Router.Exec(ctx, "birdc", append([]string{"-s", l.birdS}, args...)...)
	return string(out), err
}

// NextHops is the router's kernel route for the VIP: its next hops.
func (l *ecmpLab) NextHops() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := l.Router.Exec(ctx, "ip", "-4", "route", "show", ecmpVIP+"/32")
	if err != nil {
		return nil
	}
	var hops []string
	for _, f := range strings.Split(string(out), "\n") {
		fs := strings.Fields(f)
		for i := 0; i+1 < len(fs); i++ {
			if fs[i] == "via" {
				hops = append(hops, fs[i+1])
			}
		}
	}
	return hops
}

// WaitNextHops waits until the VIP's route has n next hops and returns
// how long that took.
func (l *ecmpLab) WaitNextHops(n int, timeout time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		hops := l.NextHops()
		if len(hops) == n {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			proto, _ := l.Birdc("show", "protocols", "all")
			l.t.Fatalf("router: VIP next hops %v, want %d\n%s\nbird:\n%s", hops, n, proto, l.bird.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startNginx runs nginx on a real server: "/" answers the host's name,
// "/big" is bigSize bytes sent at bigRate (a steady download).
func (l *ecmpLab) startNginx(h *testnet.Host) *testnet.Process {
	t := l.t
	t.Helper()
	g, err := netlab.WriteNginxWith(t.TempDir(), h.Name(), netlab.NginxOptions{
		Connections: 4096, Backlog: 4096, NoAccessLog: true, Big: bigSize, BigRate: bigRate,
	})
	if err != nil {
		t.Fatal(err)
	}
	var p *testnet.Process
	l.Start.Run(func() { p = h.Start("nginx", g.Args()...) })
	testnet.Eventually(t, 10*time.Second, func() error {
		if p.Exited() {
			return fmt.Errorf("%s: nginx exited:\n%s", h.Name(), p.Log())
		}
		body, err := labGet(h, h.Addr(4), time.Second)
		if err == nil && body != h.Name() {
			err = fmt.Errorf("%s: nginx answered %q", h.Name(), body)
		}
		return err
	})
	return p
}

// dialFromClient opens a TCP connection from the client to the VIP,
// from source port sport (0: any).
func (l *ecmpLab) dialFromClient(sport int, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := l.Client.Do(func() error {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{Port: sport}}
		var err error
		c, err = d.Dial("tcp4", net.JoinHostPort(ecmpVIP, "80"))
		return err
	})
	return c, err
}

// getFrom makes one HTTP/1.0 request for path on a new connection from
// source port sport and returns the body.
func (l *ecmpLab) getFrom(sport int, path string, timeout time.Duration) (string, error) {
	c, err := l.dialFromClient(sport, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: vip\r\n\r\n", path); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	_, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok || !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		return "", fmt.Errorf("bad answer %q", b)
	}
	return strings.TrimSpace(body), nil
}

// conns returns each node's count of new flows for the VIP (XDP counters).
func (l *ecmpLab) conns() []uint64 {
	out := make([]uint64, len(l.Nodes))
	for i, n := range l.Nodes {
		if n.Proc.Exited() {
			continue
		}
		for _, s := range n.LVS().Services {
			out[i] += s.Conns
		}
	}
	return out
}

// downloads are long-lived TCP connections, each a steady /big download.
type downloads struct {
	t        testing.TB
	wg       sync.WaitGroup
	done     atomic.Int64
	mu       sync.Mutex
	failures []error
	resets   int
}

// startDownloads opens n downloads (source ports from base) and returns
// once all are connected and receiving.
func (l *ecmpLab) startDownloads(n, base int) *downloads {
	l.t.Helper()
	dl := &downloads{t: l.t}
	var receiving atomic.Int64
	for i := range n {
		dl.wg.Add(1)
		go func() {
			defer dl.wg.Done()
			err := l.download(base+i, &receiving)
			dl.mu.Lock()
			defer dl.mu.Unlock()
			if err != nil {
				if errors.Is(err, errReset) {
					dl.resets++
				}
				dl.failures = append(dl.failures, fmt.Errorf("port %d: %w", base+i, err))
				return
			}
			dl.done.Add(1)
		}()
	}
	testnet.Eventually(l.t, 30*time.Second, func() error {
		if r := receiving.Load(); r < int64(n) {
			return fmt.Errorf("%d of %d downloads receiving", r, n)
		}
		return nil
	})
	return dl
}

var errReset = errors.New("connection reset")

// download reads /big to the end: an error is a lost connection.
func (l *ecmpLab) download(sport int, receiving *atomic.Int64) error {
	c, err := l.dialFromClient(sport, 10*time.Second)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET /big HTTP/1.0\r\nHost: vip\r\n\r\n"); err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	total, first := 0, true
	for {
		// A stall longer than this is a lost flow, not a slow one.
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := c.Read(buf)
		total += k
		if k > 0 && first {
			first = false
			receiving.Add(1)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if strings.Contains(err.Error(), "reset") {
				return fmt.Errorf("%w after %d bytes: %v", errReset, total, err)
			}
			return fmt.Errorf("after %d bytes: %w", total, err)
		}
	}
	if total < bigSize {
		return fmt.Errorf("short download: %d bytes", total)
	}
	return nil
}

// Wait waits for every download to end, logs the first five lost, and
// returns how many completed and how many of the lost were reset.
func (dl *downloads) Wait() (done, resets int) {
	dl.wg.Wait()
	dl.mu.Lock()
	defer dl.mu.Unlock()
	for i, f := range dl.failures {
		if i < 5 {
			dl.t.Logf("lost: %v", f)
		}
	}
	return int(dl.done.Load()), dl.resets
}

// scrape reads a node's /metrics (the default --metrics-address, in the
// node's namespace).
func scrape(h *testnet.Host) (string, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", "127.0.0.1:9165", 2*time.Second)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprint(c, "GET /metrics HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}
