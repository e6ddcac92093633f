package dataplane

import (
	"bytes"
	"context"
	"encoding/binary"
	"maps"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

var (
	peer4  = netip.MustParseAddr("192.0.2.2")
	self4  = netip.MustParseAddr("192.0.2.1")
	other4 = netip.MustParseAddr("192.0.2.3")
	vip4   = netip.MustParseAddr("192.0.2.100")
	peer6  = netip.MustParseAddr("fe80::2")
	self6  = netip.MustParseAddr("fe80::1")
	vip6   = netip.MustParseAddr("2001:db8::100")
	peerMC = mustMAC("00:00:5e:00:01:33")
)

// advertFrame builds an Ethernet frame carrying a. mutate, if set, edits
// the VRRP message after Marshal (before the IP header is added).
func advertFrame(t testing.TB, a vrrp.Advert, src, dst netip.Addr, ttl uint8, mutate func([]byte)) []byte {
	t.Helper()
	msg, err := a.Marshal(src, dst)
	if err != nil {
		t.Fatalf("marshal advert: %v", err)
	}
	if mutate != nil {
		mutate(msg)
	}
	return packet.IPFrame(mustMAC("01:00:5e:00:00:12"), peerMC, src, dst, packet.ProtoVRRP, ttl, msg)
}

func v3adv(vrid uint8, addrs ...netip.Addr) vrrp.Advert {
	return vrrp.Advert{Version: 3, Type: 1, VRID: vrid, Priority: 100, Interval: 100 * time.Millisecond, Addrs: addrs}
}

func v2adv(vrid uint8, pass string, interval time.Duration, addrs ...netip.Addr) vrrp.Advert {
	a := vrrp.Advert{Version: 2, Type: 1, VRID: vrid, Priority: 150, Interval: interval, Addrs: addrs}
	if pass != "" {
		a.AuthType = 1
		a.AuthData = vrrp.PasswordBytes(pass)
	}
	return a
}

// configureTestVRIDs sets up the instances the fixtures talk to.
func configureTestVRIDs(t testing.TB, d *Dataplane) {
	t.Helper()
	cfgs := []struct {
		vrid uint8
		cfg  VRIDConfig
	}{
		{51, VRIDConfig{Version: 3, Family: 4}},
		{52, VRIDConfig{Version: 2, Family: 4, AuthType: 1, AuthPass: "secret", Interval: time.Second}},
		{53, VRIDConfig{Version: 3, Family: 6}},
		{54, VRIDConfig{Version: 3, Family: 4, Peers: []netip.Addr{peer4}}},
		{55, VRIDConfig{Version: 3, Family: 4, AddrCount: 2}},
		{56, VRIDConfig{Version: 2, Family: 4}},
		{57, VRIDConfig{Version: 3, Family: 4, Peers: []netip.Addr{peer4}, PeerTTL: map[netip.Addr]TTLRange{peer4: {Min: 10, Max: 20}}}},
		{58, VRIDConfig{Version: 3, Family: 6, Peers: []netip.Addr{peer6}}},
	}
	for _, c := range cfgs {
		if err := d.ConfigureVRID(c.vrid, c.cfg); err != nil {
			t.Fatalf("ConfigureVRID(%d): %v", c.vrid, err)
		}
	}
}

func TestVRRPFixtures(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	g4, g6 := vrrp.Group4, vrrp.Group6

	tests := []struct {
		name    string
		frame   []byte
		verdict uint32
		counter string // the one counter that must go up by one
	}{
		{"valid v3 IPv4", advertFrame(t, v3adv(51, vip4), peer4, g4, 255, nil), xdpDrop, "vrrp_valid"},
		{"valid v2 password", advertFrame(t, v2adv(52, "secret", time.Second, vip4), peer4, g4, 255, nil), xdpDrop, "vrrp_valid"},
		{"valid v3 IPv6", advertFrame(t, v3adv(53, vip6), peer6, g6, 255, nil), xdpDrop, "vrrp_valid"},
		{"valid unicast peer", advertFrame(t, v3adv(54, vip4), peer4, self4, 255, nil), xdpDrop, "vrrp_valid"},
		{"valid two addresses", advertFrame(t, v3adv(55, vip4, other4), peer4, g4, 255, nil), xdpDrop, "vrrp_valid"},
		{"valid v2 no auth", advertFrame(t, v2adv(56, "", 3*time.Second, vip4), peer4, g4, 255, nil), xdpDrop, "vrrp_valid"},

		{"truncated VRRP header", packet.IPFrame(lbMAC, peerMC, peer4, g4, packet.ProtoVRRP, 255, []byte{0x31, 51, 100}), xdpDrop, "truncated"},
		{"truncated IP length beyond frame", truncateIPv4(advertFrame(t, v3adv(51, vip4), peer4, g4, 255, nil), 8), xdpDrop, "truncated"},
		{"IPv4 header length below 20", editFrame(advertFrame(t, v3adv(51, vip4), peer4, g4, 255, nil), func(f []byte) { f[ethLen] = 0x44 }), xdpDrop, "truncated"},
		{"IPv4 total length below the header", editFrame(advertFrame(t, v3adv(51, vip4), peer4, g4, 255, nil), func(f []byte) { binary.BigEndian.PutUint16(f[ethLen+2:], 12) }), xdpDrop, "truncated"},
		{"ttl 64", advertFrame(t, v3adv(51, vip4), peer4, g4, 64, nil), xdpDrop, "ttl"},
		{"hop limit 1", advertFrame(t, v3adv(53, vip6), peer6, g6, 1, nil), xdpDrop, "ttl"},
		{"version 4", advertFrame(t, v3adv(51, vip4), peer4, g4, 255, func(m []byte) { m[0] = 0x41 }), xdpDrop, "version"},
		{"v2 advert for a v3 instance", advertFrame(t, v2adv(51, "", time.Second, vip4), peer4, g4, 255, nil), xdpDrop, "version"},
		{"v2 over IPv6", advertFrame(t, v2adv(53, "", time.Second, vip6), peer6, g6, 255, nil), xdpDrop, "version"},
		{"type 2", advertFrame(t, v3adv(51, vip4), peer4, g4, 255, func(m []byte) { m[0] = 0x32 }), xdpDrop, "type"},
		{"foreign VRID", advertFrame(t, v3adv(99, vip4), peer4, g4, 255, nil), xdpDrop, "vrid"},
		{"IPv6 advert for an IPv4-only VRID", advertFrame(t, v3adv(51, vip6), peer6, g6, 255, nil), xdpDrop, "family"},
		{"count beyond payload", advertFrame(t, v3adv(51, vip4), peer4, g4, 255, func(m []byte) { m[3] = 3 }), xdpDrop, "truncated"},
		{"payload beyond count (trailing bytes)", advertFrame(t, v3adv(51, vip4, netip.MustParseAddr("192.0.2.201")), peer4, g4, 255, func(m []byte) { m[3] = 1 }), xdpDrop, "length"},
		{"count zero", advertFrame(t, v3adv(51, vip4), peer4, g4, 255, func(m []byte) { m[3] = 0 }), xdpDrop, "addr_count"},
		{"count differs from configured", advertFrame(t, v3adv(55, vip4), peer4, g4, 255, nil), xdpDrop, "addr_count"},
		{"bad checksum v3", advertFrame(t, v3adv(51, vip4), peer4, g4, 255, func(m []byte) { m[7] ^= 0xff }), xdpDrop, "checksum"},
		{"bad checksum v3 IPv6", advertFrame(t, v3adv(53, vip6), peer6, g6, 255, func(m []byte) { m[2] = 1 }), xdpDrop, "checksum"},
		{"bad checksum v2", advertFrame(t, v2adv(52, "secret", time.Second, vip4), peer4, g4, 255, func(m []byte) { m[2] = 1 }), xdpDrop, "checksum"},
		{"v2 auth type none for PASS", advertFrame(t, v2adv(52, "", time.Second, vip4), peer4, g4, 255, nil), xdpDrop, "auth_type"},
		{"v2 wrong password", advertFrame(t, v2adv(52, "wrong", time.Second, vip4), peer4, g4, 255, nil), xdpDrop, "auth"},
		{"v2 wrong interval", advertFrame(t, v2adv(52, "secret", 2*time.Second, vip4), peer4, g4, 255, nil), xdpDrop, "interval"},
		{"v3 interval zero", advertFrame(t, v3adv(51, vip4), peer4, g4, 255, func(m []byte) { fixV3(m, peer4, g4, func(m []byte) { m[4], m[5] = 0, 0 }) }), xdpDrop, "interval"},
		{"unicast from a stranger", advertFrame(t, v3adv(54, vip4), other4, self4, 255, nil), xdpDrop, "unicast_peer"},

		// TTL: 255 is required of multicast instances (and of adverts for
		// no instance); a unicast instance takes any, within the peer's
		// min_ttl / max_ttl when configured (keepalived's vrrp_check_packet).
		{"unicast ttl 64", advertFrame(t, v3adv(54, vip4), peer4, self4, 64, nil), xdpDrop, "vrrp_valid"},
		{"unicast IPv6 hop limit 64 (keepalived's default)", advertFrame(t, v3adv(58, vip6), peer6, self6, 64, nil), xdpDrop, "vrrp_valid"},
		{"unicast ttl inside min_ttl..max_ttl", advertFrame(t, v3adv(57, vip4), peer4, self4, 15, nil), xdpDrop, "vrrp_valid"},
		{"unicast ttl below min_ttl", advertFrame(t, v3adv(57, vip4), peer4, self4, 9, nil), xdpDrop, "ttl"},
		{"unicast ttl above max_ttl", advertFrame(t, v3adv(57, vip4), peer4, self4, 21, nil), xdpDrop, "ttl"},
		{"unicast ttl 64 from a stranger", advertFrame(t, v3adv(54, vip4), other4, self4, 64, nil), xdpDrop, "unicast_peer"},
		{"ttl 64 for no instance", advertFrame(t, v3adv(99, vip4), peer4, g4, 64, nil), xdpDrop, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counters(t, d)
			v, _ := run(t, d, tt.frame)
			if v != tt.verdict {
				t.Errorf("verdict %s, want %s", verdictNames[v], verdictNames[tt.verdict])
			}
			delta := counterDelta(before, counters(t, d))
			want := map[string]uint64{tt.counter: 1}
			if !maps.Equal(delta, want) {
				t.Errorf("counters changed by %v, want %v", delta, want)
			}
		})
	}
}

