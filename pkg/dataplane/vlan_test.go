package dataplane

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// fakeVLANs maps VLAN device ifindexes to (parent, VID).
type fakeVLANs map[int]struct {
	parent int
	vid    uint16
}

func (f fakeVLANs) VLANOf(ifindex int) (int, uint16, bool) {
	v, ok := f[ifindex]
	return v.parent, v.vid, ok
}

// Interfaces of the VLAN fixtures: two VLAN devices on the attached
// interface and one on another parent.
const (
	vlan100Ifindex = 20
	vlan200Ifindex = 21
	otherVLAN      = 22
)

// vlanDataplane has rs1 on VLAN 100, rs2 on the attached interface
// untagged, rs3 on VLAN 200, rsFar on a VLAN of another interface.
func vlanDataplane(t *testing.T) *Dataplane {
	t.Helper()
	res := testResolver()
	res[rs1] = fakeNeigh{mac: rsMAC[rs1], ifindex: vlan100Ifindex}
	res[rs3] = fakeNeigh{mac: rsMAC[rs3], ifindex: vlan200Ifindex}
	res[rsFar] = fakeNeigh{mac: rsMAC[rsFar], ifindex: otherVLAN}
	d := newTestDataplane(t, 251, res)
	d.lvs.links = fakeVLANs{
		vlan100Ifindex: {lbIfindex, 100},
		vlan200Ifindex: {lbIfindex, 200},
		otherVLAN:      {farIfindex, 100},
	}
	err := d.Apply([]lvs.Service{
		tcpService(svcVIP4, 80, dest(rs1, 80, 1)),
		tcpService(svcVIP4, 81, dest(rs2, 81, 1)),
		tcpService(svcVIP4, 82, dest(rs3, 82, 1)),
		tcpService(svcVIP4, 83, dest(rsFar, 83, 1)),
		tcpService(svcVIP6, 443, dest(rs6, 443, 1)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []netip.Addr{svcVIP4, svcVIP6} {
		if err := d.SetVIPActive(v, true); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// withTCI sets the TCI of tag i (0 = outermost) of a tagged frame.
func withTCI(frame []byte, i int, tci uint16) []byte {
	b := append([]byte(nil), frame...)
	binary.BigEndian.PutUint16(b[14+4*i:], tci)
	return b
}

// rewritten is frame as DR sends it to real server rs: its MACs replaced.
func rewritten(frame []byte, rs netip.Addr) []byte {
	return append(append(append([]byte{}, rsMAC[rs]...), lbMAC...), frame[12:]...)
}

// TestVLANFixtures: tagged and double-tagged VIP frames on the parent are
// forwarded with the tagging of the real server's VLAN: kept, VID
// rewritten (priority kept), pushed, popped; double tags kept; tagged
// adverts left to the VLAN device.
func TestVLANFixtures(t *testing.T) {
	d := vlanDataplane(t)
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	tcp := func(port uint16) []byte {
		return packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, port), packet.ACK|packet.PSH, []byte("GET / HTTP/1.0\r\n\r\n"))
	}
	tcp6 := packet.TCPFrame(lbMAC, clientMAC, netip.MustParseAddrPort("[2001:db8:1::7]:40000"), netip.AddrPortFrom(svcVIP6, 443), packet.SYN, nil)
	const prio5 = 5 << 13
	for _, tc := range []struct {
		name    string
		in      []byte
		verdict uint32
		want    []byte // nil: unchanged
		counter string
	}{
		{"VLAN 100 to a real on VLAN 100: tag kept", vlanTagged(tcp(80), 0x8100, 100), xdpTX, vlanTagged(rewritten(tcp(80), rs1), 0x8100, 100), "fwd_tx"},
		{"VLAN 100 (priority 5) to a real on VLAN 200: VID rewritten", withTCI(vlanTagged(tcp(82), 0x8100, 100), 0, prio5|100), xdpTX, withTCI(vlanTagged(rewritten(tcp(82), rs3), 0x8100, 200), 0, prio5|200), "fwd_tx"},
		{"untagged to a real on VLAN 100: tag pushed", tcp(80), xdpTX, vlanTagged(rewritten(tcp(80), rs1), 0x8100, 100), "fwd_tx"},
		{"VLAN 100 to an untagged real: tag popped", vlanTagged(tcp(81), 0x8100, 100), xdpTX, rewritten(tcp(81), rs2), "fwd_tx"},
		{"untagged to an untagged real", tcp(81), xdpTX, rewritten(tcp(81), rs2), "fwd_tx"},
		{"IPv6 on VLAN 100 to an untagged real: popped", vlanTagged(tcp6, 0x8100, 100), xdpTX, rewritten(tcp6, rs6), "fwd_tx"},
		{"QinQ (S-tag 10, C-tag 100): both tags kept", vlanTagged(tcp(82), 0x88a8, 10, 100), xdpTX, vlanTagged(rewritten(tcp(82), rs3), 0x88a8, 10, 100), "fwd_tx"},
		{"double C-tag: both kept", vlanTagged(tcp(80), 0x8100, 7, 100), xdpTX, vlanTagged(rewritten(tcp(80), rs1), 0x8100, 7, 100), "fwd_tx"},
		{"real on another interface's VLAN: redirected, tag kept", vlanTagged(tcp(83), 0x8100, 100), xdpRedirect, vlanTagged(rewritten(tcp(83), rsFar), 0x8100, 100), "fwd_redirect"},
		{"three tags: not parsed", vlanTagged(tcp(80), 0x88a8, 1, 2, 3), xdpPass, nil, ""},
		{"tagged port without a service", vlanTagged(tcp(8080), 0x8100, 100), xdpPass, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counters(t, d)
			opts := runOpts(tc.in)
			v, err := d.objs.XdpVip.Run(&opts)
			if err != nil {
				t.Fatal(err)
			}
			if v != tc.verdict {
				t.Fatalf("verdict %s, want %s", verdictNames[v], verdictNames[tc.verdict])
			}
			want := tc.want
			if want == nil {
				want = tc.in
			}
			if !bytes.Equal(opts.DataOut, want) {
				t.Errorf("output\n got % x\nwant % x", opts.DataOut[:min(len(opts.DataOut), 40)], want[:min(len(want), 40)])
			}
			checkFrame(t, opts.DataOut)
			wantDelta := map[string]uint64{}
			if tc.counter != "" {
				wantDelta[tc.counter] = 1
			}
			if delta := counterDelta(before, counters(t, d)); fmt.Sprint(delta) != fmt.Sprint(wantDelta) {
				t.Errorf("counters changed by %v, want %v", delta, wantDelta)
			}
		})
	}
}

// TestVLANTagKeptWithoutVLANInfo: with no VLAN information about the real
// server's interface (reals pinned by an older daemon, prog.Run), tagged
// frames keep their tags.
func TestVLANTagKeptWithoutVLANInfo(t *testing.T) {
	d := newTestDataplane(t, 251, testResolver())
	if err := d.Apply([]lvs.Service{tcpService(svcVIP4, 80, dest(rs1, 80, 1))}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		t.Fatal(err)
	}
	in := vlanTagged(packet.TCPFrame(lbMAC, clientMAC, netip.MustParseAddrPort("198.51.100.7:40000"), netip.AddrPortFrom(svcVIP4, 80), packet.SYN, nil), 0x8100, 100)
	v, out := run(t, d, in)
	if v != xdpTX || !bytes.Equal(out, rewritten(in, rs1)) {
		t.Errorf("verdict %s, output % x; want TX with the tag kept", verdictNames[v], out[:20])
	}
}

// TestVLANTaggedAdvertsPass: VRRP instances of a VLAN run on its VLAN
// device, which the kernel hands the frame to: the parent's program
// neither validates nor drops tagged adverts.
func TestVLANTaggedAdvertsPass(t *testing.T) {
	d := newTestDataplane(t, 251, nil)
	configureTestVRIDs(t, d)
	adv4 := advertFrame(t, v3adv(51, vip4), peer4, vrrp.Group4, 255, nil)
	adv6 := advertFrame(t, v3adv(53, vip6), peer6, vrrp.Group6, 255, nil)
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"IPv4 advert on VLAN 100", vlanTagged(adv4, 0x8100, 100)},
		{"IPv6 advert on VLAN 100", vlanTagged(adv6, 0x8100, 100)},
		{"IPv4 advert QinQ", vlanTagged(adv4, 0x88a8, 10, 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counters(t, d)
			v, out := run(t, d, tc.frame)
			if v != xdpPass || !bytes.Equal(out[:len(tc.frame)], tc.frame) {
				t.Errorf("verdict %s, want PASS untouched", verdictNames[v])
			}
			if delta := counterDelta(before, counters(t, d)); !maps.Equal(delta, map[string]uint64{}) {
				t.Errorf("counters changed by %v", delta)
			}
		})
	}
	// The same adverts untagged are this interface's: validated.
	before := counters(t, d)
	if v, _ := run(t, d, adv4); v != xdpDrop {
		t.Errorf("untagged advert: verdict %s, want DROP", verdictNames[v])
	}
	if delta := counterDelta(before, counters(t, d)); !maps.Equal(delta, map[string]uint64{"vrrp_valid": 1}) {
		t.Errorf("untagged advert: counters changed by %v, want vrrp_valid 1", delta)
	}
}

