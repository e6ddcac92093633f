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

// FuzzXDPProgram feeds any frame to the program (with DR and TUN services
// in IPv4 and IPv6, fragment entries, VLAN real servers and VRRP
// instances) and checks what it may do: never abort; a passed frame is
// untouched; a forwarded one leaves from this MAC to a real server's,
// with only its Ethernet header and tags changed, or to the tunnels'
// router ending with the frame's IP packet; a too-big answer goes back to
// the sender quoting the start of the frame's IP packet.
func FuzzXDPProgram(f *testing.F) {
	res := tunResolver(1400)
	res[rs1] = fakeNeigh{mac: rsMAC[rs1], ifindex: vlan100Ifindex}
	d := newTestDataplane(f, 251, res)
	d.lvs.links = fakeVLANs{vlan100Ifindex: {lbIfindex, 100}}
	configureTestVRIDs(f, d)
	err := d.Apply([]lvs.Service{
		tcpService(svcVIP4, 80, dest(rs1, 80, 1), dest(rs2, 80, 1)),
		udpService(svcVIP4, 53, dest(rs3, 53, 1)),
		tcpService(svcVIP6, 443, dest(rs6, 443, 1)),
		tcpService(svcVIP4, 82, tunDest(tunRS4, 82, lvs.TunnelGUE, lvs.TunnelCsum)),
		tcpService(svcVIP4, 86, tunDest(tunRS6, 86, lvs.TunnelGRE, lvs.TunnelCsum)),
		tcpService(svcVIP6, 81, tunDest(tunRS4, 81, lvs.TunnelIPIP, "")),
		udpService(fragVIP6, 53, tunDest(tunRS6, 53, lvs.TunnelGUE, "")),
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range []netip.Addr{svcVIP4, svcVIP6, fragVIP6} {
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
		packet.TCPFrame(lbMAC, clientMAC, c4, netip.AddrPortFrom(svcVIP4, 82), packet.ACK, make([]byte, 33)),
		packet.TCPFrame(lbMAC, clientMAC, c4, netip.AddrPortFrom(svcVIP4, 86), packet.ACK, make([]byte, 1400)),
		vlanTagged(packet.TCPFrame(lbMAC, clientMAC, c6, netip.AddrPortFrom(svcVIP6, 81), packet.ACK, make([]byte, 1400)), 0x8100, 7),
		withExt6(packet.UDPFrame(lbMAC, clientMAC, c6, netip.AddrPortFrom(fragVIP6, 53), make([]byte, 99)), fragExt(9, true, 4)),
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
			inIP := in[min(len(in), 14+tagsLen(in)):]
			switch {
			case macOwner(out[0:6]).IsValid():
				if !bytes.Equal(out[6:12], lbMAC) || !bytes.Equal(out[12+tagsLen(out):], in[12+tagsLen(in):]) {
					t.Fatalf("forwarded frame changed past its Ethernet header and tags, or not from this MAC:\n in % x\nout % x", in, out)
				}
			case bytes.Equal(out[0:6], routerMAC) && bytes.Equal(out[6:12], lbMAC) && isEncapsulation(out, inIP):
			case bytes.Equal(out[0:6], in[6:12]) && bytes.Equal(out[6:12], in[0:6]):
				l2 := 14 + tagsLen(out)
				hdr := 28
				if len(out) > l2 && out[l2]>>4 == 6 {
					hdr = 48
				}
				if len(out) < l2+hdr || !bytes.HasPrefix(inIP, out[l2+hdr:]) {
					t.Fatalf("too-big answer does not quote the IP packet's start:\n in % x\nout % x", in, out)
				}
			default:
				t.Fatalf("forwarded from % x to % x: not this MAC to a real server's, an encapsulation to the router, or an answer to the sender:\n in % x\nout % x", out[6:12], out[0:6], in, out)
			}
		default:
			t.Fatalf("verdict %d (%s)", v, verdictNames[v])
		}
	})
}

// isEncapsulation says whether out ends with the IP packet at the start
// of inIP (by its header's length).
func isEncapsulation(out, inIP []byte) bool {
	p := headerLenPacket(inIP)
	return p != nil && bytes.HasSuffix(out, p)
}

// headerLenPacket is the IP packet at the start of b by its header's
// length field, nil when b is shorter or not IP.
func headerLenPacket(b []byte) []byte {
	n := 0
	switch {
	case len(b) >= packet.IPv4Len && b[0]>>4 == 4:
		n = int(binary.BigEndian.Uint16(b[2:4]))
	case len(b) >= packet.IPv6Len && b[0]>>4 == 6:
		n = packet.IPv6Len + int(binary.BigEndian.Uint16(b[4:6]))
	default:
		return nil
	}
	if n > len(b) {
		return nil
	}
	return b[:n]
}
