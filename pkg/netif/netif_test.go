package netif

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"github.com/xdpvip/xdpvip/internal/testnet"
	"golang.org/x/sys/unix"
)

func vipsIn(t *testing.T, h *testnet.Host) *VIPs {
	t.Helper()
	nh, err := h.Handle()
	if err != nil {
		t.Fatal(err)
	}
	return NewVIPs(nh)
}

func ipAddr(t *testing.T, h *testnet.Host, dev string) string {
	t.Helper()
	return string(h.MustExec("ip", "addr", "show", "dev", dev))
}

func TestVIPAddRemove(t *testing.T) {
	n := testnet.New(t)
	h := n.AddHost("lvs1", "192.0.2.11/24", testnet.WithAddr("2001:db8::11/64"))
	m := vipsIn(t, h)

	tests := []struct {
		vip  VIP
		show string // how `ip addr` shows it
	}{
		{VIP{Prefix: netip.MustParsePrefix("192.0.2.50/32"), Dev: "eth0"}, "inet 192.0.2.50/32 scope global eth0"},
		{VIP{Prefix: netip.MustParsePrefix("192.0.2.51/24"), Dev: "eth0", Label: "eth0:vip",
			Broadcast: netip.MustParseAddr("192.0.2.255")}, "inet 192.0.2.51/24 brd 192.0.2.255 scope global secondary eth0:vip"},
		{VIP{Prefix: netip.MustParsePrefix("198.51.100.9/32"), Dev: "eth0", Scope: unix.RT_SCOPE_LINK}, "inet 198.51.100.9/32 scope link eth0"},
		{VIP{Prefix: netip.MustParsePrefix("2001:db8::50/128"), Dev: "eth0"}, "inet6 2001:db8::50/128 scope global nodad"},
	}
	for _, tc := range tests {
		t.Run(tc.vip.String(), func(t *testing.T) {
			existed, err := m.Add(tc.vip)
			if err != nil || existed {
				t.Fatalf("Add = %v, %v; want false, nil", existed, err)
			}
			if out := ipAddr(t, h, "eth0"); !strings.Contains(out, tc.show) {
				t.Errorf("ip addr lacks %q:\n%s", tc.show, out)
			}
			if existed, err := m.Add(tc.vip); err != nil || !existed {
				t.Errorf("second Add = %v, %v; want true, nil", existed, err)
			}
			if ok, err := m.Present(tc.vip); err != nil || !ok {
				t.Errorf("Present = %v, %v", ok, err)
			}
			removed, err := m.Remove(tc.vip)
			if err != nil || !removed {
				t.Fatalf("Remove = %v, %v; want true, nil", removed, err)
			}
			if out := ipAddr(t, h, "eth0"); strings.Contains(out, tc.vip.Prefix.Addr().String()+"/") {
				t.Errorf("address still there after Remove:\n%s", out)
			}
			if removed, err := m.Remove(tc.vip); err != nil || removed {
				t.Errorf("second Remove = %v, %v; want false, nil", removed, err)
			}
		})
	}

	// An address configured by somebody else is reported and never removed.
	own := VIP{Prefix: netip.MustParsePrefix("192.0.2.11/24"), Dev: "eth0"}
	if existed, err := m.Add(own); err != nil || !existed {
		t.Fatalf("Add(pre-existing) = %v, %v; want true, nil", existed, err)
	}
	if removed, err := m.Remove(own); err != nil || removed {
		t.Errorf("Remove(pre-existing) = %v, %v; want false, nil", removed, err)
	}
	if err := m.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if out := ipAddr(t, h, "eth0"); !strings.Contains(out, "192.0.2.11/24") {
		t.Errorf("pre-existing address removed:\n%s", out)
	}

	// RemoveAll takes away what we added, and an address deleted behind our
	// back is not an error.
	a := VIP{Prefix: netip.MustParsePrefix("192.0.2.60/32"), Dev: "eth0"}
	b := VIP{Prefix: netip.MustParsePrefix("192.0.2.61/32"), Dev: "eth0"}
	for _, v := range []VIP{a, b} {
		if _, err := m.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	h.MustExec("ip", "addr", "del", "192.0.2.61/32", "dev", "eth0")
	if err := m.RemoveAll(); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	// Nothing is owned any more: adding and removing again works from scratch.
	if existed, err := m.Add(a); err != nil || existed {
		t.Errorf("Add after RemoveAll: existed %v err %v", existed, err)
	}
	if removed, err := m.Remove(a); err != nil || !removed {
		t.Errorf("Remove after RemoveAll+Add: removed %v err %v", removed, err)
	}
	if out := ipAddr(t, h, "eth0"); strings.Contains(out, "192.0.2.60") {
		t.Errorf("RemoveAll left 192.0.2.60:\n%s", out)
	}
}

// TestDeprecatedVIPIsNotASource: an IPv6 VIP added with preferred
// lifetime 0 (keepalived's default for a /128) is deprecated, so the
// kernel never picks it as the source towards the VIP's subnet (health
// checks, a TUN tunnel's outer header), where a preferred one may be.
func TestDeprecatedVIPIsNotASource(t *testing.T) {
	n := testnet.New(t)
	h := n.AddHost("lvs1", "192.0.2.11/24", testnet.WithAddr("2001:db8::11/64"))
	m := vipsIn(t, h)
	src := func() string {
		out := string(h.MustExec("ip", "-6", "route", "get", "2001:db8::99"))
		f := strings.Fields(out)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "src" {
				return f[i+1]
			}
		}
		t.Fatalf("no src in %q", out)
		return ""
	}
	plain := VIP{Prefix: netip.MustParsePrefix("2001:db8::50/128"), Dev: "eth0"}
	if _, err := m.Add(plain); err != nil {
		t.Fatal(err)
	}
	t.Logf("source towards the subnet with a preferred /128 VIP: %s", src())
	if _, err := m.Remove(plain); err != nil {
		t.Fatal(err)
	}
	dep := VIP{Prefix: netip.MustParsePrefix("2001:db8::51/128"), Dev: "eth0", Lifetime: true, PreferredLft: 0}
	if _, err := m.Add(dep); err != nil {
		t.Fatal(err)
	}
	if out := ipAddr(t, h, "eth0"); !strings.Contains(out, "inet6 2001:db8::51/128 scope global nodad deprecated") {
		t.Errorf("ip addr does not show the VIP deprecated:\n%s", out)
	}
	if got := src(); got != "2001:db8::11" {
		t.Errorf("source towards the subnet with a deprecated VIP: %s, want the host's own 2001:db8::11", got)
	}
	if existed, err := m.Add(dep); err != nil || !existed {
		t.Errorf("second Add = %v, %v; want true, nil", existed, err)
	}
}