// ethLen is the Ethernet header's length: the IP header starts there.
const ethLen = 14

// editFrame applies edit to a copy of f.
func editFrame(f []byte, edit func([]byte)) []byte {
	f = append([]byte(nil), f...)
	edit(f)
	return f
}

// truncateIPv4 cuts n bytes off the end of an IPv4 frame, leaving the IP
// total length as it was.
func truncateIPv4(f []byte, n int) []byte { return f[:len(f)-n] }

// fixV3 edits a v3 message and recomputes its checksum, so that the edit
// is the only fault.
func fixV3(m []byte, src, dst netip.Addr, edit func([]byte)) {
	edit(m)
	m[6], m[7] = 0, 0
	c := packet.Checksum(m, packet.PseudoHeaderSum(src, dst, packet.ProtoVRRP, len(m)))
	binary.BigEndian.PutUint16(m[6:8], c)
}

func TestVRRPValidAdvertUpdatesStateAndEmitsEvent(t *testing.T) {
	tests := []struct {
		name     string
		adv      vrrp.Advert
		src, dst netip.Addr
		family   uint8
		interval time.Duration
	}{
		{"v3 IPv4", v3adv(51, vip4, other4), peer4, vrrp.Group4, 4, 100 * time.Millisecond},
		{"v2 IPv4 password", v2adv(52, "secret", time.Second, vip4), peer4, vrrp.Group4, 4, time.Second},
		{"v3 IPv6", v3adv(53, vip6), peer6, vrrp.Group6, 6, 100 * time.Millisecond},
	}
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := advertFrame(t, tt.adv, tt.src, tt.dst, 255, nil)
			for i := 0; i < 3; i++ {
				if v, _ := run(t, d, f); v != xdpDrop {
					t.Fatalf("verdict %s, want DROP", verdictNames[v])
				}
			}
			p, ok, err := d.Peer(tt.adv.VRID, tt.family)
			if err != nil || !ok {
				t.Fatalf("Peer: ok=%v err=%v", ok, err)
			}
			want := PeerState{Src: tt.src, Priority: tt.adv.Priority, Version: tt.adv.Version, Interval: tt.interval, Count: 3, Monotonic: p.Monotonic}
			if p != want || p.Monotonic == 0 {
				t.Errorf("peer state %+v, want %+v (non-zero time)", p, want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for i := 0; i < 3; i++ {
				ev, err := d.ReadAdvert(ctx)
				if err != nil {
					t.Fatalf("ReadAdvert %d: %v", i, err)
				}
				if ev.VRID != tt.adv.VRID || ev.Family != tt.family || ev.Version != tt.adv.Version ||
					ev.Priority != tt.adv.Priority || ev.Interval != tt.interval || ev.Src != tt.src || ev.Dst != tt.dst {
					t.Errorf("event %+v does not match the advert", ev)
				}
				got, err := vrrp.Decode(ev.Payload, ev.Src, ev.Dst)
				if err != nil {
					t.Fatalf("decode event payload: %v", err)
				}
				if !equalAddrs(got.Addrs, tt.adv.Addrs) {
					t.Errorf("event addresses %v, want %v", got.Addrs, tt.adv.Addrs)
				}
			}
		})
	}
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadAdvertHonoursContext(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.ReadAdvert(ctx); err != context.DeadlineExceeded {
		t.Fatalf("ReadAdvert on an idle ring = %v, want context.DeadlineExceeded", err)
	}
}

