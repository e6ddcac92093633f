package tests

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
	"github.com/xdpvip/xdpvip/pkg/vrrpnet"
)

// TestVRRPLowerPriorityAdvert: a MASTER hears one lower priority advert
// (forged by a host that runs no VRRP, from its own address, half way
// between two of the MASTER's adverts). keepalived 2.2.7 and xdpvip run
// the same keepalived.conf side by side, each on its own segment with its
// own forger, and the test counts what each MASTER puts on the wire
// (AF_PACKET on the forger): the answer advert (or none, with
// lower_prio_no_advert), where its next regular advert falls (the
// Adver_Timer restarts after an answer, keeps its schedule without), the
// gratuitous ARPs sent at once (garp_lower_prio_repeat) and
// garp_lower_prio_delay later, and the notify_master_rx_lower_pri runs;
// and, hearing a better advert instead, the advert higher_prio_send_advert
// sends before it yields; and the GARPs of another vrrp_sync_group member.
// xdpvip must send the same kinds and counts as keepalived, at the same
// times within lowPrioSlack; keepalived's are checked against the
// expectation too, so the comparison cannot pass with both silent.
const (
	lowPrioVRID  = 61
	lowPrioVIP   = "192.0.2.100"
	lowPrioVIP2  = "192.0.2.101"
	lowPrioForge = "192.0.2.50"
	// lowPrioSlack is the timing tolerance on a loaded 2-core machine.
	lowPrioSlack = 250 * time.Millisecond
)

type lowPrioCase struct {
	name   string
	global []string // global_defs lines
	lines  []string // vrrp_instance lines besides the notify script
	// heard is the forged advert's priority; 0 means 50 (lower than the
	// MASTER's 100).
	heard uint8
	// Expected of keepalived: answered, GARPs at once, after delay and at
	// other times (a takeover's), notify_master_rx_lower_pri runs.
	answer            bool
	now, later, other int
	delay             time.Duration
	notified          int
	dataplane         string // xdpvip's --dataplane
	// sync adds VI_2 (lowPrioVIP2, garp_lower_prio_repeat 1, delay 1) in
	// a vrrp_sync_group with VI_1: its GARPs are counted as sync*.
	sync bool
}

// lowPrioResult is what one MASTER sent after the forged advert.
type lowPrioResult struct {
	answered bool
	// firstAdvert and secondAdvert are when its first two adverts after
	// the forged one went out (since the forged one).
	firstAdvert, secondAdvert time.Duration
	garpsNow, garpsLater      int
	// garpsElse are GARPs at any other time within the window.
	garpsElse int
	// syncNow and syncLater are VI_2's GARPs at once and 1 s later.
	syncNow, syncLater int
	notified           int
}

func (r lowPrioResult) String() string {
	return fmt.Sprintf("answered=%v first_advert=+%v second_advert=+%v garps_now=%d garps_after_delay=%d garps_else=%d sync_member_garps=%d+%d notify_rx_lower_pri=%d",
		r.answered, r.firstAdvert.Round(time.Millisecond), r.secondAdvert.Round(time.Millisecond), r.garpsNow, r.garpsLater, r.garpsElse,
		r.syncNow, r.syncLater, r.notified)
}

