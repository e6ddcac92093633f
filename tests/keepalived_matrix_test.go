package tests

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// The live interop matrix (issue 11.6): a mixed pair, keepalived 2.2.7 on
// one node and xdpvip on the other, in both directions, for the shapes
// operators migrate one node at a time. Per case and direction it checks a
// single MASTER for a hold period (from both nodes' netlink address
// events), then measures a graceful and a crash failover, and checks the
// original MASTER's return as keepalived does it (preempt, nopreempt,
// preempt_delay, use_vmac). It prints one line per case and direction.

type matrixCase struct {
	name      string
	version   int
	advertInt string
	interval  time.Duration
	pass      string
	ipv6      bool
	// body adds instance lines for a node (self) and its peer.
	body func(self, peer netip.Addr) string
	// noPreempt: the original MASTER, back, stays BACKUP; preemptDelay:
	// it takes over again only after this long.
	noPreempt    bool
	preemptDelay time.Duration
	// second adds VI_2 (VRID interopVRID+1, matrixVIP2) on the same
	// interface; sync puts VI_1 and VI_2 in one vrrp_sync_group.
	second, sync bool
}

const matrixVIP2 = "192.0.2.101"

func TestKeepalivedInteropMatrix(t *testing.T) {
	testnet.Require(t)
	RequireKeepalived(t)
	unicast := func(self, peer netip.Addr) string {
		return fmt.Sprintf("    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }", self, peer)
	}
	// unicast6 is unicast between the nodes' IPv6 addresses
	// (2001:db8::11, ::12): keepalived sends such adverts with the
	// kernel's default hop limit (64), not 255.
	unicast6 := func(self, peer netip.Addr) string {
		v6 := func(a netip.Addr) string { return fmt.Sprintf("2001:db8::%d", a.As4()[3]) }
		return unicast(netip.MustParseAddr(v6(self)), netip.MustParseAddr(v6(peer)))
	}
	cases := []matrixCase{
		{name: "v2-pass-1s", version: 2, advertInt: "1", interval: time.Second, pass: "123456"},
		{name: "v3-10ms", version: 3, advertInt: "0.01", interval: 10 * time.Millisecond},
		{name: "v3-ipv6-100ms", version: 3, advertInt: "0.1", interval: 100 * time.Millisecond, ipv6: true},
		{name: "v2-unicast", version: 2, advertInt: "1", interval: time.Second, body: unicast},
		{name: "v3-ipv6-unicast", version: 3, advertInt: "0.1", interval: 100 * time.Millisecond, ipv6: true, body: unicast6},
		{name: "v3-nopreempt", version: 3, advertInt: "0.1", interval: 100 * time.Millisecond, noPreempt: true,
			body: func(_, _ netip.Addr) string { return "    nopreempt" }},
		{name: "v3-two-vrids", version: 3, advertInt: "0.1", interval: 100 * time.Millisecond, second: true},
		{name: "v3-sync-group", version: 3, advertInt: "0.1", interval: 100 * time.Millisecond, second: true, sync: true},
		{name: "v3-use-vmac", version: 3, advertInt: "0.1", interval: 100 * time.Millisecond,
			body: func(_, _ netip.Addr) string { return "    use_vmac" }},
		{name: "v3-preempt-delay-2s", version: 3, advertInt: "0.1", interval: 100 * time.Millisecond, preemptDelay: 2 * time.Second,
			body: func(_, _ netip.Addr) string { return "    preempt_delay 2" }},
	}
	var lines []string
	for _, tc := range cases {
		for _, xdpMaster := range []bool{true, false} {
			dir := "keepalived-master"
			if xdpMaster {
				dir = "xdpvip-master"
			}
			t.Run(tc.name+"/"+dir, func(t *testing.T) {
				line := runMatrix(t, tc, xdpMaster)
				t.Log(line)
				lines = append(lines, fmt.Sprintf("%-22s %-18s %s", tc.name, dir, line))
			})
		}
	}
	t.Logf("interop matrix (case, original MASTER, results):\n%s", strings.Join(lines, "\n"))
	suiteReport("interop matrix with keepalived 2.2.7 (case, original MASTER, results):\n%s", strings.Join(lines, "\n"))
}

