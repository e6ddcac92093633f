package dataplane

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// The fast path's two shortcuts: vip_filter (frames to an address without
// a service leave after one array lookup) and SVC_F_ACTIVE (the role is
// read from the service entry, mirrored from vip_state).

func drFrames() (v4, v6 []byte) {
	c4 := netip.MustParseAddrPort("198.51.100.7:40000")
	c6 := netip.MustParseAddrPort("[2001:db8:1::7]:40000")
	return packet.TCPFrame(lbMAC, clientMAC, c4, netip.AddrPortFrom(svcVIP4, 80), packet.SYN, nil),
		packet.TCPFrame(lbMAC, clientMAC, c6, netip.AddrPortFrom(svcVIP6, 443), packet.SYN, nil)
}

func applyDR46(t *testing.T, d *Dataplane) {
	t.Helper()
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1)), tcpService(svcVIP6, 443, dest(rs6, 443, 1))}); err != nil {
		t.Fatal(err)
	}
}

func wantVerdict(t *testing.T, d *Dataplane, name string, frame []byte, want uint32) {
	t.Helper()
	if got, _ := run(t, d, frame); got != want {
		t.Errorf("%s: verdict %s, want %s", name, verdictNames[got], verdictNames[want])
	}
}

// TestVIPFilterIsWhatTheProgramReads: Go's bit for an address is the one
// the program tests, and a clear bit sends the VIP's frames to the kernel.
func TestVIPFilterIsWhatTheProgramReads(t *testing.T) {
	d := newTestDataplane(t, DefaultTableSize, testResolver())
	applyDR46(t, d)
	for _, v := range []netip.Addr{svcVIP4, svcVIP6} {
		if err := d.SetVIPActive(v, true); err != nil {
			t.Fatal(err)
		}
	}
	f4, f6 := drFrames()
	wantVerdict(t, d, "IPv4, filter from Apply", f4, xdpTX)
	wantVerdict(t, d, "IPv6, filter from Apply", f6, xdpTX)

	if vipFilterBit(svcVIP4) == vipFilterBit(svcVIP6) {
		t.Fatalf("test addresses share filter bit %d", vipFilterBit(svcVIP4))
	}
	only4 := vipBitmap([]netip.Addr{svcVIP4})
	if err := d.objs.VipFilter.Put(uint32(0), &only4); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, d, "IPv4, its bit alone", f4, xdpTX)
	wantVerdict(t, d, "IPv6, bit clear", f6, xdpPass)

	var none xdpvipVipBitmap
	if err := d.objs.VipFilter.Put(uint32(0), &none); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, d, "IPv4, bit clear", f4, xdpPass)

	// The next Apply rewrites the filter from the services.
	applyDR46(t, d)
	wantVerdict(t, d, "IPv6 after Apply", f6, xdpTX)
}

func TestVIPFilterBitSpreads(t *testing.T) {
	seen := map[uint32]bool{}
	for i := range 256 {
		seen[vipFilterBit(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))] = true
	}
	// 256 addresses of one /24 into 4096 bits: a multiplicative hash puts
	// consecutive addresses apart.
	if len(seen) < 250 {
		t.Errorf("256 consecutive addresses use %d filter bits", len(seen))
	}
}

// TestActiveFlagFollowsVIPState: SetVIPActive before or after Apply,
// true or false, is what the program forwards by.
func TestActiveFlagFollowsVIPState(t *testing.T) {
	d := newTestDataplane(t, DefaultTableSize, testResolver())
	f4, f6 := drFrames()
	if err := d.SetVIPActive(svcVIP4, true); err != nil { // before its service exists
		t.Fatal(err)
	}
	applyDR46(t, d)
	wantVerdict(t, d, "IPv4 active before Apply", f4, xdpTX)
	wantVerdict(t, d, "IPv6 never active", f6, xdpPass)
	if err := d.SetVIPActive(svcVIP6, true); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, d, "IPv6 activated", f6, xdpTX)
	if err := d.SetVIPActive(svcVIP4, false); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, d, "IPv4 deactivated", f4, xdpPass)
	wantVerdict(t, d, "IPv6 still active", f6, xdpTX)
	if active, err := d.VIPActive(svcVIP4); err != nil || active {
		t.Errorf("VIPActive(%v) = %v, %v after deactivation", svcVIP4, active, err)
	}
	applyDR46(t, d) // a reload keeps the roles
	wantVerdict(t, d, "IPv4 after reload", f4, xdpPass)
	wantVerdict(t, d, "IPv6 after reload", f6, xdpTX)
}