func TestVRRPLowerPriorityAdvert(t *testing.T) {
	testnet.Require(t)
	RequireKeepalived(t)
	cases := []lowPrioCase{
		{name: "answer/garp2-delay2", lines: []string{"garp_lower_prio_repeat 2", "garp_lower_prio_delay 2"},
			answer: true, now: 2, later: 2, delay: 2 * time.Second, notified: 1, dataplane: "xdp"},
		{name: "lower_prio_no_advert/garp3", lines: []string{"lower_prio_no_advert", "garp_lower_prio_repeat 3", "garp_lower_prio_delay 0"},
			answer: false, now: 3, notified: 1, dataplane: "none"},
		// garp_lower_prio_* default to the global vrrp_garp_master_repeat
		// (5) and vrrp_garp_master_delay (5 s), not the instance's
		// garp_master_delay.
		{name: "defaults", answer: true, now: 5, later: 5, delay: 5 * time.Second, notified: 1, dataplane: "xdp"},
		// vrrp_strict: lower_prio_no_advert on, garp_lower_prio_repeat 0.
		{name: "vrrp_strict", global: []string{"vrrp_strict"}, answer: false, notified: 1, dataplane: "none"},
		// A better advert: BACKUP at once, with one advert first when
		// higher_prio_send_advert; MASTER again Master_Down_Interval
		// (3.6 s) later, with the takeover's 5 + 5 GARPs.
		{name: "higher_prio_send_advert", heard: 200, lines: []string{"higher_prio_send_advert"},
			answer: true, other: 10, dataplane: "none"},
		{name: "higher-priority", heard: 200, answer: false, other: 10, dataplane: "xdp"},
		// The other member of the sync group announces its VIP too.
		{name: "sync-group", sync: true, lines: []string{"garp_lower_prio_repeat 2", "garp_lower_prio_delay 2"},
			answer: true, now: 2, later: 2, delay: 2 * time.Second, notified: 1, dataplane: "none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runLowPrio(t, tc) })
	}
}

func runLowPrio(t *testing.T, tc lowPrioCase) {
	var (
		wg      sync.WaitGroup
		results [2]lowPrioResult
	)
	for i, impl := range []string{"keepalived", "xdpvip"} {
		n := testnet.New(t)
		m := n.AddHost("m", "192.0.2.11/24")
		f := n.AddHost("forge", lowPrioForge+"/24")
		notifyLog := filepath.Join(t.TempDir(), "rx_lower_pri.log")
		lines := append([]string{
			"garp_master_delay 1", // the takeover's second burst is over before the forged advert
			fmt.Sprintf(`notify_master_rx_lower_pri "%s"`, writeScript(t, t.TempDir(), "rx.sh", "echo rx >> "+notifyLog)),
		}, tc.lines...)
		conf := VRRPConf(impl, lowPrioVRID, 100, "1", lowPrioVIP+"/24", "    "+strings.Join(lines, "\n    "))
		if tc.sync {
			conf += fmt.Sprintf(`vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id %d
    priority 100
    advert_int 1
    garp_master_delay 1
    garp_lower_prio_repeat 1
    garp_lower_prio_delay 1
    virtual_ipaddress {
        %s/24
    }
}
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
}
`, lowPrioVRID+1, lowPrioVIP2)
		}
		for _, g := range tc.global {
			conf = strings.Replace(conf, "global_defs {\n", "global_defs {\n    "+g+"\n", 1)
		}
		if impl == "keepalived" {
			StartKeepalived(t, m, conf)
		} else {
			StartXdpvip(t, m, conf, "--dataplane", tc.dataplane)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = forgeLowerPrio(t, f, m, tc, notifyLog)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ka, x := results[0], results[1]
	t.Logf("keepalived: %v", ka)
	t.Logf("xdpvip:     %v", x)
	wantSync := 0
	if tc.sync {
		wantSync = 1
	}
	if ka.answered != tc.answer || ka.garpsNow != tc.now || ka.garpsLater != tc.later || ka.garpsElse != tc.other || ka.notified != tc.notified ||
		ka.syncNow != wantSync || ka.syncLater != wantSync {
		t.Errorf("keepalived did not do what the test expects of it (want answered=%v garps %d + %d + %d, notify %d): %v",
			tc.answer, tc.now, tc.later, tc.other, tc.notified, ka)
	}
	if x.answered != ka.answered || x.garpsNow != ka.garpsNow || x.garpsLater != ka.garpsLater || x.notified != ka.notified ||
		x.syncNow != ka.syncNow || x.syncLater != ka.syncLater || x.garpsElse != ka.garpsElse {
		t.Errorf("xdpvip differs from keepalived:\n  keepalived %v\n  xdpvip     %v", ka, x)
	}
	for _, d := range []struct {
		what   string
		ka, xv time.Duration
	}{{"first advert", ka.firstAdvert, x.firstAdvert}, {"second advert", ka.secondAdvert, x.secondAdvert}} {
		if diff := (d.ka - d.xv).Abs(); diff > lowPrioSlack {
			t.Errorf("%s after the forged advert: keepalived +%v, xdpvip +%v (more than %v apart)", d.what, d.ka, d.xv, lowPrioSlack)
		}
	}
}

// forgeLowerPrio waits for m to be MASTER and its takeover GARPs to be
// over, sends one advert (priority tc.heard) from f half way between two of m's,
// and reports what m sent in the next window.
func forgeLowerPrio(t *testing.T, f, m *testnet.Host, tc lowPrioCase, notifyLog string) lowPrioResult {
	var conn *vrrpnet.Conn
	if err := f.Do(func() (err error) { conn, err = vrrpnet.Open(vrrpnet.Config{Iface: f.Iface()}); return err }); err != nil {
		t.Errorf("%s: %v", f.Name(), err)
		return lowPrioResult{}
	}
	defer conn.Close()
	cap := startFrameCapture(t, f)
	defer cap.close()
	mSrc := netip.MustParseAddr("192.0.2.11")
	// MASTER after Master_Down_Interval (3.6 s); its takeover GARPs go
	// out at once and garp_master_delay (1 s) later.
	deadline := time.Now().Add(20 * time.Second)
	var first, last time.Time
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p, err := conn.Recv(ctx)
		cancel()
		if err != nil || p.Src != mSrc || len(p.Payload) < 2 || p.Payload[1] != lowPrioVRID {
			continue
		}
		last = p.Received // the kernel's stamp: right even when this loop runs late
		if last.IsZero() {
			last = time.Now()
		}
		if first.IsZero() {
			first = last
		}
		if last.Sub(first) > 3*time.Second {
			break
		}
	}
	if first.IsZero() {
		t.Errorf("%s: no advert from %s", f.Name(), mSrc)
		return lowPrioResult{}
	}
	// Half way between two adverts: the answer is told from the schedule.
	time.Sleep(time.Until(last.Add(500 * time.Millisecond)))
	prio := tc.heard
	if prio == 0 {
		prio = 50
	}
	adv := &vrrp.Advert{Version: 2, Type: vrrp.TypeAdvertisement, VRID: lowPrioVRID, Priority: prio,
		Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr(lowPrioVIP)}}
	payload, err := adv.Marshal(netip.MustParseAddr(lowPrioForge), vrrpnet.GroupV4)
	// Stamped before sending: the capture may read the answer before Send
	// returns.
	sent := time.Now()
	if err == nil {
		err = conn.Send(payload, vrrpnet.GroupV4)
	}
	if err != nil {
		t.Errorf("forging: %v", err)
		return lowPrioResult{}
	}
	// The window covers the delayed round and xdpvip's split-brain quiet
	// period (3 adverts), after which it would re-announce.
	window := max(tc.delay, 3*time.Second) + 2*time.Second
	time.Sleep(window)
	mac := m.MAC()
	var r lowPrioResult
	var adverts []time.Duration
	for _, fr := range cap.frames() {
		if !bytes.Equal(fr.src, mac) || fr.at.Before(sent) {
			continue
		}
		at := fr.at.Sub(sent)
		switch {
		case fr.advert && fr.vrid == lowPrioVRID:
			adverts = append(adverts, at)
		case fr.garp == lowPrioVIP2:
			switch {
			case at < 500*time.Millisecond:
				r.syncNow++
			case at > time.Second-lowPrioSlack && at < time.Second+500*time.Millisecond:
				r.syncLater++
			}
		case fr.garp == lowPrioVIP:
			switch {
			case at < 500*time.Millisecond:
				r.garpsNow++
			case tc.delay > 0 && at > tc.delay-lowPrioSlack && at < tc.delay+500*time.Millisecond:
				r.garpsLater++
			default:
				r.garpsElse++
			}
		}
	}
	if len(adverts) < 2 {
		t.Errorf("%s: %d adverts from %s after the forged one", f.Name(), len(adverts), mSrc)
		return r
	}
	r.firstAdvert, r.secondAdvert = adverts[0], adverts[1]
	r.answered = adverts[0] < 200*time.Millisecond
	if b, err := os.ReadFile(notifyLog); err == nil {
		r.notified = strings.Count(string(b), "rx\n")
	}
	return r
}

// TestVRRPUnicastTTL: unicast adverts carry unicast_ttl as their IPv4
// TTL / IPv6 hop limit, as keepalived's do; without it IPv4 ones carry
// 255 as keepalived's. Without it on IPv6 keepalived leaves the kernel's
// default hop limit, where xdpvip sends 255 (RFC 5798 §5.1.1.3; README):
// that case checks each against its own expectation. Both run the same
// config side by side; a capture on the peer reads what arrives.
func TestVRRPUnicastTTL(t *testing.T) {
	testnet.Require(t)
	RequireKeepalived(t)
	cases := []struct {
		name   string
		ipv6   bool
		ttl    string // unicast_ttl, "" for none
		wantKA int    // what keepalived sends
		wantX  int    // what xdpvip sends
	}{
		{"v4-default", false, "", 255, 255},
		{"v4-unicast_ttl-7", false, "7", 7, 7},
		{"v6-unicast_ttl-9", true, "9", 9, 9},
		{"v6-default", true, "", 64, 255},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			var got [2]int
			for i, impl := range []string{"keepalived", "xdpvip"} {
				n := testnet.New(t)
				m := n.AddHost("m", "192.0.2.11/24", testnet.WithAddr("2001:db8::11/64"))
				f := n.AddHost("peer", "192.0.2.50/24", testnet.WithAddr("2001:db8::50/64"))
				self, peer, vip, version := "192.0.2.11", "192.0.2.50", lowPrioVIP+"/24", 2
				if tc.ipv6 {
					self, peer, vip, version = "2001:db8::11", "2001:db8::50", "2001:db8::100/64", 3
				}
				body := fmt.Sprintf("    version %d\n    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }", version, self, peer)
				if tc.ttl != "" {
					body += "\n    unicast_ttl " + tc.ttl
				}
				conf := VRRPConf(impl, lowPrioVRID, 100, "1", vip, body)
				cap := startFrameCapture(t, f)
				if impl == "keepalived" {
					StartKeepalived(t, m, conf)
				} else {
					StartXdpvip(t, m, conf, "--dataplane", "none")
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer cap.close()
					got[i] = advertTTL(t, cap, m.MAC(), 15*time.Second)
				}()
			}
			wg.Wait()
			t.Logf("%s: keepalived sends TTL / hop limit %d, xdpvip %d", tc.name, got[0], got[1])
			if got[0] != tc.wantKA || got[1] != tc.wantX {
				t.Errorf("keepalived %d (want %d), xdpvip %d (want %d)", got[0], tc.wantKA, got[1], tc.wantX)
			}
		})
	}
}