func runMatrix(t *testing.T, tc matrixCase, xdpMaster bool) string {
	n := testnet.New(t)
	xAddr, kAddr := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")
	xh := n.AddHost("xdpvip", xAddr.String()+"/24", testnet.WithAddr("2001:db8::11/64"))
	kh := n.AddHost("ka", kAddr.String()+"/24", testnet.WithAddr("2001:db8::12/64"))
	vipText, vipPrefix := interopVIP, interopVIP+"/24"
	if tc.ipv6 {
		vipText, vipPrefix = interopVIP6, interopVIP6+"/64"
	}
	vip := netip.MustParseAddr(vipText)
	watch := map[*testnet.Host]*AddrWatch{xh: WatchAddrs(t, xh), kh: WatchAddrs(t, kh)}

	xPrio, kPrio := 90, 100
	if xdpMaster {
		xPrio, kPrio = 100, 90
	}
	conf := func(name string, prio int, self, peer netip.Addr) string {
		c := KAConf(name, tc.version, interopVRID, prio, tc.advertInt, tc.pass, vipPrefix)
		if tc.body != nil {
			c = strings.Replace(c, "    virtual_ipaddress {", tc.body(self, peer)+"\n    virtual_ipaddress {", 1)
		}
		if tc.second {
			i := strings.Index(c, "vrrp_instance VI_1")
			inst := strings.Replace(strings.Replace(c[i:], "VI_1", "VI_2", 1), fmt.Sprintf("virtual_router_id %d", interopVRID), fmt.Sprintf("virtual_router_id %d", interopVRID+1), 1)
			inst = strings.Replace(inst, vipPrefix, matrixVIP2+"/24", 1)
			c += inst
		}
		if tc.sync {
			c += "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
		}
		return c
	}
	// The original MASTER starts first and is MASTER before its peer
	// starts (with nopreempt a later, higher-priority node would not take
	// over either).
	extra := []string{"--dataplane", "xdp"}
	var x *interopXdpvip
	var k interopKA
	startX := func() {
		x = &interopXdpvip{Node: StartXdpvip(t, xh, conf("xdpvip", xPrio, xAddr, kAddr), extra...), extra: extra}
	}
	startK := func() { k = interopKA{StartKeepalived(t, kh, conf("ka", kPrio, kAddr, xAddr))} }
	masterPrio, backupPrio := kPrio, xPrio
	if xdpMaster {
		masterPrio, backupPrio = xPrio, kPrio
	}
	elect := interopMasterDown(tc.version, masterPrio, tc.interval) + 5*time.Second
	var master, backup interopPeer
	if xdpMaster {
		startX()
		x.WaitState("MASTER", elect)
		startK()
		master, backup = x, k
	} else {
		startK()
		k.WaitState("MASTER", elect)
		startX()
		master, backup = k, x
	}
	master.WaitState("MASTER", elect)
	backup.WaitState("BACKUP", elect)
	checkVIPOn(t, vipText, master.H(), backup.H())

	// Hold: one MASTER, the VIP on one node only, for 30 adverts (at
	// least 2 s, at most 5 s).
	hold := min(max(30*tc.interval, 2*time.Second), 5*time.Second)
	vips := []netip.Addr{vip}
	if tc.second {
		vips = append(vips, netip.MustParseAddr(matrixVIP2))
	}
	holdResult := checkSingleHolder(t, vips, hold, master.H(), backup.H(), watch)

	// Graceful failover.
	t0 := time.Now()
	master.Stop()
	gracefulBy := backup.Name()
	graceful := watch[backup.H()].WaitAdded(t, vip, t0, interopSkew(tc.version, backupPrio, tc.interval)+takeoverSlack+5*time.Second)
	backup.WaitState("MASTER", 5*time.Second)
	if bound := interopSkew(tc.version, backupPrio, tc.interval) + takeoverSlack; graceful > bound {
		t.Errorf("graceful takeover by %s took %v, want <= %v", backup.Name(), graceful, bound)
	}
	graceful2 := secondTakeover(t, tc, watch[backup.H()], t0)

	// The original MASTER returns, as keepalived would do it.
	t0 = time.Now()
	master.Restart()
	var ret string
	switch {
	case tc.noPreempt:
		// It must stay BACKUP: hold again with the roles kept.
		master.WaitState("BACKUP", elect)
		r := checkSingleHolder(t, vips, hold, backup.H(), master.H(), watch)
		ret = "stays BACKUP (nopreempt): " + r
		master, backup = backup, master
		backupPrio = masterPrio
	default:
		master.WaitState("MASTER", elect+tc.preemptDelay)
		took := watch[master.H()].WaitAdded(t, vip, t0, 5*time.Second)
		ret = fmt.Sprintf("preempts after %v", took.Round(time.Millisecond))
		if tc.preemptDelay > 0 {
			ret += fmt.Sprintf(" (preempt_delay %v)", tc.preemptDelay)
			if took < tc.preemptDelay {
				t.Errorf("%s preempted after %v, before its preempt_delay %v", master.Name(), took, tc.preemptDelay)
			}
		}
		backup.WaitState("BACKUP", 5*time.Second)
	}
	checkVIPOn(t, vipText, master.H(), backup.H())

	// Crash failover of whoever is MASTER now.
	t0 = time.Now()
	master.Crash()
	n.SetLink(master.H(), false)
	crashBound := interopMasterDown(tc.version, backupPrio, tc.interval) + takeoverSlack
	crash := watch[backup.H()].WaitAdded(t, vip, t0, crashBound+5*time.Second)
	crash2 := secondTakeover(t, tc, watch[backup.H()], t0)
	backup.WaitState("MASTER", 5*time.Second)
	if crash > crashBound {
		t.Errorf("crash takeover by %s took %v, want <= %v", backup.Name(), crash, crashBound)
	}
	return fmt.Sprintf("hold: %s | graceful: %s takes over in %v%s | return: %s | crash of %s: %s in %v%s (bound %v)",
		holdResult, gracefulBy, graceful.Round(time.Millisecond), graceful2, ret, master.Name(), backup.Name(),
		crash.Round(time.Millisecond), crash2, crashBound)
}