func TestVIPInvalid(t *testing.T) {
	m := NewVIPs(nil)
	tests := []struct {
		name string
		vip  VIP
	}{
		{"no prefix", VIP{Dev: "eth0"}},
		{"no dev", VIP{Prefix: netip.MustParsePrefix("192.0.2.1/32")}},
		{"mapped", VIP{Prefix: netip.MustParsePrefix("::ffff:192.0.2.1/128"), Dev: "eth0"}},
		{"v6 label", VIP{Prefix: netip.MustParsePrefix("2001:db8::1/128"), Dev: "eth0", Label: "eth0:x"}},
		{"label not starting with dev", VIP{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Dev: "eth0", Label: "vip"}},
		{"label too long", VIP{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Dev: "eth0", Label: "eth0:0123456789ab"}},
		{"v6 brd", VIP{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Dev: "eth0", Broadcast: netip.MustParseAddr("2001:db8::ff")}},
		{"scope", VIP{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Dev: "eth0", Scope: 300}},
	}
	for _, tc := range tests {
		if _, err := m.Add(tc.vip); !errors.Is(err, ErrBadVIP) {
			t.Errorf("%s: Add error = %v, want ErrBadVIP", tc.name, err)
		}
	}
}

func TestVIPNoSuchInterface(t *testing.T) {
	n := testnet.New(t)
	h := n.AddHost("a", "192.0.2.1/24")
	m := vipsIn(t, h)
	_, err := m.Add(VIP{Prefix: netip.MustParsePrefix("192.0.2.50/32"), Dev: "nosuch0"})
	if !errors.Is(err, ErrNoLink) {
		t.Errorf("Add on missing interface = %v, want ErrNoLink", err)
	}
}

