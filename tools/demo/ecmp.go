package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/netlab"
	"github.com/xdpvip/xdpvip/internal/nsutil"
)

// The second act (`make demo-ecmp`, issue 14): BIRD 2 as the top-of-rack
// router, a client on its own subnet behind it, three xdpvip nodes that
// announce the VIP over BGP and all forward it (ECMP), two nginx real
// servers. Addresses as in tests/ecmp_lab_test.go.
const (
	ecmpVIP    = "10.78.9.1"
	routerRack = "10.78.1.1"
	routerCli  = "10.78.50.1"
	ecmpClient = "10.78.50.2"
)

var ecmpLBs = []string{"lb1", "lb2", "lb3"}

// addHost plugs a new namespace into net's bridge, switch port pN.
func (l *lab) addHost(net *netlab.Net, name, addr string, idx int) *host {
	h, err := net.AddHost(name, addr+"/24", netlab.WithPort(fmt.Sprintf("p%d", idx)))
	if err != nil {
		panic(err)
	}
	l.hosts[h.Name()] = h
	return h
}

func (l *lab) buildECMP() {
	var err error
	if l.net, err = netlab.New("xvecmp"); err != nil {
		panic(err)
	}
	if l.net2, err = netlab.New("xvecmpc"); err != nil {
		panic(err)
	}
	router := l.addHost(l.net, "router", routerRack, 0)
	for i, n := range ecmpLBs {
		l.addHost(l.net, n, fmt.Sprintf("10.78.1.%d", 11+i), 1+i)
		must("", nsutil.AttachXDPPass(l.net.SwitchNS(), fmt.Sprintf("p%d", 1+i)))
	}
	for i, n := range []string{"rs1", "rs2"} {
		h := l.addHost(l.net, n, fmt.Sprintf("10.78.1.%d", 21+i), 4+i)
		for _, kv := range []string{"all.arp_ignore=1", "all.arp_announce=2", "eth0.arp_ignore=1", "eth0.arp_announce=2"} {
			must(l.in(h, "sysctl", "-q", "-w", "net.ipv4.conf."+kv))
		}
		must(sh("ip", "-n", h.NS(), "addr", "add", ecmpVIP+"/32", "dev", "lo"))
		must(sh("ip", "-n", h.NS(), "route", "add", "default", "via", routerRack))
	}
	client := l.addHost(l.net2, "client", ecmpClient, 0)
	must(sh("ip", "-n", client.NS(), "route", "add", "default", "via", routerCli))
	sw2 := l.net2.SwitchNS()
	must(sh("ip", "-n", router.NS(), "link", "add", "eth1", "type", "veth", "peer", "name", "prt", "netns", sw2))
	must(sh("ip", "-n", sw2, "link", "set", "prt", "master", netlab.BridgeName, "up"))
	must(sh("ip", "-n", router.NS(), "addr", "add", routerCli+"/24", "dev", "eth1"))
	must(sh("ip", "-n", router.NS(), "link", "set", "eth1", "up"))
	must(l.in(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"))
	for _, hd := range [][2]string{{"client", "eth0"}, {"router", "eth0"}, {"router", "eth1"}} {
		if _, err := l.in(l.hosts[hd[0]], "ethtool", "-K", hd[1], "tx", "off"); err != nil {
			fail("ethtool is needed for the demo (apt-get install ethtool): %v", err)
		}
	}
}

func (l *lab) startBird() {
	conf := fmt.Sprintf(`log stderr all;
router id %[1]s;
protocol device { scan time 1; }
protocol kernel {
    ipv4 { import none; export all; };
    merge paths on;
}
template bgp lb {
    local %[1]s as 65000;
    direct;
    hold time 3;
    keepalive time 1;
    connect retry time 1;
    ipv4 { import all; export none; };
}
protocol bgp lb1 from lb { neighbor 10.78.1.11 as 65010; }
protocol bgp lb2 from lb { neighbor 10.78.1.12 as 65010; }
protocol bgp lb3 from lb { neighbor 10.78.1.13 as 65010; }
`, routerRack)
	path := filepath.Join(l.dir, "bird.conf")
	must("", os.WriteFile(path, []byte(conf), 0o644))
	l.spawn("bird", l.hosts["router"], filepath.Join(l.dir, "bird.log"), "bird", "-f", "-c", path,
		"-s", filepath.Join(l.dir, "bird.ctl"), "-P", filepath.Join(l.dir, "bird.pid"))
}

func (l *lab) writeECMPConf(name string) {
	reals := ""
	for _, rs := range []string{"10.78.1.21", "10.78.1.22"} {
		reals += "    real_server " + rs + " 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n"
	}
	conf := netlab.ECMPConf(name, routerRack, 3, "", "", ecmpVIP, reals)
	must("", os.WriteFile(filepath.Join(l.dir, name+".conf"), []byte(conf), 0o644))
}

// nextHops is the router's route for the VIP.
func (l *lab) nextHops() []string {
	out, _ := l.in(l.hosts["router"], "ip", "-4", "route", "show", ecmpVIP+"/32")
	var hops []string
	fs := strings.Fields(out)
	for i := 0; i+1 < len(fs); i++ {
		if fs[i] == "via" {
			hops = append(hops, fs[i+1])
		}
	}
	return hops
}

func (l *lab) waitHops(n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for len(l.nextHops()) != n {
		if time.Now().After(deadline) {
			panic(fmt.Errorf("the router's VIP route has %v, not %d next hops; bird log %s", l.nextHops(), n, filepath.Join(l.dir, "bird.log")))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flowsPerNode is each node's count of new flows (XDP counters).
func (l *lab) flowsPerNode() map[string]uint64 {
	out := map[string]uint64{}
	for _, n := range ecmpLBs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var list daemon.LVSList
		if control.Call(ctx, l.sock(n), "lvs", &list) == nil {
			for _, s := range list.Services {
				out[n] += s.Conns
			}
		}
		cancel()
	}
	return out
}

// spread sends n requests from distinct source ports and reports who
// carried and who answered them.
func (l *lab) spread(n, base int) string {
	before := l.flowsPerNode()
	answered := map[string]int{}
	for i := range n {
		out, err := l.in(l.hosts["client"], "curl", "-s", "--max-time", "2", "--local-port", fmt.Sprint(base+i), "http://"+ecmpVIP+"/")
		name := strings.TrimSpace(out)
		if err != nil {
			name = "error"
		}
		answered[name]++
	}
	after := l.flowsPerNode()
	var parts []string
	for _, lb := range ecmpLBs {
		parts = append(parts, fmt.Sprintf("%s %d", lb, after[lb]-before[lb]))
	}
	return fmt.Sprintf("carried by %s; answered by rs1 %d, rs2 %d, failed %d", strings.Join(parts, ", "),
		answered["rs1"], answered["rs2"], answered["error"])
}

func (l *lab) runECMP(keep bool, sigs chan os.Signal) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	if _, err := sh("which", "bird"); err != nil {
		return fmt.Errorf("BIRD 2 is needed for this act: apt-get install bird2")
	}
	title("1. The lab: a router, a client behind it, three load balancers")
	l.buildECMP()
	l.say("rack bridge %s: router %s, lb1-lb3 10.78.1.11-13, rs1/rs2 10.78.1.21-22 (VIP %s on lo: LVS-DR)", l.net.SwitchNS(), routerRack, ecmpVIP)
	l.say("client bridge %s: client %s, router %s (net.ipv4.fib_multipath_hash_policy=1: ECMP on the 5-tuple)", l.net2.SwitchNS(), ecmpClient, routerCli)

	title("2. BIRD 2 on the router, nginx on rs1 and rs2")
	l.startBird()
	for _, n := range []string{"rs1", "rs2"} {
		l.startWeb(n)
	}
	l.say("BIRD peers with lb1-lb3 (AS 65010) and installs multipath routes (merge paths on)")

	title("3. xdpvip on lb1, lb2, lb3: one file, announce ecmp")
	for _, n := range ecmpLBs {
		l.writeECMPConf(n)
	}
	fmt.Println(indent(must(sh("cat", filepath.Join(l.dir, "lb1.conf")))))
	t0 := time.Now()
	for _, n := range ecmpLBs {
		l.startLB(n)
	}
	l.waitHops(3, 20*time.Second)
	l.say("the router has three next hops for %s/32 %s after starting the daemons", ecmpVIP, since(t0))
	fmt.Printf("\nrouter# ip route show %s\n%s\n", ecmpVIP, indent(must(l.in(l.hosts["router"], "ip", "route", "show", ecmpVIP))))
	l.show("lb1", "status")

	title("4. The client: 300 connections from distinct source ports")
	l.say("%s", l.spread(300, 30000))
	l.say("every node forwards, and all pick the same real server for a flow (same Maglev table)")

	title("5. Drain lb3: xdpvip drain")
	t0 = time.Now()
	l.show("lb3", "drain", "--wait", "1")
	l.waitHops(2, 5*time.Second)
	l.say("lb3's route is gone from the router; lb3 still forwards stragglers")
	l.say("%s", l.spread(150, 31000))
	l.show("lb3", "drain", "--undo")
	l.waitHops(3, 5*time.Second)
	l.say("drain --undo: three next hops again %s after the drain began", since(t0))

	title("6. lb1 dies: cable cut, daemon killed")
	t0 = time.Now()
	must(sh("ip", "-n", l.net.SwitchNS(), "link", "set", "p1", "down"))
	l.stopProc("lb1", syscall.SIGKILL)
	l.waitHops(2, 10*time.Second)
	l.say("the router dropped lb1 %s after the cut (BGP hold time 3 s; BFD would take < 1 s)", since(t0))
	l.say("%s", l.spread(150, 32000))

	title("7. Done")
	l.say("routes follow what each node can serve; flows keep their real server across nodes")
	if keep {
		l.say("--keep: the lab stays up; xdpvip status --control-socket %s; Ctrl-C removes it", l.sock("lb2"))
		<-sigs
	}
	return nil
}