// secondTakeover waits for VI_2's VIP on the new MASTER too (the same
// daemon stopped or crashed) and says when it came.
func secondTakeover(t *testing.T, tc matrixCase, w *AddrWatch, t0 time.Time) string {
	if !tc.second {
		return ""
	}
	took := w.WaitAdded(t, netip.MustParseAddr(matrixVIP2), t0, 10*time.Second)
	return fmt.Sprintf(" (VI_2 in %v)", took.Round(time.Millisecond))
}

// holdsAddr reports whether addr is on any interface of h (with use_vmac
// the VIP is on the VMAC, not on eth0).
func holdsAddr(t testing.TB, h *testnet.Host, addr string) bool {
	t.Helper()
	out, err := h.Exec(context.Background(), "ip", "-o", "addr", "show")
	if err != nil {
		t.Fatalf("%s: ip addr: %v", h.Name(), err)
	}
	return strings.Contains(string(out), " "+addr+"/")
}

// checkSingleHolder checks, from the netlink address events of both
// hosts, that for d from now every VIP is on holder and never on other.
func checkSingleHolder(t *testing.T, vips []netip.Addr, d time.Duration, holder, other *testnet.Host, watch map[*testnet.Host]*AddrWatch) string {
	t.Helper()
	t0 := time.Now()
	for _, vip := range vips {
		if !holdsAddr(t, holder, vip.String()) || holdsAddr(t, other, vip.String()) {
			t.Errorf("at the start of the hold %s is not on %s alone", vip, holder.Name())
		}
	}
	time.Sleep(d)
	var bad []string
	for h, w := range watch {
		for _, vip := range vips {
			for _, e := range w.eventsSince(vip, t0) {
				if h == holder && !e.up || h == other && e.up {
					bad = append(bad, fmt.Sprintf("%s %s %s at +%v", h.Name(), map[bool]string{true: "added", false: "removed"}[e.up], vip, e.at.Sub(t0).Round(time.Millisecond)))
				}
			}
		}
	}
	slices.Sort(bad)
	if len(bad) > 0 {
		t.Errorf("hold of %v broken: %s", d, strings.Join(bad, "; "))
		return "BROKEN (" + strings.Join(bad, "; ") + ")"
	}
	return fmt.Sprintf("single MASTER (%s) for %v, %d VIP(s)", holder.Name(), d, len(vips))
}

// eventsSince returns the events for addr at or after t0.
func (w *AddrWatch) eventsSince(addr netip.Addr, t0 time.Time) []addrEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []addrEvent
	for _, e := range w.events {
		if e.addr == addr && !e.at.Before(t0) {
			out = append(out, e)
		}
	}
	return out
}