// openAnnouncer opens an Announcer inside h's namespace.
func openAnnouncer(t *testing.T, h *testnet.Host, cfg AnnouncerConfig) *Announcer {
	t.Helper()
	var a *Announcer
	h.MustDo(func() (err error) {
		a, err = OpenAnnouncer(cfg)
		return err
	})
	t.Cleanup(func() { a.Close() })
	return a
}

// ping sends one echo from h to addr and fails the test if it gets no answer.
func ping(t *testing.T, h *testnet.Host, addr netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := h.Exec(ctx, "ping", "-c1", "-W2", addr.String()); err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", addr, h.Name(), err, out)
	}
}

// neighIs waits until client's neighbour entry for addr holds mac, calling
// announce before each look (the kernel ignores an ARP update within
// locktime, 1s, of the previous one, so one GARP may not be enough).
func neighIs(t *testing.T, client *testnet.Host, addr netip.Addr, mac net.HardwareAddr, announce func() error) {
	t.Helper()
	testnet.Eventually(t, 10*time.Second, func() error {
		if err := announce(); err != nil {
			return err
		}
		nb, err := client.Neigh(addr)
		if err != nil {
			return err
		}
		if !bytes.Equal(nb.MAC, mac) {
			return fmt.Errorf("client's entry is %v, want %s", nb, mac)
		}
		return nil
	})
}

// The seed's check: after a takeover, the client's `arp -n` entry for the
// VIP shows the new MASTER's MAC.
func TestAnnounceMovesClientNeighbour(t *testing.T) {
	tests := []struct {
		name string
		vip  netip.Prefix
		form ARPForm
		mac  net.HardwareAddr // announced MAC; nil = interface MAC
	}{
		{"GARP request", netip.MustParsePrefix("192.0.2.50/32"), ARPRequest, nil},
		{"GARP reply", netip.MustParsePrefix("192.0.2.50/32"), ARPReply, nil},
		{"GARP both", netip.MustParsePrefix("192.0.2.50/32"), ARPBoth, nil},
		{"GARP with VMAC", netip.MustParsePrefix("192.0.2.50/32"), ARPRequest, VMACAddr(51, false)},
		{"unsolicited NA", netip.MustParsePrefix("2001:db8::50/128"), ARPRequest, nil},
		{"unsolicited NA with VMAC", netip.MustParsePrefix("2001:db8::50/128"), ARPRequest, VMACAddr(51, true)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := testnet.New(t)
			lvs1 := n.AddHost("lvs1", "192.0.2.11/24", testnet.WithAddr("2001:db8::11/64"), testnet.WithMAC("02:00:00:00:00:11"))
			lvs2 := n.AddHost("lvs2", "192.0.2.12/24", testnet.WithAddr("2001:db8::12/64"), testnet.WithMAC("02:00:00:00:00:12"))
			client := n.AddHost("client", "192.0.2.100/24", testnet.WithAddr("2001:db8::100/64"))
			vip := tc.vip.Addr()

			// lvs1 holds the VIP; the client learns lvs1's MAC.
			v1 := VIP{Prefix: tc.vip, Dev: "eth0"}
			if _, err := vipsIn(t, lvs1).Add(v1); err != nil {
				t.Fatal(err)
			}
			ping(t, client, vip)
			if nb, err := client.Neigh(vip); err != nil || !bytes.Equal(nb.MAC, lvs1.MAC()) {
				t.Fatalf("before takeover: client's entry %v, %v; want %s", nb, err, lvs1.MAC())
			}

			// lvs2 takes over and announces.
			if _, err := vipsIn(t, lvs1).Remove(v1); err != nil {
				t.Fatal(err)
			}
			lvs1.MustExec("ip", "addr", "del", tc.vip.String(), "dev", "eth0") // new manager does not own it
			if _, err := vipsIn(t, lvs2).Add(VIP{Prefix: tc.vip, Dev: "eth0"}); err != nil {
				t.Fatal(err)
			}
			ann := openAnnouncer(t, lvs2, AnnouncerConfig{Iface: "eth0", MAC: tc.mac, ARP: tc.form})
			want := tc.mac
			if want == nil {
				want = lvs2.MAC()
			}
			if !bytes.Equal(ann.MAC(), want) {
				t.Errorf("MAC() = %s, want %s", ann.MAC(), want)
			}
			neighIs(t, client, vip, want, func() error { return ann.Announce(vip) })
			if tc.mac == nil {
				ping(t, client, vip) // and the VIP answers from its new home
			}
		})
	}
}

