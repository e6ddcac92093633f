package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
)

// ARPForm selects the gratuitous ARP packet sent for an IPv4 VIP.
type ARPForm int

const (
	// ARPRequest is what keepalived sends: an ARP request, broadcast, with
	// sender = target = VIP, sender MAC ours, target MAC broadcast.
	ARPRequest ARPForm = iota
	// ARPReply is the reply form (as `arping -A`): same fields, opcode reply.
	ARPReply
	// ARPBoth sends the request then the reply.
	ARPBoth
)

// allNodes is where unsolicited neighbour advertisements go (RFC 4861 §7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

var (
	// ErrNoIPv6 means the interface cannot send neighbour advertisements
	// (no IPv6 link-local address).
	ErrNoIPv6 = errors.New("netif: interface has no IPv6 link-local address")
	// ErrBadMAC means a hardware address that is not 6 bytes.
	ErrBadMAC = errors.New("netif: MAC address must be 6 bytes")
)

// AnnouncerConfig says where and how VIPs are announced.
type AnnouncerConfig struct {
	// Iface is the interface the VIPs live on (the VMAC interface with use_vmac).
	Iface string
	// MAC is announced for the VIPs and is the Ethernet source of GARPs;
	// nil means the interface's own MAC.
	MAC net.HardwareAddr
	// ARP picks the gratuitous ARP form (default ARPRequest).
	ARP ARPForm
}

// Announcer sends gratuitous ARPs for IPv4 VIPs and unsolicited neighbour
// advertisements for IPv6 VIPs on one interface. Open it in the namespace
// of the interface; afterwards it may be used from any goroutine, one call
// at a time.
type Announcer struct {
	ifi  *net.Interface
	mac  net.HardwareAddr
	form ARPForm
	arp  *packet.Conn
	ndp  *ndp.Conn
	ndpE error
}

// OpenAnnouncer opens the packet socket for ARP and, if the interface has
// an IPv6 link-local address, the ICMPv6 socket for NDP.
func OpenAnnouncer(cfg AnnouncerConfig) (*Announcer, error) {
	ifi, err := net.InterfaceByName(cfg.Iface)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoLink, cfg.Iface, err)
	}
	mac := cfg.MAC
	if mac == nil {
		mac = ifi.HardwareAddr
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("%w: %q on %s", ErrBadMAC, mac, cfg.Iface)
	}
	if cfg.ARP < ARPRequest || cfg.ARP > ARPBoth {
		return nil, fmt.Errorf("netif: unknown ARP form %d", cfg.ARP)
	}
	pc, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		return nil, fmt.Errorf("netif: ARP socket on %s: %w", cfg.Iface, err)
	}
	a := &Announcer{ifi: ifi, mac: mac, form: cfg.ARP, arp: pc}
	if c, _, err := ndp.Listen(ifi, ndp.LinkLocal); err != nil {
		a.ndpE = fmt.Errorf("%w: %s: %w", ErrNoIPv6, cfg.Iface, err)
	} else {
		a.ndp = c
	}
	return a, nil
}

// MAC is the hardware address announced.
func (a *Announcer) MAC() net.HardwareAddr { return a.mac }

// Announce sends one announcement for vip: gratuitous ARP (in the
// configured form) for IPv4, an unsolicited neighbour advertisement with
// the override flag to ff02::1 for IPv6.
func (a *Announcer) Announce(vip netip.Addr) error {
	vip = vip.Unmap()
	switch {
	case vip.Is4():
		return a.garp(vip)
	case vip.Is6():
		return a.na(vip)
	}
	return fmt.Errorf("%w: %v", ErrBadVIP, vip)
}

func (a *Announcer) garp(vip netip.Addr) error {
	var ops []arp.Operation
	switch a.form {
	case ARPRequest:
		ops = []arp.Operation{arp.OperationRequest}
	case ARPReply:
		ops = []arp.Operation{arp.OperationReply}
	case ARPBoth:
		ops = []arp.Operation{arp.OperationRequest, arp.OperationReply}
	}
	for _, op := range ops {
		frame, err := garpFrame(op, a.mac, vip)
		if err != nil {
			return err
		}
		if _, err := a.arp.WriteTo(frame, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
			return fmt.Errorf("netif: gratuitous ARP for %s on %s: %w", vip, a.ifi.Name, err)
		}
	}
	return nil
}

// garpFrame builds the Ethernet frame of a gratuitous ARP: broadcast, from
// mac, sender = target = vip, target MAC broadcast.
func garpFrame(op arp.Operation, mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	p, err := arp.NewPacket(op, mac, vip, ethernet.Broadcast, vip)
	if err != nil {
		return nil, fmt.Errorf("netif: ARP packet for %s: %w", vip, err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("netif: ARP packet for %s: %w", vip, err)
	}
	f := &ethernet.Frame{
		Destination: ethernet.Broadcast,
		Source:      mac,
		EtherType:   ethernet.EtherTypeARP,
		Payload:     pb,
	}
	return f.MarshalBinary()
}

// naMessage is the unsolicited neighbour advertisement for vip.
func naMessage(mac net.HardwareAddr, vip netip.Addr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac},
		},
	}
}

func (a *Announcer) na(vip netip.Addr) error {
	if a.ndp == nil {
		return a.ndpE
	}
	if err := a.ndp.WriteTo(naMessage(a.mac, vip), nil, allNodes); err != nil {
		return fmt.Errorf("netif: neighbour advertisement for %s on %s: %w", vip, a.ifi.Name, err)
	}
	return nil
}

// Close closes the sockets.
func (a *Announcer) Close() error {
	err := a.arp.Close()
	if a.ndp != nil {
		err = errors.Join(err, a.ndp.Close())
	}
	return err
}