func TestRemoveVRIDAndPeerReconfigure(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	uni := advertFrame(t, v3adv(54, vip4), peer4, self4, 255, nil)
	if v, _ := run(t, d, uni); v != xdpDrop || counters(t, d)["vrrp_valid"] != 1 {
		t.Fatal("unicast advert from the configured peer not accepted")
	}
	// Replace the allow-list: the old peer is refused, the new one accepted.
	if err := d.ConfigureVRID(54, VRIDConfig{Version: 3, Family: 4, Peers: []netip.Addr{other4}}); err != nil {
		t.Fatal(err)
	}
	before := counters(t, d)
	run(t, d, uni)
	run(t, d, advertFrame(t, v3adv(54, vip4), other4, self4, 255, nil))
	if got := counterDelta(before, counters(t, d)); !maps.Equal(got, map[string]uint64{"unicast_peer": 1, "vrrp_valid": 1}) {
		t.Errorf("after peer change: counters changed by %v", got)
	}
	if err := d.RemoveVRID(54, 4); err != nil {
		t.Fatal(err)
	}
	before = counters(t, d)
	run(t, d, uni)
	if got := counterDelta(before, counters(t, d)); !maps.Equal(got, map[string]uint64{"vrid": 1}) {
		t.Errorf("after RemoveVRID: counters changed by %v", got)
	}
	if _, ok, _ := d.Peer(54, 4); ok {
		t.Error("peer state survived RemoveVRID")
	}
}

