package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// LVS-TUN in XDP: a TUN real server's frames are encapsulated by the
// program (IP-in-IP, GUE or GRE, struct real.tun_type) towards the next
// hop the kernel would use for the real server's address; the outer
// family is the real server's, the inner the service's (all four mixes,
// as IPVS does).

// Tunnel types and flags of struct real (enum tun_type, enum real_flag).
const (
	tunNone = uint8(xdpvipTunTypeTUN_NONE)
	tunIPIP = uint8(xdpvipTunTypeTUN_IPIP)
	tunGUE  = uint8(xdpvipTunTypeTUN_GUE)
	tunGRE  = uint8(xdpvipTunTypeTUN_GRE)

	realTunCsum = uint8(xdpvipRealFlagREAL_F_TUN_CSUM)
)

// Header lengths of the encapsulation and the smallest MTU each inner
// family accepts (the program's IPV4_MIN_MTU, IPV6_MIN_MTU).
const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	gueHeaderLen  = 4
	greHeaderLen  = 4 // 8 with the checksum
	minMTU4       = 68
	minMTU6       = 1280
	maxRealMTU    = 0xffff // struct real.mtu is 16 bits
)

// errTunnelMTU: the path to a TUN real server leaves too little room for
// the inner packet.
var errTunnelMTU = errors.New("path MTU too small for the tunnel")

// realTunnel is how the program reaches one real server: DR (tunNone), or
// a tunnel type with its flags and GUE port.
type realTunnel struct {
	typ   uint8
	flags uint8
	port  uint16 // GUE destination port (host order)
}

// forwarding classifies a real server: its tunnel, or why XDP cannot
// forward to it (NAT, remcsum, GUE without a port), "" when it can.
func forwarding(dst lvs.Dest) (realTunnel, string) {
	switch {
	case dst.Method == "" || strings.EqualFold(dst.Method, "DR"):
		return realTunnel{typ: tunNone}, ""
	case !strings.EqualFold(dst.Method, "TUN"):
		return realTunnel{}, "only DR and TUN real servers"
	}
	var t realTunnel
	switch dst.Tunnel.Csum {
	case "", lvs.TunnelNoCsum:
	case lvs.TunnelCsum:
		t.flags = realTunCsum
	case lvs.TunnelRemCsum:
		return realTunnel{}, "remcsum (remote checksum offload) is not done in XDP"
	default:
		return realTunnel{}, fmt.Sprintf("unknown tunnel checksum option %q", dst.Tunnel.Csum)
	}
	switch dst.Tunnel.Type {
	case "", lvs.TunnelIPIP:
		t.typ, t.flags = tunIPIP, 0 // IP-in-IP has no checksum of its own
	case lvs.TunnelGUE:
		if dst.Tunnel.Port == 0 {
			return realTunnel{}, "GUE tunnel without a port"
		}
		t.typ, t.port = tunGUE, dst.Tunnel.Port
	case lvs.TunnelGRE:
		t.typ = tunGRE
	default:
		return realTunnel{}, fmt.Sprintf("unknown tunnel type %q", dst.Tunnel.Type)
	}
	return t, ""
}

// overhead is what the encapsulation adds to a packet for a real server
// of family outer.
func (t realTunnel) overhead(outer uint8) int {
	n := ipv4HeaderLen
	if outer == 6 {
		n = ipv6HeaderLen
	}
	switch t.typ {
	case tunGUE:
		n += udpHeaderLen + gueHeaderLen
	case tunGRE:
		n += greHeaderLen
		if t.flags&realTunCsum != 0 {
			n += greHeaderLen
		}
	}
	return n
}

// resolveTunnel fills r (whose address and family are the real server's)
// for tunnel t from the route towards it; inner is the service's family.
// It fails when there is no route or no neighbour entry for its next hop
// yet, no source address of the real server's family, or a path MTU
// leaving less than the inner family's minimum MTU.
func (s *lvsState) resolveTunnel(r *xdpvipReal, addr netip.Addr, t realTunnel, inner uint8) error {
	nh, err := s.resolve.LookupNextHop(addr)
	if err != nil {
		return err
	}
	src := nh.Src.Unmap()
	if !src.IsValid() || family(src) != family(addr) {
		return fmt.Errorf("no IPv%d source address towards %v for the tunnel", family(addr), addr)
	}
	if len(nh.MAC) != len(r.Mac) {
		return fmt.Errorf("next hop of %v has no Ethernet address (%v)", addr, nh.MAC)
	}
	mtu := min(nh.MTU, maxRealMTU)
	room, floor := mtu-t.overhead(family(addr)), minMTU4
	if inner == 6 {
		floor = minMTU6
	}
	if room < floor {
		return fmt.Errorf("%w: %v: MTU %d leaves %d bytes for IPv%d packets, below %d", errTunnelMTU, addr, nh.MTU, room, inner, floor)
	}
	copy(r.Mac[:], nh.MAC)
	r.Ifindex, r.Vlan = s.egress(nh.Ifindex)
	r.TunType, r.TunPort = t.typ, htons(t.port)
	r.Flags = realValid | t.flags
	r.TunSrc = addr16(src)
	r.Mtu = uint16(mtu)
	return nil
}