func TestGARPFrameLayout(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	vip := netip.MustParseAddr("192.0.2.50")
	for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		b, err := garpFrame(op, mac, vip)
		if err != nil {
			t.Fatal(err)
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Destination, ethernet.Broadcast) || !bytes.Equal(f.Source, mac) || f.EtherType != ethernet.EtherTypeARP {
			t.Errorf("%v: ethernet header %s -> %s type %v", op, f.Source, f.Destination, f.EtherType)
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			t.Fatal(err)
		}
		if p.Operation != op || p.SenderIP != vip || p.TargetIP != vip ||
			!bytes.Equal(p.SenderHardwareAddr, mac) || !bytes.Equal(p.TargetHardwareAddr, ethernet.Broadcast) {
			t.Errorf("%v: ARP packet %+v", op, p)
		}
	}
	if _, err := garpFrame(arp.OperationRequest, mac, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Errorf("garpFrame accepted an IPv6 address")
	}
}

func TestNAMessage(t *testing.T) {
	mac := VMACAddr(7, true)
	vip := netip.MustParseAddr("2001:db8::50")
	b, err := ndp.MarshalMessage(naMessage(mac, vip))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok || !na.Override || na.Solicited || na.Router || na.TargetAddress != vip || len(na.Options) != 1 {
		t.Fatalf("parsed %#v", m)
	}
	lla, ok := na.Options[0].(*ndp.LinkLayerAddress)
	if !ok || lla.Direction != ndp.Target || !bytes.Equal(lla.Addr, mac) {
		t.Errorf("option %#v", na.Options[0])
	}
}