// TestVRRPUnicastMinMaxTTL: a BACKUP whose unicast_peer has min_ttl /
// max_ttl hears a MASTER sending with unicast_ttl 7: inside the range it
// stays BACKUP, outside it drops the adverts (xdpvip counts them as
// "ttl") and becomes MASTER too, as keepalived does. keepalived and xdpvip
// (on the socket receive path, and on the XDP dataplane, whose program
// checks the peer's range) are the BACKUP side by side, each beside an
// xdpvip MASTER.
func TestVRRPUnicastMinMaxTTL(t *testing.T) {
	testnet.Require(t)
	RequireKeepalived(t)
	cases := []struct {
		name, opts string
		drops      bool
	}{
		{"inside min_ttl 7 max_ttl 7", "min_ttl 7 max_ttl 7", false},
		{"below min_ttl 8", "min_ttl 8", true},
		{"above max_ttl 6", "max_ttl 6", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			unicast := func(self, peer, opts string) string {
				return fmt.Sprintf("    unicast_src_ip %s\n    unicast_peer {\n        %s %s\n    }", self, peer, opts)
			}
			var ka *KA
			var x, xx *Node
			for _, impl := range []string{"keepalived", "xdpvip", "xdpvip-xdp"} {
				n := testnet.New(t)
				sh := n.AddHost("master", "192.0.2.11/24")
				bh := n.AddHost("backup", "192.0.2.12/24")
				StartXdpvip(t, sh, VRRPConf("master", lowPrioVRID, 100, "1", lowPrioVIP+"/24",
					unicast("192.0.2.11", "192.0.2.12", "")+"\n    unicast_ttl 7"), "--dataplane", "none")
				conf := VRRPConf(impl, lowPrioVRID, 90, "1", lowPrioVIP+"/24", unicast("192.0.2.12", "192.0.2.11", tc.opts))
				switch impl {
				case "keepalived":
					ka = StartKeepalived(t, bh, conf)
				case "xdpvip":
					x = StartXdpvip(t, bh, conf, "--dataplane", "none")
				default:
					xx = StartXdpvip(t, bh, conf, "--dataplane", "xdp")
				}
			}
			// Both BACKUPs decide within Master_Down_Interval (3.65 s) of
			// starting; a dropping one is MASTER by then.
			time.Sleep(masterDownInterval(90) + 3*time.Second)
			want := "BACKUP"
			if tc.drops {
				want = "MASTER"
			}
			in, inx := instanceOf(t, x), instanceOf(t, xx)
			t.Logf("%s: keepalived %s, xdpvip %s (drops %v), xdpvip on XDP %s", tc.name, ka.State("VI_1"), in.State, in.Drops, inx.State)
			if inx.State != want {
				t.Errorf("xdpvip on the XDP dataplane is %s, want %s as keepalived", inx.State, want)
			}
			if got := ka.State("VI_1"); got != want {
				t.Errorf("keepalived is %s, want %s", got, want)
			}
			if in.State != want {
				t.Errorf("xdpvip is %s, want %s as keepalived", in.State, want)
			}
			if tc.drops != (in.Drops["ttl"] > 0) {
				t.Errorf("xdpvip's ttl drops: %d, want them %v", in.Drops["ttl"], tc.drops)
			}
		})
	}
}