// TestPinnedServicesGetTheActiveFlag: services pinned without
// SVC_F_ACTIVE (by a daemon before it) take it from vip_state on load.
func TestPinnedServicesGetTheActiveFlag(t *testing.T) {
	requireBPF(t)
	pins := filepath.Join(testBPFDir(t), "fake0")
	if err := os.MkdirAll(pins, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := load(loadOptions{pinDir: pins, tableSize: DefaultTableSize, ifindex: lbIfindex, ifname: "fake0", mac: lbMAC})
	if err != nil {
		t.Fatal(err)
	}
	d.lvs.resolve = testResolver()
	applyDR46(t, d)
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		t.Fatal(err)
	}
	k := svcKey(svcIdent{proto: lvs.ProtoTCP, addr: svcVIP4, port: 80})
	old := d.lvs.services[svcIdent{proto: lvs.ProtoTCP, addr: svcVIP4, port: 80}].value
	old.Flags &^= svcActive
	if err := d.objs.Services.Put(&k, &old); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d2, err := load(loadOptions{pinDir: pins, tableSize: DefaultTableSize, ifindex: lbIfindex, ifname: "fake0", mac: lbMAC})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	var v xdpvipSvcValue
	if err := d2.objs.Services.Lookup(&k, &v); err != nil || v.Flags&svcActive == 0 {
		t.Errorf("pinned service after load: %+v, %v; want SVC_F_ACTIVE", v, err)
	}
	f4, _ := drFrames()
	wantVerdict(t, d2, "pinned active VIP", f4, xdpTX)
}

// TestFlowHitChecksTheServiceByID: a flow's entry names its service by id;
// once the service is gone and its id reused by another, the old flow's
// frames are not forwarded to the new service's real servers.
func TestFlowHitChecksTheServiceByID(t *testing.T) {
	d := newTestDataplane(t, DefaultTableSize, testResolver())
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1))}); err != nil {
		t.Fatal(err)
	}
	old := packet.TCPFrame(lbMAC, clientMAC, netip.MustParseAddrPort("198.51.100.7:40000"), netip.AddrPortFrom(svcVIP4, 80), packet.SYN, nil)
	wantVerdict(t, d, "the flow's first packet", old, xdpTX)
	wantVerdict(t, d, "a flow hit", old, xdpTX)
	oldEntry := d.lvs.services[svcIdent{proto: lvs.ProtoTCP, addr: svcVIP4, port: 80}]
	id, rid := oldEntry.id, oldEntry.reals[netip.AddrPortFrom(rs1, 80)]

	// The worst case: the new service reuses the service id and the real
	// id too, so only the key tells the old flow from the new service's.
	d.lvs.nextReal = rid
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 81, dest(rs1, 80, 1))}); err != nil {
		t.Fatal(err)
	}
	e := d.lvs.services[svcIdent{proto: lvs.ProtoTCP, addr: svcVIP4, port: 81}]
	if e.id != id || e.reals[netip.AddrPortFrom(rs1, 80)] != rid {
		t.Fatalf("the new service got ids %d/%v, not the freed %d/%d: the test needs them reused", e.id, e.reals, id, rid)
	}
	var slot xdpvipSvcSlot
	if err := d.objs.ServicesById.Lookup(id, &slot); err != nil || slot.Value != e.value || slot.Key != svcKey(svcIdent{proto: lvs.ProtoTCP, addr: svcVIP4, port: 81}) {
		t.Errorf("services_by_id[%d] = %+v, %v; want the new service's key and value", id, slot, err)
	}
	wantVerdict(t, d, "the old flow after its service went", old, xdpPass)
}

// TestAdvertTimeIsTheMonotonicClock: the coarse clock the program stamps
// adverts with is CLOCK_MONOTONIC to the tick: not ahead of it, and at
// most a few ticks behind.
func TestAdvertTimeIsTheMonotonicClock(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	mono := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	before := mono()
	run(t, d, advertFrame(t, v3adv(51, vip4), peer4, vrrp.Group4, 255, nil))
	after := mono()
	p, ok, err := d.Peer(51, 4)
	if err != nil || !ok {
		t.Fatalf("no peer state: %v", err)
	}
	const tick = 20 * time.Millisecond // HZ >= 100, with margin
	if p.Monotonic > after || p.Monotonic < before-tick {
		t.Errorf("advert stamped %v, CLOCK_MONOTONIC was %v before and %v after", p.Monotonic, before, after)
	}
}
