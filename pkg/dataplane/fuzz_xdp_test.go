package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// tagsLen is the length of the VLAN tags after the MACs (at most two, as
// the program parses them).
func tagsLen(f []byte) int {
	n := 0
	for n < 2*4 && len(f) >= 12+n+4 {
		tpid := binary.BigEndian.Uint16(f[12+n:])
		if tpid != 0x8100 && tpid != 0x88a8 {
			break
		}
		n += 4
	}
	return n
}

// FuzzXDPProgram feeds any frame to the program (with DR services in
// IPv4 and IPv6, fragment entries, VLAN real servers and VRRP instances)
// and checks what it may do: never abort; a passed frame is untouched; a
// forwarded one leaves from this MAC to a real server's, with only its
// Ethernet header and tags changed.
func FuzzXDPProgram(f *testing.F) {
	res := testResolver()
	res[rs1] = fakeNeigh{mac: rsMAC[rs1], ifindex: vlan100Ifindex}
	d := newTestDataplane(f, 251, res)
	d.lvs.links = fakeVLANs{vlan100Ifindex: {lbIfindex, 100}}
	configureTestVRIDs(f, d)
	err := d.Apply([]lvs.Service{
		tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs2, 80, 1)),
		udpService(svcVIP4, 53, dest(rs3, 53, 1)),
		tcpService(svcVIP6, 443, dest(rs6, 443, 1)),
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range []netip.Addr{svcVIP4, svcVIP6} {
		if err := d.SetVIPActive(v, true); err != nil {
			f.Fatal(err)
		}
	}
	c4 := netip.MustParseAddrPort("198.51.100.7:40000")
	c6 := netip.MustParseAddrPort("[2001:db8:1::7]:40000")
	tcp4 := packet.TCPFrame(lbMAC, clientMAC, c4, netip.AddrPortFrom(svcVIP4, 80), packet.ACK, []byte("x"))
	udp4 := packet.UDPFrame(lbMAC, clientMAC, c4, netip.AddrPortFrom(svcVIP4, 53), make([]byte, 32))
	tcp6 := packet.TCPFrame(lbMAC, clientMAC, c6, netip.AddrPortFrom(svcVIP6, 443), packet.SYN, nil)
	for _, seed := range [][]byte{
		tcp4, udp4, tcp6,
		vlanTagged(tcp4, 0x8100, 100), vlanTagged(tcp4, 0x88a8, 10, 100),
		fragment4(udp4, true, 0, 1), fragment4(udp4, false, 9, 1),
		withExt6(tcp6, hopByHop(1), destOpts(2)), withExt6(tcp6, fragExt(9, true, 3)), withExt6(tcp6, routingExt(svcVIP6, 1)),
		advertFrame(f, v3adv(51, vip4), peer4, vrrp.Group4, 255, nil),
		advertFrame(f, v3adv(53, vip6), peer6, vrrp.Group6, 255, nil),
		withExt6(advertFrame(f, v3adv(53, vip6), peer6, vrrp.Group6, 255, nil), hopByHop(1)),
		vlanTagged(advertFrame(f, v3adv(51, vip4), peer4, vrrp.Group4, 255, nil), 0x8100, 100),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < packet.EthernetLen { // test_run refuses runts
			return
		}
		opts := ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+256)}
		v, err := d.objs.XdpVip.Run(&opts)
		if err != nil {
			t.Fatalf("prog.Run: %v", err)
		}
		out := opts.DataOut
		switch v {
		case xdpDrop:
		case xdpPass:
			if !bytes.Equal(out, in) {
				t.Fatalf("passed frame changed:\n in % x\nout % x", in, out)
			}
		case xdpTX, xdpRedirect:
			if !macOwner(out[0:6]).IsValid() || !bytes.Equal(out[6:12], lbMAC) {
				t.Fatalf("forwarded from % x to % x: not this MAC to a real server's", out[6:12], out[0:6])
			}
			if !bytes.Equal(out[12+tagsLen(out):], in[12+tagsLen(in):]) {
				t.Fatalf("forwarded frame changed past its Ethernet header and tags:\n in % x\nout % x", in, out)
			}
		default:
			t.Fatalf("verdict %d (%s)", v, verdictNames[v])
		}
	})
}
