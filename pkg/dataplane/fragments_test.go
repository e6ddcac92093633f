package dataplane

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

var (
	fragVIP4  = netip.MustParseAddr("192.0.2.110") // one UDP service: fragments by frag_services
	sharedVIP = netip.MustParseAddr("192.0.2.111") // two UDP services: fragments to the kernel
	fragVIP6  = netip.MustParseAddr("2001:db8::110")
)

func udpService(vip netip.Addr, port uint16, dests ...lvs.Dest) lvs.Service {
	return lvs.Service{Key: lvs.ServiceKey{Proto: lvs.ProtoUDP, Addr: vip, Port: port}, Scheduler: "rr", Dests: dests}
}

// fragmentDataplane has the fragment fixtures' services, all active.
func fragmentDataplane(t *testing.T) *Dataplane {
	t.Helper()
	d := newTestDataplane(t, 251, testResolver())
	err := d.Apply([]lvs.Service{
		udpService(fragVIP4, 53, dest(rs1, 53, 1), dest(rs2, 53, 1), dest(rs3, 53, 1)),
		tcpService(fragVIP4, 80, dest(rs1, 80, 1)),
		udpService(sharedVIP, 53, dest(rs1, 53, 1)),
		udpService(sharedVIP, 54, dest(rs2, 54, 1)),
		udpService(fragVIP6, 53, dest(rs6, 53, 1)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []netip.Addr{fragVIP4, sharedVIP, fragVIP6} {
		if err := d.SetVIPActive(v, true); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// wantForwarded checks a DR verdict: out is in with only the MACs
// rewritten, every checksum verifies; it returns the real server.
func wantForwarded(t *testing.T, d *Dataplane, in []byte) netip.Addr {
	t.Helper()
	before := counters(t, d)
	v, out := run(t, d, in)
	if v != xdpTX {
		t.Fatalf("verdict %s, want TX", verdictNames[v])
	}
	out = out[:len(in)]
	rs := macOwner(out[0:6])
	if !rs.IsValid() || !bytes.Equal(out[6:12], lbMAC) || !bytes.Equal(out[12:], in[12:]) {
		t.Fatalf("output is not the input with the MACs rewritten:\n got % x\nwant ?? % x % x", out, []byte(lbMAC), in[12:])
	}
	checkFrame(t, out)
	if delta := counterDelta(before, counters(t, d)); fmt.Sprint(delta) != "map[fwd_tx:1]" {
		t.Errorf("counters changed by %v, want fwd_tx 1", delta)
	}
	return rs
}

func wantPassed(t *testing.T, d *Dataplane, in []byte) {
	t.Helper()
	v, out := run(t, d, in)
	if v != xdpPass || !bytes.Equal(out[:len(in)], in) {
		t.Fatalf("verdict %s (frame changed: %v), want PASS untouched", verdictNames[v], !bytes.Equal(out[:len(in)], in))
	}
}

// TestFragmentsGoToOneRealServer: every fragment of a datagram to a VIP,
// first (MF, offset 0), middle (MF, offset) and last (offset, no MF), in
// IPv4 and IPv6, goes to the same real server, whatever the "ports" of
// the later ones read as.
func TestFragmentsGoToOneRealServer(t *testing.T) {
	d := fragmentDataplane(t)
	payload := bytes.Repeat([]byte{0x5a}, 64)
	spread := map[netip.Addr]bool{}
	for c := range 12 {
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + c)}), 40000)
		whole := packet.UDPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(fragVIP4, 53), payload)
		id := uint16(0x1000 + c)
		kinds := []struct {
			name  string
			frame []byte
		}{
			{"first (MF, offset 0)", fragment4(whole, true, 0, id)},
			{"middle (MF, offset 9)", fragment4(whole, true, 9, id)},
			{"last (offset 18)", fragment4(whole, false, 18, id)},
		}
		var first netip.Addr
		for _, k := range kinds {
			t.Run(fmt.Sprintf("client %v %s", client.Addr(), k.name), func(t *testing.T) {
				rs := wantForwarded(t, d, k.frame)
				if !first.IsValid() {
					first = rs
				} else if rs != first {
					t.Errorf("went to %v, the first fragment to %v", rs, first)
				}
			})
		}
		spread[first] = true
	}
	if len(spread) < 2 {
		t.Errorf("12 clients' fragments all went to %v: the hash does not spread them", spread)
	}

	client6 := netip.MustParseAddrPort("[2001:db8:1::7]:40000")
	whole6 := packet.UDPFrame(lbMAC, clientMAC, client6, netip.AddrPortFrom(fragVIP6, 53), payload)
	for _, k := range []struct {
		name string
		ext  ext6
	}{
		{"IPv6 first (M, offset 0)", fragExt(0, true, 7)},
		{"IPv6 middle (M, offset 9)", fragExt(9, true, 7)},
		{"IPv6 last (offset 18)", fragExt(18, false, 7)},
		{"IPv6 atomic fragment (offset 0, no M): a whole datagram", fragExt(0, false, 8)},
	} {
		t.Run(k.name, func(t *testing.T) {
			if rs := wantForwarded(t, d, withExt6(whole6, k.ext)); rs != rs6 {
				t.Errorf("went to %v, want %v", rs, rs6)
			}
		})
	}
}

// TestFragmentsWithoutOneServiceGoToTheKernel: a VIP with two UDP
// services cannot tell its fragments apart: the kernel gets them (and an
// inactive VIP's, as always); its whole datagrams are still forwarded.
func TestFragmentsWithoutOneServiceGoToTheKernel(t *testing.T) {
	d := fragmentDataplane(t)
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	whole := packet.UDPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(sharedVIP, 53), make([]byte, 64))
	wantForwarded(t, d, whole)
	for _, f := range [][]byte{fragment4(whole, true, 0, 1), fragment4(whole, false, 9, 1)} {
		wantPassed(t, d, f)
	}
	// TCP to fragVIP4 has its own (VIP, TCP) entry; an address without
	// services has none.
	tcp := packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(fragVIP4, 80), packet.ACK, make([]byte, 64))
	if rs := wantForwarded(t, d, fragment4(tcp, false, 9, 2)); rs != rs1 {
		t.Errorf("TCP fragment went to %v, want %v", rs, rs1)
	}
	noSvc := packet.UDPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 53), make([]byte, 64))
	wantPassed(t, d, fragment4(noSvc, true, 0, 3))

	if err := d.SetVIPActive(fragVIP4, false); err != nil {
		t.Fatal(err)
	}
	wantPassed(t, d, fragment4(packet.UDPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(fragVIP4, 53), make([]byte, 64)), true, 9, 4))

	// Removing the second service gives the VIP its fragment entry.
	if err := d.Apply([]lvs.Service{udpService(sharedVIP, 53, dest(rs1, 53, 1))}); err != nil {
		t.Fatal(err)
	}
	if rs := wantForwarded(t, d, fragment4(whole, false, 9, 5)); rs != rs1 {
		t.Errorf("fragment went to %v, want %v", rs, rs1)
	}
	var n int
	it := d.objs.FragServices.Iterate()
	var k xdpvipFragKey
	var v xdpvipSvcValue
	for it.Next(&k, &v) {
		n++
	}
	if n != 1 {
		t.Errorf("frag_services holds %d entries after the Apply, want 1", n)
	}
}
