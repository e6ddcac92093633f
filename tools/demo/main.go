// Command demo is xdpvip's narrated live demo (`make demo`): the seed
// chapter's LVS-DR lab in network namespaces — a client, two load balancers
// running xdpvip with the chapter's keepalived.conf (adapted to the lab's
// addresses), two nginx real servers holding the VIP on lo — then the
// chapter's two drills: stop the MASTER load balancer, and stop a real
// server. Everything it creates is removed at the end, also on Ctrl-C.
//
// All traffic stays inside the namespaces it creates (TEST-NET-1,
// 192.0.2.0/24).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/netlab"
	"github.com/xdpvip/xdpvip/internal/nsutil"
	"github.com/xdpvip/xdpvip/pkg/config"
)

// The lab's addresses: the chapter's hosts .101–.104 and its VIP .211,
// moved to TEST-NET-1.
const (
	vip       = "192.0.2.211"
	clientIP  = "192.0.2.10"
	lvs1IP    = "192.0.2.101"
	lvs2IP    = "192.0.2.102"
	rs1IP     = "192.0.2.103"
	rs2IP     = "192.0.2.104"
	prefixLen = "/24"
)

// host is one namespace of the lab.
type host = netlab.Host

type lab struct {
	net    *netlab.Net
	net2   *netlab.Net // the client's switch in the ECMP act (ecmp.go)
	dir    string
	xdpvip string
	hosts  map[string]*host
	procs  map[string]*netlab.Process
	start  time.Time
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "httpd" {
		httpd(os.Args[2:])
		return
	}
	bin := flag.String("xdpvip", "bin/xdpvip", "the xdpvip binary")
	act := flag.String("act", "vrrp", "vrrp: the chapter's VRRP pair; ecmp: BGP and ECMP with BIRD (ecmp.go)")
	keep := flag.Bool("keep", false, "leave the lab running at the end (remove it with Ctrl-C)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fail("the demo builds network namespaces: run it as root")
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fail("%v", err)
	}
	l := &lab{xdpvip: abs, hosts: map[string]*host{}, procs: map[string]*netlab.Process{}, start: time.Now()}
	l.dir, err = os.MkdirTemp("", "xdpvip-demo-")
	if err != nil {
		fail("%v", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Println("\ninterrupted: tearing the lab down")
		l.teardown()
		os.Exit(130)
	}()
	if *act == "ecmp" {
		err = l.runECMP(*keep, sigs)
	} else {
		err = l.run(*keep, sigs)
	}
	l.teardown()
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
	os.Exit(1)
}

func (l *lab) say(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}

func title(s string) {
	fmt.Printf("\n==== %s %s\n", s, strings.Repeat("=", max(0, 70-len(s))))
}

// sh runs a command and returns its output; an error carries the output.
func sh(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func must(out string, err error) string {
	if err != nil {
		panic(err)
	}
	return out
}

// in runs a command inside host h's network namespace (nsenter keeps the
// mount namespace, so /sys/fs/bpf is the host's).
func (l *lab) in(h *host, name string, args ...string) (string, error) {
	return sh("nsenter", append([]string{"--net=/run/netns/" + h.NS(), name}, args...)...)
}

func (l *lab) run(keep bool, sigs chan os.Signal) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	title("1. The lab")
	l.build()
	l.say("namespaces %s-{client,lvs1,lvs2,rs1,rs2} on bridge br0 in %s", l.net.Prefix(), l.net.SwitchNS())
	for _, n := range []string{"client", "lvs1", "lvs2", "rs1", "rs2"} {
		h := l.hosts[n]
		fmt.Printf("           %-6s %-14s %s\n", n, h.Addr(4), h.MAC())
	}
	fmt.Printf("           VIP    %s (on lo of rs1/rs2 with arp_ignore=1, arp_announce=2: LVS-DR)\n", vip)

	title("2. Real servers: nginx on rs1 and rs2")
	for _, n := range []string{"rs1", "rs2"} {
		l.startWeb(n)
	}
	l.say("rs1 and rs2 answer on port 80 with their names")

	title("3. xdpvip on lvs1 (MASTER, priority 100) and lvs2 (BACKUP, priority 90)")
	l.writeConfs()
	fmt.Printf("the chapter's keepalived.conf, addresses adapted (%s):\n\n", filepath.Join(l.dir, "lvs1.conf"))
	fmt.Println(indent(must(sh("cat", filepath.Join(l.dir, "lvs1.conf")))))
	t0 := time.Now()
	l.startLB("lvs1")
	l.waitState("lvs1", "MASTER", 15*time.Second)
	l.say("lvs1 is MASTER after %s (a non-owner waits Master_Down_Interval = 3 × advert_int + skew, as keepalived)", since(t0))
	l.startLB("lvs2")
	l.waitState("lvs2", "BACKUP", 5*time.Second)
	l.say("lvs2 hears lvs1's adverts and stays BACKUP")
	l.waitLVSUp("lvs1", 2, 20*time.Second)
	l.show("lvs1", "status")
	l.show("lvs2", "status")
	l.show("lvs1", "lvs")

	title("4. The client uses the VIP")
	served := l.requests(10)
	l.say("10 requests to http://%s/: %s (persistence_timeout 50 keeps one client on one real server)", vip, served)
	l.arp("lvs1")
	l.show("lvs1", "lvs", "--stats")

	title("5. Drill 1: the MASTER load balancer stops (service keepalived stop)")
	t0 = time.Now()
	l.stopProc("lvs1", syscall.SIGTERM)
	l.say("xdpvip on lvs1 stopped (SIGTERM: it sends a priority-0 advert and removes the VIP)")
	l.waitState("lvs2", "MASTER", 10*time.Second)
	l.say("lvs2 is MASTER %s after the stop (skew time, as the RFC says)", since(t0))
	l.waitNeigh("lvs2", 10*time.Second)
	l.say("the client's ARP entry for the VIP points at lvs2 %s after the stop (gratuitous ARP)", since(t0))
	l.arp("lvs2")
	l.waitRequest(10 * time.Second)
	l.say("first answer through lvs2 %s after the stop", since(t0))
	served = l.requests(10)
	l.say("10 requests: %s — the same real server: lvs2 built the same Maglev table", served)
	l.show("lvs2", "status")

	l.say("lvs1 comes back: it has the higher priority, so it preempts (the default)")
	t0 = time.Now()
	l.startLB("lvs1")
	l.waitState("lvs1", "MASTER", 15*time.Second)
	l.waitState("lvs2", "BACKUP", 5*time.Second)
	l.say("lvs1 is MASTER again %s after its start", since(t0))
	l.waitNeigh("lvs1", 10*time.Second)
	l.arp("lvs1")

	title("6. Drill 2: a real server stops (docker stop nginx)")
	first := strings.Fields(strings.ReplaceAll(served, "×", " "))[0]
	other := map[string]string{"rs1": "rs2", "rs2": "rs1"}[first]
	l.waitLVSUp("lvs1", 2, 20*time.Second)
	t0 = time.Now()
	l.stopProc(first, syscall.SIGTERM)
	chk := l.checkTiming("lvs1")
	// A refused connection fails at once: the checker notices within one
	// delay_loop, then retries `retry` times, delay_before_retry apart.
	expect := chk.DelayLoop + time.Duration(chk.Retry)*chk.DelayBeforeRetry
	l.say("nginx on %s stopped; TCP_CHECK as parsed: connect_timeout %s, retry %d (the chapter's nb_get_retry is not a TCP_CHECK keyword: keepalived and xdpvip ignore it, retry stays 1), delay_before_retry %s, delay_loop %s: out of the pool within about %s",
		first, chk.ConnectTimeout, chk.Retry, chk.DelayBeforeRetry, chk.DelayLoop, expect)
	l.waitLVSUp("lvs1", 1, expect+10*time.Second)
	took := time.Since(t0)
	l.say("xdpvip took %s out of the pool %s after the stop (expected about %s)", first, took.Round(time.Millisecond), expect)
	if took > expect+5*time.Second {
		return fmt.Errorf("%s left the pool after %s, expected about %s from retry %d", first, took, expect, chk.Retry)
	}
	l.show("lvs1", "lvs")
	l.waitRequest(10 * time.Second)
	served = l.requests(10)
	l.say("10 requests: %s", served)
	if strings.Contains(served, first) {
		return fmt.Errorf("requests still reach %s after it was taken out", first)
	}
	t0 = time.Now()
	l.startWeb(first)
	l.say("nginx on %s started again", first)
	l.waitLVSUp("lvs1", 2, 30*time.Second)
	l.say("%s is back in the pool %s after its start (the client stays on %s: persistence)", first, since(t0), other)
	l.show("lvs1", "lvs")

	title("7. Done")
	l.say("both drills passed")
	if keep {
		l.say("--keep: the lab stays up; xdpvip status --control-socket %s; Ctrl-C removes it", filepath.Join(l.dir, "lvs1.sock"))
		<-sigs
	}
	return nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// build creates the switch namespace with its bridge and the five hosts.
func (l *lab) build() {
	var err error
	if l.net, err = netlab.New("xvdemo"); err != nil {
		panic(err)
	}
	for _, spec := range [][2]string{{"client", clientIP}, {"lvs1", lvs1IP}, {"lvs2", lvs2IP}, {"rs1", rs1IP}, {"rs2", rs2IP}} {
		port := "p-" + spec[0]
		h, err := l.net.AddHost(spec[0], spec[1]+prefixLen, netlab.WithPort(port))
		if err != nil {
			panic(err)
		}
		l.hosts[h.Name()] = h
		switch {
		case strings.HasPrefix(h.Name(), "rs"):
			// LVS-DR: the real server holds the VIP but never answers or
			// announces it in ARP.
			for _, kv := range []string{"all.arp_ignore=1", "all.arp_announce=2", "eth0.arp_ignore=1", "eth0.arp_announce=2"} {
				must(l.in(h, "sysctl", "-q", "-w", "net.ipv4.conf."+kv))
			}
			must(sh("ip", "-n", h.NS(), "addr", "add", vip+"/32", "dev", "lo"))
		case strings.HasPrefix(h.Name(), "lvs"):
			// XDP_TX into a veth needs an XDP program on the other end.
			must("", nsutil.AttachXDPPass(l.net.SwitchNS(), port))
		case h.Name() == "client":
			// veth leaves TCP checksums to "hardware" (CHECKSUM_PARTIAL);
			// a frame the LB forwards with XDP_TX has lost that note.
			// A real NIC finishes them: make the veth do it in software.
			if _, err := l.in(h, "ethtool", "-K", "eth0", "tx", "off"); err != nil {
				fail("ethtool is needed for the demo (apt-get install ethtool): %v", err)
			}
		}
	}
}

// startWeb runs nginx (or, without nginx, this program's small HTTP
// server) on a real server.
func (l *lab) startWeb(name string) {
	h := l.hosts[name]
	dir := filepath.Join(l.dir, name)
	var cmd []string
	if nginx, err := exec.LookPath("nginx"); err == nil {
		g, err := netlab.WriteNginx(dir, name)
		must("", err)
		cmd = append([]string{nginx}, g.Args()...)
	} else {
		self, _ := os.Executable()
		cmd = []string{self, "httpd", name}
	}
	l.spawn(name, h, filepath.Join(l.dir, name+".log"), cmd...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if out, err := l.in(h, "curl", "-s", "--max-time", "1", "http://"+h.Addr(4).String()+"/"); err == nil && strings.TrimSpace(out) == name {
			return
		}
		if time.Now().After(deadline) {
			panic(fmt.Errorf("%s's web server did not come up; log %s", name, filepath.Join(l.dir, name+".log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpd is the fallback real server: it answers every request with its name.
func httpd(args []string) {
	name := "rs"
	if len(args) > 0 {
		name = args[0]
	}
	err := http.ListenAndServe(":80", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, name+"\n")
	}))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// spawn starts a long-running process in h's namespace, in its own
// process group, logging to logPath.
func (l *lab) spawn(key string, h *host, logPath string, argv ...string) {
	p, err := h.Start(logPath, argv[0], argv[1:]...)
	if err != nil {
		panic(err)
	}
	l.procs[key] = p
}

// stopProc signals a process started by spawn (its whole group) and
// waits for it to exit, killing the group after 10 s.
func (l *lab) stopProc(key string, sig syscall.Signal) {
	if p := l.procs[key]; p != nil {
		_ = p.SignalGroup(sig)
		p.Stop(10 * time.Second)
	}
	delete(l.procs, key)
}

// writeConfs writes the chapter's master and backup configurations with
// the lab's interface and addresses.
func (l *lab) writeConfs() {
	for _, n := range []struct {
		name, state string
		prio        int
	}{{"lvs1", "MASTER", 100}, {"lvs2", "BACKUP", 90}} {
		conf := fmt.Sprintf(`! The chapter's keepalived.conf, adapted to the lab (addresses, router_id).
global_defs {
    router_id %[1]s
    vrrp_skip_check_adv_addr
    vrrp_strict
    vrrp_garp_interval 0
    vrrp_gna_interval 0
}

vrrp_instance VI_1 {
    state %[2]s
    interface eth0
    virtual_router_id 51
    priority %[3]d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 123456
    }
    virtual_ipaddress {
       %[4]s
    }
}

virtual_server %[4]s 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
    persistence_timeout 50

    real_server %[5]s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 3
            connect_port 80
        }
    }

    real_server %[6]s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 3
            connect_port 80
        }
    }
}
`, n.name, n.state, n.prio, vip, rs1IP, rs2IP)
		must("", os.WriteFile(filepath.Join(l.dir, n.name+".conf"), []byte(conf), 0o644))
	}
}

// checkTiming returns the first real server's checker of a load
// balancer's configuration, as xdpvip parses it.
func (l *lab) checkTiming(name string) *config.Checker {
	cfg, _, err := config.Load(filepath.Join(l.dir, name+".conf"))
	must("parse "+name+".conf", err)
	return cfg.VirtualServers[0].RealServers[0].Checkers[0]
}

func (l *lab) sock(name string) string { return filepath.Join(l.dir, name+".sock") }

func (l *lab) bpfDir(name string) string { return "/sys/fs/bpf/" + l.net.Prefix() + "-" + name }

// startLB runs xdpvip on a load balancer.
func (l *lab) startLB(name string) {
	l.spawn(name, l.hosts[name], filepath.Join(l.dir, name+".log"), l.xdpvip, "run",
		"-f", filepath.Join(l.dir, name+".conf"), "--control-socket", l.sock(name),
		"--pid-file", filepath.Join(l.dir, name+".pid"), "--bpf-dir", l.bpfDir(name), "--dataplane", "xdp")
}

func (l *lab) status(name string) (daemon.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var st daemon.Status
	err := control.Call(ctx, l.sock(name), "status", &st)
	return st, err
}

func (l *lab) waitState(name, state string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if st, err := l.status(name); err == nil && len(st.Instances) > 0 {
			last = st.Instances[0].State
			if last == state {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	panic(fmt.Errorf("%s did not reach %s within %s (last %q); log %s", name, state, timeout, last, filepath.Join(l.dir, name+".log")))
}

// waitLVSUp waits until the load balancer has n real servers up.
func (l *lab) waitLVSUp(name string, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var list daemon.LVSList
		err := control.Call(ctx, l.sock(name), "lvs", &list)
		cancel()
		if err == nil && len(list.Services) == 1 {
			up := 0
			for _, d := range list.Services[0].Dests {
				if d.Up && d.Weight > 0 {
					up++
				}
			}
			if up == n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	panic(fmt.Errorf("%s: not %d real servers up within %s", name, n, timeout))
}

// show prints an xdpvip command's output for a load balancer.
func (l *lab) show(name string, args ...string) {
	argv := append(append([]string{}, args...), "--control-socket", l.sock(name))
	fmt.Printf("\n%s# xdpvip %s\n", name, strings.Join(args, " "))
	out, err := sh(l.xdpvip, argv...)
	if err != nil {
		panic(err)
	}
	fmt.Println(indent(out))
}

// requests sends n requests from the client and summarises who answered.
func (l *lab) requests(n int) string {
	count := map[string]int{}
	var order []string
	for i := 0; i < n; i++ {
		out, err := l.in(l.hosts["client"], "curl", "-s", "--max-time", "2", "http://"+vip+"/")
		name := strings.TrimSpace(out)
		if err != nil {
			name = "error"
		}
		if count[name] == 0 {
			order = append(order, name)
		}
		count[name]++
	}
	parts := make([]string, 0, len(order))
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s×%d", k, count[k]))
	}
	return strings.Join(parts, ", ")
}

func (l *lab) waitRequest(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := l.in(l.hosts["client"], "curl", "-s", "--max-time", "0.5", "http://"+vip+"/"); err == nil {
			return
		}
	}
	panic(errors.New("no answer through the VIP"))
}

// arp shows the client's neighbour entry for the VIP, as the chapter's
// `arp -n` does, and says whose MAC it is.
func (l *lab) arp(expect string) {
	out := strings.TrimSpace(must(l.in(l.hosts["client"], "ip", "neigh", "show", vip)))
	fmt.Printf("\nclient# ip neigh show %s      (the chapter's arp -n)\n    %s   ← %s's MAC is %s\n", vip, out, expect, l.hosts[expect].MAC())
}

// waitNeigh waits until the client's entry for the VIP holds lb's MAC.
// The client keeps sending requests meanwhile, as real clients do.
func (l *lab) waitNeigh(lb string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, _ := l.in(l.hosts["client"], "ip", "neigh", "show", vip)
		if strings.Contains(out, l.hosts[lb].MAC().String()) {
			return
		}
		_, _ = l.in(l.hosts["client"], "curl", "-s", "--max-time", "0.2", "http://"+vip+"/")
	}
	panic(fmt.Errorf("the client's neighbour entry for the VIP did not move to %s", lb))
}

// teardown stops every process and removes the namespaces, pins and files.
func (l *lab) teardown() {
	for key := range l.procs {
		l.stopProc(key, syscall.SIGTERM)
	}
	if l.net2 != nil {
		_ = l.net2.Close()
	}
	if l.net != nil {
		for _, n := range []string{"lvs1", "lvs2", "lb1", "lb2", "lb3"} {
			_ = os.RemoveAll(l.bpfDir(n))
		}
		_ = l.net.Close()
	}
	if l.dir != "" {
		_ = os.RemoveAll(l.dir)
	}
}
