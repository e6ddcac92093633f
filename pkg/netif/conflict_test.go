package netif

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/xdpvip/xdpvip/internal/testnet"
)

// naFrame is an Ethernet frame from src carrying an unsolicited NA for
// target with opts, hop limit hops.
func naFrame(t testing.TB, src net.HardwareAddr, target netip.Addr, hops byte, opts []ndp.Option) []byte {
	t.Helper()
	body, err := ndp.MarshalMessage(&ndp.NeighborAdvertisement{Override: true, TargetAddress: target, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	ip := make([]byte, 40, 40+len(body))
	ip[0] = 6 << 4
	ip[4], ip[5] = byte(len(body)>>8), byte(len(body))
	ip[6], ip[7] = 58, hops
	from := netip.MustParseAddr("fe80::1").As16()
	to := netip.MustParseAddr("ff02::1").As16()
	copy(ip[8:24], from[:])
	copy(ip[24:40], to[:])
	f := ethernet.Frame{Destination: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, Source: src, EtherType: ethernet.EtherTypeIPv6, Payload: append(ip, body...)}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func arpFrame(t testing.TB, op arp.Operation, mac net.HardwareAddr, sender, target netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, mac, sender, ethernet.Broadcast, target)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeClaim(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x22}
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x33}
	vip4 := netip.MustParseAddr("192.0.2.50")
	vip6 := netip.MustParseAddr("2001:db8::50")
	garp, err := garpFrame(arp.OperationRequest, mac, vip4)
	if err != nil {
		t.Fatal(err)
	}
	tlla := []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: other}}
	ok := []struct {
		name  string
		frame []byte
		want  Claim
	}{
		{"gratuitous ARP request", garp, Claim{ClaimGARP, vip4, mac}},
		{"ARP reply", arpFrame(t, arp.OperationReply, mac, vip4, netip.MustParseAddr("192.0.2.9")), Claim{ClaimARPReply, vip4, mac}},
		{"ARP request from the VIP", arpFrame(t, arp.OperationRequest, mac, vip4, netip.MustParseAddr("192.0.2.9")), Claim{ClaimARPRequest, vip4, mac}},
		{"NA with target link-layer address", naFrame(t, mac, vip6, 255, tlla), Claim{ClaimNA, vip6, other}},
		{"NA without option: the Ethernet source", naFrame(t, mac, vip6, 255, nil), Claim{ClaimNA, vip6, mac}},
		{"NA padded", append(naFrame(t, mac, vip6, 255, nil), 0, 0, 0, 0), Claim{ClaimNA, vip6, mac}},
	}
	for _, tc := range ok {
		got, err := DecodeClaim(tc.frame)
		if err != nil || got.Kind != tc.want.Kind || got.Addr != tc.want.Addr || !bytes.Equal(got.MAC, tc.want.MAC) {
			t.Errorf("%s: DecodeClaim = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	vlan, err := (&ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, VLAN: &ethernet.VLAN{ID: 7}, EtherType: ethernet.EtherTypeARP, Payload: garp[14:]}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeClaim(vlan); err != nil || got.Addr != vip4 {
		t.Errorf("VLAN-tagged GARP: %+v, %v", got, err)
	}
	nd := naFrame(t, mac, vip6, 255, nil)
	nd[14+40] = byte(135) // a neighbour solicitation
	bad := []struct {
		name  string
		frame []byte
	}{
		{"empty", nil},
		{"short ethernet", garp[:10]},
		{"truncated ARP", garp[:14+20]},
		{"ARP probe", arpFrame(t, arp.OperationRequest, mac, netip.IPv4Unspecified(), vip4)},
		{"IPv4 frame", append(append([]byte{}, garp[:12]...), 0x08, 0x00, 0x45)},
		{"NA hop limit 64", naFrame(t, mac, vip6, 64, nil)},
		{"NS", nd},
		{"truncated NA", naFrame(t, mac, vip6, 255, nil)[:14+40+10]},
		{"short IPv6", naFrame(t, mac, vip6, 255, nil)[:14+20]},
	}
	for _, tc := range bad {
		if got, err := DecodeClaim(tc.frame); !errors.Is(err, ErrNotClaim) {
			t.Errorf("%s: DecodeClaim = %+v, %v; want ErrNotClaim", tc.name, got, err)
		}
	}
}

func FuzzDecodeClaim(f *testing.F) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x22}
	garp, _ := garpFrame(arp.OperationReply, mac, netip.MustParseAddr("192.0.2.50"))
	f.Add(garp)
	f.Add(naFrame(f, mac, netip.MustParseAddr("2001:db8::50"), 255, []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeClaim(b)
		if err != nil {
			if !errors.Is(err, ErrNotClaim) {
				t.Fatalf("error %v does not wrap ErrNotClaim", err)
			}
			return
		}
		if !c.Addr.IsValid() || c.Kind == "" || c.MAC == nil {
			t.Fatalf("claim %+v from a frame that decoded", c)
		}
		if c.Kind == ClaimNA != c.Addr.Is6() {
			t.Fatalf("claim %+v: kind and family disagree", c)
		}
	})
}

// A listener sees the GARP and NA another host sends, with that host's
// MAC, and not the ones its own host sends.
func TestClaimListener(t *testing.T) {
	n := testnet.New(t)
	lvs1 := n.AddHost("lvs1", "192.0.2.11/24", testnet.WithAddr("2001:db8::11/64"), testnet.WithMAC("02:00:00:00:00:11"))
	lvs2 := n.AddHost("lvs2", "192.0.2.12/24", testnet.WithAddr("2001:db8::12/64"), testnet.WithMAC("02:00:00:00:00:12"))
	var l *ClaimListener
	lvs1.MustDo(func() (err error) {
		l, err = OpenClaimListener("eth0")
		return err
	})
	claims := make(chan Claim, 64)
	done := make(chan error, 1)
	go func() {
		for {
			c, err := l.ReadClaim()
			if errors.Is(err, ErrNotClaim) {
				continue
			}
			if err != nil {
				done <- err
				return
			}
			select {
			case claims <- c:
			default: // the test is no longer reading
			}
		}
	}()
	own := openAnnouncer(t, lvs1, AnnouncerConfig{Iface: "eth0"})
	other := openAnnouncer(t, lvs2, AnnouncerConfig{Iface: "eth0"})
	vip4, vip6 := netip.MustParseAddr("192.0.2.50"), netip.MustParseAddr("2001:db8::50")
	want := map[netip.Addr]bool{vip4: false, vip6: false}
	deadline := time.After(10 * time.Second)
	for !want[vip4] || !want[vip6] {
		for _, v := range []netip.Addr{vip4, vip6} {
			if err := own.Announce(v); err != nil {
				t.Fatal(err)
			}
			if err := other.Announce(v); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case c := <-claims:
			if _, ok := want[c.Addr]; !ok {
				continue // the hosts' own ARP / NDP
			}
			if !bytes.Equal(c.MAC, lvs2.MAC()) {
				t.Fatalf("claim %+v: want only lvs2's %s (lvs1's own frames are outgoing)", c, lvs2.MAC())
			}
			want[c.Addr] = true
		case <-deadline:
			t.Fatalf("claims seen: %v", want)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !bytes.Equal(l.MAC(), lvs1.MAC()) {
		t.Errorf("MAC() = %s, want %s", l.MAC(), lvs1.MAC())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadClaim after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadClaim still blocked after Close")
	}
}