// advertTTL waits for two adverts from mac and returns their TTL / hop
// limit (-1 if they differ, 0 if none came).
func advertTTL(t *testing.T, cap *frameCapture, mac net.HardwareAddr, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var ttls []int
		for _, fr := range cap.frames() {
			if fr.advert && bytes.Equal(fr.src, mac) {
				ttls = append(ttls, fr.ttl)
			}
		}
		if len(ttls) >= 2 {
			if ttls[0] != ttls[1] {
				return -1
			}
			return ttls[0]
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("fewer than 2 adverts from %s in %v", mac, timeout)
	return 0
}

// capturedFrame is one frame seen by frameCapture: an advert or a
// gratuitous ARP (sender = target address, given as text), by source MAC.
type capturedFrame struct {
	at     time.Time
	src    net.HardwareAddr
	advert bool
	// ttl and vrid are an advert's IPv4 TTL / IPv6 hop limit and VRID.
	ttl, vrid int
	garp      string
}

// frameCapture records VRRP adverts and gratuitous ARPs seen on a host's
// interface through an AF_PACKET socket.
type frameCapture struct {
	fd   int
	mu   sync.Mutex
	got  []capturedFrame
	done chan struct{}
}

func startFrameCapture(t *testing.T, h *testnet.Host) *frameCapture {
	c := &frameCapture{done: make(chan struct{})}
	mustInNS(t, h, func() error {
		ifi, err := net.InterfaceByName(h.Iface())
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		// A read timeout lets the reader see close; the kernel's receive
		// stamps keep the times right when the reader runs late.
		tv := unix.Timeval{Usec: 200000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			unix.Close(fd)
			return err
		}
		c.fd = fd
		return nil
	})
	go c.read()
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *frameCapture) read() {
	buf, oob := make([]byte, 2048), make([]byte, 128)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err != nil || n < 14 {
			continue
		}
		fr, ok := classifyFrame(buf[:n])
		if !ok {
			continue
		}
		fr.at = kernelStamp(oob[:oobn])
		c.mu.Lock()
		c.got = append(c.got, fr)
		c.mu.Unlock()
	}
}

