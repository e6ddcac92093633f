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
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
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
	na   int // raw ICMPv6 socket, -1 when the interface has no link-local address
	naE  error
}

// dropAll is a socket filter that accepts nothing: the ARP socket only sends.
var dropAll = []bpf.RawInstruction{{Op: 0x06, K: 0}} // BPF_RET|BPF_K 0

// OpenAnnouncer opens the packet socket for ARP and, if the interface has
// an IPv6 link-local address, the ICMPv6 socket for NDP. Both sockets name
// the interface by index, so they keep working from any goroutine, whatever
// namespace its thread is in.
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
	pc, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, fmt.Errorf("netif: ARP socket on %s: %w", cfg.Iface, err)
	}
	a := &Announcer{ifi: ifi, mac: mac, form: cfg.ARP, arp: pc, na: -1}
	a.na, a.naE = openNASocket(ifi)
	return a, nil
}

// openNASocket opens a send-only raw ICMPv6 socket bound to the
// interface's link-local address, hop limit 255 (RFC 4861 §7.1.2). The
// kernel fills in the ICMPv6 checksum. mdlayher/ndp's own Conn is not used
// for sending because it names the interface by zone name, which resolves
// in the sending thread's namespace.
func openNASocket(ifi *net.Interface) (int, error) {
	ll, err := linkLocal(ifi)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return -1, fmt.Errorf("netif: ICMPv6 socket: %w", err)
	}
	block := unix.ICMPv6Filter{}
	for i := range block.Data {
		block.Data[i] = 0xffffffff
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{"ICMP6_FILTER", func() error { return unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &block) }},
		{"SO_BINDTODEVICE", func() error { return unix.BindToDevice(fd, ifi.Name) }},
		{"IPV6_MULTICAST_IF", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index) }},
		{"IPV6_MULTICAST_HOPS", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255) }},
		{"IPV6_UNICAST_HOPS", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 255) }},
		{"IPV6_MULTICAST_LOOP", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0) }},
		{"bind " + ll.String(), func() error {
			return unix.Bind(fd, &unix.SockaddrInet6{Addr: ll.As16(), ZoneId: uint32(ifi.Index)})
		}},
	}
	for _, s := range steps {
		if err := s.f(); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("netif: NA socket on %s: %s: %w", ifi.Name, s.name, err)
		}
	}
	return fd, nil
}

func linkLocal(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netif: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: %s", ErrNoIPv6, ifi.Name)
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
		return a.sendNA(vip)
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

func (a *Announcer) sendNA(vip netip.Addr) error {
	if a.na < 0 {
		return a.naE
	}
	b, err := ndp.MarshalMessage(naMessage(a.mac, vip))
	if err != nil {
		return fmt.Errorf("netif: neighbour advertisement for %s: %w", vip, err)
	}
	dst := &unix.SockaddrInet6{Addr: allNodes.As16(), ZoneId: uint32(a.ifi.Index)}
	if err := unix.Sendto(a.na, b, 0, dst); err != nil {
		return fmt.Errorf("netif: neighbour advertisement for %s on %s: %w", vip, a.ifi.Name, err)
	}
	return nil
}

// Close closes the sockets.
func (a *Announcer) Close() error {
	err := a.arp.Close()
	if a.na >= 0 {
		err = errors.Join(err, unix.Close(a.na))
		a.na = -1
	}
	return err
}