func TestConfigureVRIDRejectsBadConfig(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	tests := []struct {
		name string
		vrid uint8
		cfg  VRIDConfig
	}{
		{"version 1", 1, VRIDConfig{Version: 1, Family: 4}},
		{"family 5", 1, VRIDConfig{Version: 3, Family: 5}},
		{"v2 IPv6", 1, VRIDConfig{Version: 2, Family: 6}},
		{"vrid 0", 0, VRIDConfig{Version: 3, Family: 4}},
		{"AH", 1, VRIDConfig{Version: 2, Family: 4, AuthType: 2}},
		{"fractional v2 interval", 1, VRIDConfig{Version: 2, Family: 4, Interval: 1500 * time.Millisecond}},
		{"peer of the other family", 1, VRIDConfig{Version: 3, Family: 4, Peers: []netip.Addr{peer6}}},
	}
	for _, tt := range tests {
		if err := d.ConfigureVRID(tt.vrid, tt.cfg); err == nil {
			t.Errorf("%s: ConfigureVRID accepted %+v", tt.name, tt.cfg)
		}
	}
}

func TestNonVRRPPassesUntouched(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	frames := map[string][]byte{
		"tcp4":              packet.TCPFrame(lbMAC, clientMAC, netip.MustParseAddrPort("198.51.100.7:1234"), netip.MustParseAddrPort("192.0.2.1:22"), packet.SYN, nil),
		"udp6":              packet.UDPFrame(lbMAC, clientMAC, netip.MustParseAddrPort("[2001:db8::7]:1234"), netip.MustParseAddrPort("[2001:db8::1]:53"), []byte("q")),
		"arp":               append(append(append([]byte{}, mustMAC("ff:ff:ff:ff:ff:ff")...), clientMAC...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1),
		"unknown ethertype": append(append(append([]byte{}, lbMAC...), clientMAC...), 0x88, 0xb5, 0, 0),
		"icmp4":             packet.IPFrame(lbMAC, clientMAC, peer4, self4, 1, 64, []byte{8, 0, 0xf7, 0xff, 0, 0, 0, 0}),
	}
	for name, f := range frames {
		before := counters(t, d)
		v, out := run(t, d, f)
		if v != xdpPass {
			t.Errorf("%s: verdict %s, want PASS", name, verdictNames[v])
		}
		if !bytes.Equal(out, f) {
			t.Errorf("%s: frame changed", name)
		}
		if delta := counterDelta(before, counters(t, d)); len(delta) != 0 {
			t.Errorf("%s: counters changed by %v", name, delta)
		}
	}
}

// eventRecord is a ring-buffer record as the program writes it, carrying
// msg (truncated to the payload array) from src to dst.
func eventRecord(family uint8, src, dst netip.Addr, msg []byte) []byte {
	raw := xdpvipVrrpEvent{KtimeNs: 42e9, Vrid: 51, Family: family, Version: 3, Priority: 100, IntervalCs: 100,
		PayloadLen: uint16(len(msg)), Src: addr16(src), Dst: addr16(dst)}
	copy(raw.Payload[:], msg)
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&raw)), eventSize)...)
}

