package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ClaimKind says how a host on the LAN claimed an address.
type ClaimKind string

// The claims a ClaimListener reports.
const (
	// ClaimGARP is a gratuitous ARP request (sender IP = target IP).
	ClaimGARP ClaimKind = "garp"
	// ClaimARPReply is an ARP reply (gratuitous or answering a request).
	ClaimARPReply ClaimKind = "arp-reply"
	// ClaimARPRequest is an ARP request sent from the address.
	ClaimARPRequest ClaimKind = "arp-request"
	// ClaimNA is an IPv6 neighbour advertisement for the address.
	ClaimNA ClaimKind = "na"
)

// Claim is one frame that tells the LAN which MAC has an address: the
// sender of an ARP packet, the target of a neighbour advertisement.
type Claim struct {
	Kind ClaimKind
	Addr netip.Addr
	// MAC is the hardware address claimed for Addr: the ARP sender MAC,
	// the NA's target link-layer address option (else its Ethernet source).
	MAC net.HardwareAddr
}

// ErrNotClaim means a frame that is not an ARP packet or a neighbour
// advertisement claiming an address.
var ErrNotClaim = errors.New("netif: frame is not an ARP or NA claim")

// errARPProbe is an ARP probe (RFC 5227): it claims nothing.
var errARPProbe = fmt.Errorf("%w: ARP probe", ErrNotClaim)

// DecodeClaim decodes an Ethernet frame (VLAN tags allowed) carrying an ARP
// packet or an ICMPv6 neighbour advertisement. Frames of any other kind,
// and ARP probes (sender IP 0.0.0.0), are ErrNotClaim; truncated or
// malformed ones are errors wrapping ErrNotClaim.
func DecodeClaim(frame []byte) (Claim, error) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		return Claim{}, fmt.Errorf("%w: ethernet: %w", ErrNotClaim, err)
	}
	switch f.EtherType {
	case ethernet.EtherTypeARP:
		return decodeARPClaim(f.Payload)
	case ethernet.EtherTypeIPv6:
		return decodeNAClaim(f.Payload, f.Source)
	}
	return Claim{}, fmt.Errorf("%w: ethertype %v", ErrNotClaim, f.EtherType)
}

func decodeARPClaim(b []byte) (Claim, error) {
	// arp.Packet accepts any address lengths; only Ethernet/IPv4 claims
	// mean anything here, and the lengths are checked before it parses.
	if len(b) < 8 || b[4] != 6 || b[5] != 4 {
		return Claim{}, fmt.Errorf("%w: ARP packet is not Ethernet/IPv4", ErrNotClaim)
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(b); err != nil {
		return Claim{}, fmt.Errorf("%w: ARP: %w", ErrNotClaim, err)
	}
	if p.SenderIP.IsUnspecified() {
		return Claim{}, errARPProbe
	}
	c := Claim{Addr: p.SenderIP, MAC: p.SenderHardwareAddr}
	switch {
	case p.Operation == arp.OperationReply:
		c.Kind = ClaimARPReply
	case p.Operation == arp.OperationRequest && p.SenderIP == p.TargetIP:
		c.Kind = ClaimGARP
	case p.Operation == arp.OperationRequest:
		c.Kind = ClaimARPRequest
	default:
		return Claim{}, fmt.Errorf("%w: ARP operation %d", ErrNotClaim, p.Operation)
	}
	return c, nil
}

func decodeNAClaim(b []byte, src net.HardwareAddr) (Claim, error) {
	h, err := ipv6.ParseHeader(b)
	if err != nil {
		return Claim{}, fmt.Errorf("%w: IPv6: %w", ErrNotClaim, err)
	}
	if h.NextHeader != unix.IPPROTO_ICMPV6 {
		return Claim{}, fmt.Errorf("%w: IPv6 next header %d", ErrNotClaim, h.NextHeader)
	}
	body := b[ipv6.HeaderLen:]
	if h.PayloadLen < len(body) {
		body = body[:h.PayloadLen] // Ethernet padding
	}
	if len(body) == 0 || body[0] != byte(ipv6.ICMPTypeNeighborAdvertisement) {
		return Claim{}, fmt.Errorf("%w: not a neighbour advertisement", ErrNotClaim)
	}
	if h.HopLimit != 255 {
		// RFC 4861 §7.1.2: a valid NA has hop limit 255.
		return Claim{}, fmt.Errorf("%w: NA with hop limit %d", ErrNotClaim, h.HopLimit)
	}
	m, err := ndp.ParseMessage(body)
	if err != nil {
		return Claim{}, fmt.Errorf("%w: %w", ErrNotClaim, err)
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok {
		return Claim{}, fmt.Errorf("%w: not a neighbour advertisement", ErrNotClaim)
	}
	mac := src
	for _, o := range na.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
			mac = lla.Addr
		}
	}
	return Claim{Kind: ClaimNA, Addr: na.TargetAddress, MAC: mac}, nil
}

// claimFilter passes incoming ARP frames and ICMPv6 neighbour
// advertisements (next header right after the fixed IPv6 header), and
// drops frames this host sent (PACKET_OUTGOING): the listener is on
// ETH_P_ALL so it sees frames before a macvlan (VMAC) takes them.
var claimFilter = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 8},
	bpf.LoadAbsolute{Off: 12, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_ARP, SkipTrue: 5},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IPV6, SkipFalse: 5},
	bpf.LoadAbsolute{Off: 14 + 6, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_ICMPV6, SkipFalse: 3},
	bpf.LoadAbsolute{Off: 14 + ipv6.HeaderLen, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ipv6.ICMPTypeNeighborAdvertisement), SkipFalse: 1},
	bpf.RetConstant{Val: 256},
	bpf.RetConstant{Val: 0},
}

// ClaimListener reads the ARP packets and neighbour advertisements that
// arrive on one interface. Open it in the namespace of the interface.
type ClaimListener struct {
	ifi *net.Interface
	c   *packet.Conn
	buf []byte
	// closed is set by Close: mdlayher/packet reports a read on a closed
	// socket with an error of its own.
	closed atomic.Bool
}

// OpenClaimListener opens the packet socket on iface.
func OpenClaimListener(iface string) (*ClaimListener, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoLink, iface, err)
	}
	prog, err := bpf.Assemble(claimFilter)
	if err != nil {
		return nil, fmt.Errorf("netif: claim filter: %w", err)
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: prog})
	if err != nil {
		return nil, fmt.Errorf("netif: ARP/NA listener on %s: %w", iface, err)
	}
	return &ClaimListener{ifi: ifi, c: c, buf: make([]byte, 512)}, nil
}

// MAC is the interface's own hardware address.
func (l *ClaimListener) MAC() net.HardwareAddr { return l.ifi.HardwareAddr }

// ReadClaim blocks until a frame arrives and decodes it. ARP probes are
// skipped; a frame the filter passed that does not decode is an error
// wrapping ErrNotClaim (count it and read on). It returns net.ErrClosed
// once Close was called.
func (l *ClaimListener) ReadClaim() (Claim, error) {
	for {
		n, _, err := l.c.ReadFrom(l.buf)
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return Claim{}, net.ErrClosed
			}
			return Claim{}, fmt.Errorf("netif: reading ARP/NA on %s: %w", l.ifi.Name, err)
		}
		c, err := DecodeClaim(l.buf[:n])
		if errors.Is(err, errARPProbe) {
			continue
		}
		return c, err
	}
}

// Close closes the socket; a blocked ReadClaim returns.
func (l *ClaimListener) Close() error {
	l.closed.Store(true)
	return l.c.Close()
}