func TestVMAC(t *testing.T) {
	n := testnet.New(t)
	lvs := n.AddHost("lvs1", "192.0.2.11/24")
	client := n.AddHost("client", "192.0.2.100/24")
	var m *VMACs
	var nh *netlink.Handle
	lvs.MustDo(func() error { m = NewVMACs(nil); return nil })
	nh, err := lvs.Handle()
	if err != nil {
		t.Fatal(err)
	}
	m.h = nh // the sysctls are written inside Do below; netlink via the handle

	tests := []struct {
		cfg      VMACConfig
		wantName string
		wantMAC  string
		wantMode netlink.MacvlanMode
	}{
		{VMACConfig{Parent: "eth0", VRID: 51}, "vrrp.51", "00:00:5e:00:01:33", netlink.MACVLAN_MODE_PRIVATE},
		{VMACConfig{Parent: "eth0", VRID: 52, IPv6: true, Bridge: true}, "vrrp.52", "00:00:5e:00:02:34", netlink.MACVLAN_MODE_BRIDGE},
		{VMACConfig{Parent: "eth0", VRID: 1, Name: "vmac-one"}, "vmac-one", "00:00:5e:00:01:01", netlink.MACVLAN_MODE_PRIVATE},
	}
	for _, tc := range tests {
		var link netlink.Link
		var created bool
		lvs.MustDo(func() (err error) { link, created, err = m.Create(tc.cfg); return err })
		if !created || link.Attrs().Name != tc.wantName {
			t.Fatalf("Create(%+v) = %s, %v", tc.cfg, link.Attrs().Name, created)
		}
		got, err := nh.LinkByName(tc.wantName)
		if err != nil {
			t.Fatal(err)
		}
		mv, ok := got.(*netlink.Macvlan)
		if !ok {
			t.Fatalf("%s is a %s, want macvlan", tc.wantName, got.Type())
		}
		if mv.HardwareAddr.String() != tc.wantMAC || mv.Mode != tc.wantMode || mv.Flags&net.FlagUp == 0 {
			t.Errorf("%s: MAC %s mode %v flags %v; want %s mode %v up", tc.wantName, mv.HardwareAddr, mv.Mode, mv.Flags, tc.wantMAC, tc.wantMode)
		}
		out := lvs.MustExec("cat", "/proc/sys/net/ipv4/conf/"+tc.wantName+"/arp_ignore")
		if strings.TrimSpace(string(out)) != "1" {
			t.Errorf("%s arp_ignore = %q, want 1", tc.wantName, out)
		}
		// A second Create reuses it.
		lvs.MustDo(func() (err error) { _, created, err = m.Create(tc.cfg); return err })
		if created {
			t.Errorf("second Create of %s created it again", tc.wantName)
		}
	}

	// The parent no longer answers ARP for its VMACs' addresses.
	parentConf := func() string {
		return strings.Join(strings.Fields(string(lvs.MustExec("sysctl", "-n",
			"net.ipv4.conf.eth0.arp_ignore", "net.ipv4.conf.eth0.arp_filter", "net.ipv4.conf.eth0.arp_announce"))), " ")
	}
	if got := parentConf(); got != "1 1 2" {
		t.Errorf("eth0 arp_ignore/arp_filter/arp_announce = %s with VMACs, want 1 1 2", got)
	}

	// The VIP on the VMAC answers the client from the virtual MAC.
	vip := netip.MustParseAddr("192.0.2.50")
	if _, err := NewVIPs(nh).Add(VIP{Prefix: netip.PrefixFrom(vip, 32), Dev: "vrrp.51"}); err != nil {
		t.Fatal(err)
	}
	ann := openAnnouncer(t, lvs, AnnouncerConfig{Iface: "vrrp.51"})
	if ann.MAC().String() != "00:00:5e:00:01:33" {
		t.Errorf("announcer on the VMAC uses %s", ann.MAC())
	}
	ping(t, client, vip)
	neighIs(t, client, vip, VMACAddr(51, false), func() error { return ann.Announce(vip) })

	// A same-named interface that is not our macvlan is a conflict.
	lvs.MustExec("ip", "link", "add", "vrrp.9", "type", "veth", "peer", "name", "x9")
	err = lvs.Do(func() error { _, _, err := m.Create(VMACConfig{Parent: "eth0", VRID: 9}); return err })
	if !errors.Is(err, ErrVMACConflict) {
		t.Errorf("Create over a veth = %v, want ErrVMACConflict", err)
	}
	// Delete restores the parent's sysctls, which must happen inside its
	// namespace.
	del := func(name string) (deleted bool, err error) {
		derr := lvs.Do(func() error { deleted, err = m.Delete(name); return nil })
		if derr != nil {
			t.Fatal(derr)
		}
		return deleted, err
	}
	if deleted, err := del("vrrp.9"); err != nil || deleted {
		t.Errorf("Delete(not ours) = %v, %v; want false, nil", deleted, err)
	}

	for _, tc := range tests {
		if deleted, err := del(tc.wantName); err != nil || !deleted {
			t.Errorf("Delete(%s) = %v, %v", tc.wantName, deleted, err)
		}
		if _, err := nh.LinkByName(tc.wantName); err == nil {
			t.Errorf("%s still exists after Delete", tc.wantName)
		}
	}
	if deleted, err := del("vrrp.51"); err != nil || deleted {
		t.Errorf("second Delete = %v, %v; want false, nil", deleted, err)
	}
	if got := parentConf(); got != "0 0 0" {
		t.Errorf("eth0 arp_ignore/arp_filter/arp_announce = %s after the last VMAC went, want 0 0 0 back", got)
	}
}

func TestWatchLinks(t *testing.T) {
	n := testnet.New(t)
	h := n.AddHost("lvs1", "192.0.2.11/24")
	h.MustExec("ip", "link", "add", "other0", "type", "veth", "peer", "name", "other1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events <-chan LinkEvent
	h.MustDo(func() (err error) {
		events, err = WatchLinks(ctx, "eth0")
		return err
	})
	next := func(want bool, why string) {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("%s: channel closed", why)
			}
			if ev.Name != "eth0" || ev.Up != want {
				t.Fatalf("%s: event %+v, want eth0 up=%v", why, ev, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event", why)
		}
	}
	next(true, "initial state")
	h.MustExec("ip", "link", "set", "other0", "up") // not watched: no event
	n.SetLink(h, false)
	next(false, "cable cut")
	n.SetLink(h, true)
	next(true, "cable back")
	h.MustExec("ip", "link", "set", "eth0", "down")
	next(false, "admin down")
	h.MustExec("ip", "link", "set", "eth0", "up")
	next(true, "admin up")

	cancel()
	testnet.Eventually(t, 5*time.Second, func() error {
		select {
		case _, ok := <-events:
			if !ok {
				return nil
			}
		default:
		}
		return errors.New("channel not closed after cancel")
	})
}