func TestDecodeAdvertEventReadsTheGeneratedLayout(t *testing.T) {
	adv := v3adv(51, vip4, other4)
	msg, err := adv.Marshal(peer4, vrrp.Group4)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := decodeAdvertEvent(eventRecord(4, peer4, vrrp.Group4, msg))
	if err != nil {
		t.Fatal(err)
	}
	want := AdvertEvent{VRID: 51, Family: 4, Version: 3, Priority: 100, Interval: time.Second, Src: peer4, Dst: vrrp.Group4,
		Monotonic: 42 * time.Second}
	if ev.VRID != want.VRID || ev.Family != want.Family || ev.Version != want.Version || ev.Priority != want.Priority ||
		ev.Interval != want.Interval || ev.Src != want.Src || ev.Dst != want.Dst || ev.Monotonic != want.Monotonic {
		t.Errorf("decoded %+v, want %+v", ev, want)
	}
	if !bytes.Equal(ev.Payload, msg) || !equalAddrs(ev.Addrs, adv.Addrs) {
		t.Errorf("payload %x addresses %v, want %x %v", ev.Payload, ev.Addrs, msg, adv.Addrs)
	}
}

func TestDecodeAdvertEventRejectsBadRecords(t *testing.T) {
	adv := v3adv(51, vip4)
	msg, err := adv.Marshal(peer4, vrrp.Group4)
	if err != nil {
		t.Fatal(err)
	}
	good := eventRecord(4, peer4, vrrp.Group4, msg)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte short", good[:eventSize-1]},
		{"family 0", eventRecord(0, peer4, vrrp.Group4, msg)},
		{"no payload (load failed in BPF)", eventRecord(4, peer4, vrrp.Group4, nil)},
		{"payload shorter than its count", eventRecord(4, peer4, vrrp.Group4, func() []byte {
			m := append([]byte(nil), msg...)
			m[vrrpCountOffset] = 9
			return m
		}())},
		{"payload length beyond the array", func() []byte {
			b := append([]byte(nil), good...)
			off := unsafe.Offsetof(xdpvipVrrpEvent{}.PayloadLen)
			binary.LittleEndian.PutUint16(b[off:], uint16(MaxMessageLen+1))
			return b
		}()},
	}
	for _, tt := range tests {
		if ev, err := decodeAdvertEvent(tt.b); err == nil {
			t.Errorf("%s: decoded without error: %+v", tt.name, ev)
		}
	}
}

func FuzzDecodeAdvertEvent(f *testing.F) {
	adv := v3adv(51, vip4, other4)
	msg, err := adv.Marshal(peer4, vrrp.Group4)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(eventRecord(4, peer4, vrrp.Group4, msg))
	f.Add(eventRecord(6, peer6, vrrp.Group6, msg))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decodeAdvertEvent(b)
		if err != nil {
			return
		}
		if ev.Family != 4 && ev.Family != 6 || len(ev.Payload) > MaxMessageLen || len(ev.Payload) < vrrpHeaderLen {
			t.Fatalf("decoded an inconsistent event %+v", ev)
		}
		if ev.Src.Is4() != (ev.Family == 4) || ev.Dst.Is4() != (ev.Family == 4) {
			t.Fatalf("addresses %v %v do not match family %d", ev.Src, ev.Dst, ev.Family)
		}
		if len(ev.Addrs) != int(ev.Payload[vrrpCountOffset]) {
			t.Fatalf("%d addresses for count %d", len(ev.Addrs), ev.Payload[vrrpCountOffset])
		}
		for _, a := range ev.Addrs {
			if a.Is4() != (ev.Family == 4) {
				t.Fatalf("address %v in a family %d advert", a, ev.Family)
			}
		}
	})
}
