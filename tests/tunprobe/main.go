// Command tunprobe is the TUN guest test's packet tool (tests/xdp_tun_vm_test.go):
//
//	tunprobe send -mode ipip|gue|ip6ip6 -to RS [-port 6080] -src CLIENT -dst VIP -dport 80 -sport N
//
// sends one TCP SYN from CLIENT:N to VIP:80, encapsulated towards the real
// server RS as a TUN director would (the kernel builds the outer header
// and routes it): IP-in-IP, GUE (UDP to -port, a 4-byte GUE header) or
// IPv6-in-IPv6. The real server decapsulates it and answers CLIENT
// directly with a SYN-ACK from VIP.
//
//	tunprobe sniff -i IFACE -from VIP:80,[VIP6]:8080 -for 5s [-ready FILE]
//
// prints one line per TCP segment from one of the -from addresses and
// ports seen on IFACE (an AF_PACKET socket):
// "seg src=VIP:80 dst=ADDR:PORT mac=SRC-MAC flags=SA". With -tunnels it
// prints the tunnelled packets too (IP-in-IP, IPv6-in-IPv6, IPv4-in-IPv6,
// UDP to the -gue port): "tun kind=ipip src=OUTER-SRC dst=OUTER-DST
// mac=SRC-MAC len=N" (N the outer packet's length).
// It creates FILE once listening, and stops after -for.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tunprobe send|sniff [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "send":
		err = send(os.Args[2:])
	case "sniff":
		err = sniff(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunprobe:", err)
		os.Exit(1)
	}
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	mode := fs.String("mode", "ipip", "ipip, gue or ip6ip6")
	to := fs.String("to", "", "the real server (outer destination)")
	port := fs.Int("port", 6080, "GUE's UDP port")
	src := fs.String("src", "", "inner source (the client)")
	dst := fs.String("dst", "", "inner destination (the VIP)")
	dport := fs.Int("dport", 80, "inner TCP destination port")
	sport := fs.Int("sport", 40000, "inner TCP source port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs, err := netip.ParseAddr(*to)
	if err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	s, err := netip.ParseAddr(*src)
	if err != nil {
		return fmt.Errorf("-src: %w", err)
	}
	d, err := netip.ParseAddr(*dst)
	if err != nil {
		return fmt.Errorf("-dst: %w", err)
	}
	if s.Is4() != d.Is4() {
		return errors.New("-src and -dst are of different families")
	}
	inner := synPacket(s, d, uint16(*sport), uint16(*dport))
	switch *mode {
	case "ipip", "ip6ip6":
		network := "ip4:4" // IPPROTO_IPIP
		if *mode == "ip6ip6" {
			network = "ip6:41" // IPPROTO_IPV6
		}
		c, err := net.ListenPacket(network, "")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteTo(inner, &net.IPAddr{IP: rs.AsSlice()})
		return err
	case "gue":
		proto := byte(unix.IPPROTO_IPIP)
		if s.Is6() {
			proto = unix.IPPROTO_IPV6
		}
		// GUE version 0, no options (hlen 0), proto_ctype = the inner protocol.
		payload := append([]byte{0, proto, 0, 0}, inner...)
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(rs, uint16(*port))))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	}
	return fmt.Errorf("-mode %q: want ipip, gue or ip6ip6", *mode)
}