// runOpts are prog.Run options for frame with room for a pushed tag;
// after Run, DataOut is exactly the frame the program left.
func runOpts(frame []byte) ebpf.RunOptions {
	return ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
}

// TestNetlinkVLANsAndEgress: a real VLAN device on the attached interface
// is recognised through netlink, and a real server behind it is reached
// through the parent with its VID; one on the interface itself untagged.
// Needs the 8021q module: the BPF guest suite loads it (this host's
// kernel has none).
func TestNetlinkVLANsAndEgress(t *testing.T) {
	requireBPF(t)
	n := testnet.New(t)
	lb := n.AddHost("lb", "192.0.2.1/24")
	vlanDev := "vl100"
	if out, err := lb.Exec(context.Background(), "ip", "link", "add", "link", lb.Iface(), "name", vlanDev, "type", "vlan", "id", "100"); err != nil {
		t.Skipf("no 802.1Q devices in this kernel (8021q module; the qemu guest suite has it): %v: %s", err, out)
	}
	var parent, child int
	var vl *netlinkVLANs
	lb.MustDo(func() error {
		p, err := net.InterfaceByName(lb.Iface())
		if err != nil {
			return err
		}
		c, err := net.InterfaceByName(vlanDev)
		if err != nil {
			return err
		}
		parent, child = p.Index, c.Index
		vl, err = newNetlinkVLANs()
		return err
	})
	defer vl.close()
	if p, vid, ok := vl.VLANOf(child); !ok || p != parent || vid != 100 {
		t.Errorf("VLANOf(%s) = %d, %d, %v; want %d, 100, true", vlanDev, p, vid, ok, parent)
	}
	if _, _, ok := vl.VLANOf(parent); ok {
		t.Errorf("VLANOf(%s) says it is a VLAN device", lb.Iface())
	}
	s := lvsState{d: &Dataplane{ifindex: parent}, links: vl}
	for _, tc := range []struct {
		ifindex  int
		wantIf   uint32
		wantVLAN uint16
	}{
		{child, uint32(parent), 100},
		{parent, uint32(parent), realVLANUntagged},
		{9999, 9999, 0},
	} {
		if ifi, v := s.egress(tc.ifindex); ifi != tc.wantIf || v != tc.wantVLAN {
			t.Errorf("egress(%d) = %d, %#x; want %d, %#x", tc.ifindex, ifi, v, tc.wantIf, tc.wantVLAN)
		}
	}
}