// kernelStamp is the SO_TIMESTAMPNS receive time in oob, else now.
func kernelStamp(oob []byte) time.Time {
	msgs, _ := unix.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
			return time.Unix(int64(binary.NativeEndian.Uint64(m.Data[0:8])), int64(binary.NativeEndian.Uint64(m.Data[8:16])))
		}
	}
	return time.Now()
}

// classifyFrame tells a VRRP advert (IPv4 or IPv6 without extension
// headers) or a gratuitous ARP (request or reply with sender address =
// target address) from other frames.
func classifyFrame(b []byte) (capturedFrame, bool) {
	fr := capturedFrame{src: append(net.HardwareAddr(nil), b[6:12]...)}
	switch binary.BigEndian.Uint16(b[12:14]) {
	case unix.ETH_P_IP:
		if ihl := int(b[14]&0x0f) * 4; len(b) >= 14+ihl+2 && b[14+9] == vrrpnet.Protocol {
			fr.advert, fr.ttl, fr.vrid = true, int(b[14+8]), int(b[14+ihl+1])
			return fr, true
		}
	case unix.ETH_P_IPV6:
		if len(b) >= 14+40+2 && b[14+6] == vrrpnet.Protocol {
			fr.advert, fr.ttl, fr.vrid = true, int(b[14+7]), int(b[14+40+1])
			return fr, true
		}
	case unix.ETH_P_ARP:
		// ARP for IPv4 over Ethernet: sender IP at 14+14, target IP at 14+24.
		if len(b) >= 14+28 && bytes.Equal(b[14+14:14+18], b[14+24:14+28]) {
			fr.garp = netip.AddrFrom4([4]byte(b[14+14 : 14+18])).String()
			return fr, true
		}
	}
	return fr, false
}

func (c *frameCapture) frames() []capturedFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]capturedFrame(nil), c.got...)
}

func (c *frameCapture) close() {
	close(c.done)
	time.Sleep(250 * time.Millisecond) // the reader's timeout
	unix.Close(c.fd)
}