// synPacket is an IPv4 or IPv6 packet carrying a TCP SYN (with an MSS
// option), checksums filled in.
func synPacket(src, dst netip.Addr, sport, dport uint16) []byte {
	tcp := make([]byte, 24)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], 0x10203040) // sequence number
	tcp[12] = 6 << 4                                // data offset: 6 words
	tcp[13] = 0x02                                  // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)     // window
	copy(tcp[20:], []byte{2, 4, 0x05, 0x78})        // MSS 1400
	var pseudo []byte
	pseudo = append(pseudo, src.AsSlice()...)
	pseudo = append(pseudo, dst.AsSlice()...)
	pseudo = append(pseudo, 0, unix.IPPROTO_TCP, 0, byte(len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], checksum(append(pseudo, tcp...)))
	if src.Is4() {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		ip[8] = 64
		ip[9] = unix.IPPROTO_TCP
		copy(ip[12:], src.AsSlice())
		copy(ip[16:], dst.AsSlice())
		binary.BigEndian.PutUint16(ip[10:], checksum(ip))
		return append(ip, tcp...)
	}
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
	ip[6] = unix.IPPROTO_TCP
	ip[7] = 64
	copy(ip[8:], src.AsSlice())
	copy(ip[24:], dst.AsSlice())
	return append(ip, tcp...)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func sniff(args []string) error {
	fs := flag.NewFlagSet("sniff", flag.ContinueOnError)
	iface := fs.String("i", "eth0", "interface")
	from := fs.String("from", "", "comma-separated source addresses and ports of the segments to print")
	dur := fs.Duration("for", 5*time.Second, "how long to listen")
	ready := fs.String("ready", "", "file created once listening")
	tunnels := fs.Bool("tunnels", false, "print tunnelled packets too")
	guePort := fs.Int("gue", 6080, "with -tunnels: GUE's UDP port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want := map[netip.AddrPort]bool{}
	for _, f := range strings.Split(*from, ",") {
		ap, err := netip.ParseAddrPort(f)
		if err != nil {
			return fmt.Errorf("-from: %w", err)
		}
		want[ap] = true
	}
	ifi, err := net.InterfaceByName(*iface)
	if err != nil {
		return err
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return err
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o644); err != nil {
			return err
		}
	}
	buf := make([]byte, 65536)
	end := time.Now().Add(*dur)
	for time.Now().Before(end) {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if line, ok := describe(buf[:n], want); ok {
			fmt.Println(line)
		} else if line, ok := describeTunnel(buf[:n], uint16(*guePort)); ok && *tunnels {
			fmt.Println(line)
		}
	}
	return nil
}

// describe is the line for an Ethernet frame carrying a TCP segment from
// one of want, if it is one.
func describe(f []byte, want map[netip.AddrPort]bool) (string, bool) {
	if len(f) < 14 {
		return "", false
	}
	mac := net.HardwareAddr(f[6:12])
	var src, dst netip.Addr
	var l4 []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case unix.ETH_P_IP:
		ip := f[14:]
		if len(ip) < 20 || ip[9] != unix.IPPROTO_TCP {
			return "", false
		}
		hl := int(ip[0]&0x0f) * 4
		if len(ip) < hl+20 {
			return "", false
		}
		src, _ = netip.AddrFromSlice(ip[12:16])
		dst, _ = netip.AddrFromSlice(ip[16:20])
		l4 = ip[hl:]
	case unix.ETH_P_IPV6:
		ip := f[14:]
		if len(ip) < 60 || ip[6] != unix.IPPROTO_TCP {
			return "", false
		}
		src, _ = netip.AddrFromSlice(ip[8:24])
		dst, _ = netip.AddrFromSlice(ip[24:40])
		l4 = ip[40:]
	default:
		return "", false
	}
	from := netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:]))
	if !want[from] {
		return "", false
	}
	flags := ""
	for i, name := range []string{"F", "S", "R", "P", "A"} {
		if l4[13]&(1<<i) != 0 {
			flags += name
		}
	}
	return fmt.Sprintf("seg src=%v dst=%v mac=%v flags=%s",
		from, netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:])), mac, flags), true
}

// describeTunnel is the line for an Ethernet frame carrying a tunnelled
// packet, if it is one.
func describeTunnel(f []byte, guePort uint16) (string, bool) {
	if len(f) < 14 {
		return "", false
	}
	mac := net.HardwareAddr(f[6:12])
	ip := f[14:]
	var src, dst netip.Addr
	var proto byte
	var l4 []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case unix.ETH_P_IP:
		if len(ip) < 20 {
			return "", false
		}
		hl := int(ip[0]&0x0f) * 4
		src, _ = netip.AddrFromSlice(ip[12:16])
		dst, _ = netip.AddrFromSlice(ip[16:20])
		proto, l4 = ip[9], ip[min(hl, len(ip)):]
	case unix.ETH_P_IPV6:
		if len(ip) < 40 {
			return "", false
		}
		src, _ = netip.AddrFromSlice(ip[8:24])
		dst, _ = netip.AddrFromSlice(ip[24:40])
		proto, l4 = ip[6], ip[40:]
	default:
		return "", false
	}
	kind := ""
	switch {
	case proto == unix.IPPROTO_IPIP:
		kind = "ipip"
	case proto == unix.IPPROTO_IPV6:
		kind = "ip6ip6"
	case proto == unix.IPPROTO_UDP && len(l4) >= 8 && binary.BigEndian.Uint16(l4[2:]) == guePort:
		kind = "gue"
	default:
		return "", false
	}
	if src.Is6() && kind == "ipip" {
		kind = "ipip6"
	}
	return fmt.Sprintf("tun kind=%s src=%v dst=%v mac=%v len=%d", kind, src, dst, mac, len(ip)), true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
