package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// TestTunnelOverTheWire: client, load balancer, router and real server on
// one bridge, in two subnets: the client and the load balancer in
// 10.91.1.0/24 and 2001:db8:91:1::/64, the real server in 10.91.2.0/24 and
// 2001:db8:91:2::/64, reached through the router (which has both). The
// program on the load balancer encapsulates the client's TCP to the VIPs
// towards the router's MAC; the real server decapsulates (tunl0 for
// IP-in-IP, an ip6tnl device for IPv4 and IPv6 in IPv6, fou GUE ports
// (IPv4 and IPv6) into those, gre0 for GRE, a GRE device with icsum for GRE
// with checksums), has the
// VIPs on lo and answers the client directly through the router. Each
// connection sends 6000 bytes: the full-size segments do not fit the
// tunnel, so the client's stack must take the program's ICMP (ICMPv6)
// "too big", lower its path MTU and resend, or the byte count never
// comes back.
//
// Needs the ipip, ip6_tunnel, fou, fou6 and ip_gre modules: run in the qemu guests
// (tests/bpf_vm_test.go); this host's kernel has none.
func TestTunnelOverTheWire(t *testing.T) {
	requireBPF(t)
	n := testnet.New(t)
	client := n.AddHost("client", "10.91.1.50/24", testnet.WithAddr("2001:db8:91:1::50/64"))
	lb := n.AddHost("lb", "10.91.1.11/24", testnet.WithAddr("2001:db8:91:1::11/64"))
	router := n.AddHost("router", "10.91.1.1/24", testnet.WithAddr("10.91.2.1/24"), testnet.WithAddr("2001:db8:91:1::1/64"), testnet.WithAddr("2001:db8:91:2::1/64"))
	rs := n.AddHost("rs", "10.91.2.21/24", testnet.WithAddr("10.91.2.22/24"), testnet.WithAddr("2001:db8:91:2::21/64"))
	vip4, vip6 := netip.MustParseAddr("10.91.1.100"), netip.MustParseAddr("2001:db8:91:1::100")
	rs4, rs6 := netip.MustParseAddr("10.91.2.21"), netip.MustParseAddr("2001:db8:91:2::21")
	// The real server's second address ends GRE with checksums: the
	// kernel drops GRE whose checksum flag differs from the receiving
	// tunnel's icsum, and the fallback gre0 (for rs4) has none.
	rsGRECsum := netip.MustParseAddr("10.91.2.22")

	for _, dev := range []string{"tunl0", "gre0"} {
		if out, err := rs.Exec(context.Background(), "ip", "link", "set", dev, "up"); err != nil {
			t.Skipf("no %s in this kernel (the ipip and ip_gre modules; the qemu guest suite has them): %v: %s", dev, err, out)
		}
	}
	// IPv6 outside: one ip6tnl device for either family inside (the
	// fallback ip6tnl0 takes IPv6 in IPv6 only).
	if out, err := rs.Exec(context.Background(), "ip", "link", "add", "tun6", "type", "ip6tnl", "mode", "any", "local", rs6.String()); err != nil {
		t.Skipf("no ip6tnl devices in this kernel (the ip6_tunnel module; the qemu guest suite has it): %v: %s", err, out)
	}
	rs.MustExec("ip", "link", "set", "tun6", "up")
	for _, fou := range [][]string{{"gue"}, {"gue", "-6"}} {
		if out, err := rs.Exec(context.Background(), "ip", append([]string{"fou", "add", "port", strconv.Itoa(guePort)}, fou...)...); err != nil {
			t.Skipf("no GUE receive port %v (the fou and fou6 modules; the qemu guest suite has them): %v: %s", fou, err, out)
		}
	}
	rs.MustExec("ip", "link", "add", "grecsum", "type", "gre", "local", rsGRECsum.String(), "icsum")
	rs.MustExec("ip", "link", "set", "grecsum", "up")

	// One setting per sysctl call: the guest's busybox sysctl takes one.
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0"} {
		router.MustExec("sysctl", "-qw", kv)
	}
	client.MustExec("ip", "route", "add", "10.91.2.0/24", "via", "10.91.1.1")
	client.MustExec("ip", "-6", "route", "add", "2001:db8:91:2::/64", "via", "2001:db8:91:1::1")
	// The load balancer's routes name their source (the tunnels' outer
	// source): IPv6 source selection could otherwise pick the VIP, which
	// the real server has too.
	lb.MustExec("ip", "route", "add", "10.91.2.0/24", "via", "10.91.1.1", "src", "10.91.1.11")
	lb.MustExec("ip", "-6", "route", "add", "2001:db8:91:2::/64", "via", "2001:db8:91:1::1", "src", "2001:db8:91:1::11")
	rs.MustExec("ip", "route", "add", "default", "via", "10.91.2.1")
	rs.MustExec("ip", "-6", "route", "add", "default", "via", "2001:db8:91:2::1")
	// The real server: the VIPs on lo, never answering ARP for them on the
	// shared bridge, accepting decapsulated packets whose source is not
	// routed back through the tunnel.
	for _, kv := range []string{"all.arp_ignore=1", "all.arp_announce=2", "eth0.arp_ignore=1", "eth0.arp_announce=2",
		"all.rp_filter=0", "default.rp_filter=0", "eth0.rp_filter=0", "tunl0.rp_filter=0", "gre0.rp_filter=0", "grecsum.rp_filter=0", "tun6.rp_filter=0", "lo.rp_filter=0"} {
		rs.MustExec("sysctl", "-qw", "net.ipv4.conf."+kv)
	}
	rs.MustExec("ip", "addr", "add", vip4.String()+"/32", "dev", "lo")
	rs.MustExec("ip", "addr", "add", vip6.String()+"/128", "dev", "lo")
	// The load balancer owns the VIPs (ARP / NDP), as keepalived's VRRP
	// instance would.
	lb.MustExec("ip", "addr", "add", vip4.String()+"/32", "dev", lb.Iface())
	lb.MustExec("ip", "addr", "add", vip6.String()+"/128", "dev", lb.Iface(), "nodad", "preferred_lft", "0")
	// The client's checksums finished in software (a frame sent on with
	// XDP_TX loses CHECKSUM_PARTIAL; see TestVLANDirectRoutingOverTheWire).
	client.MustExec("ethtool", "-K", client.Iface(), "tx", "off")
	n.AttachSwitchPass(lb)

	// The server answers each connection with the number of bytes it read
	// up to the newline.
	count := func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%d\n", len(line))
	}
	for _, a := range []string{vip4.String() + ":80", vip4.String() + ":81", vip4.String() + ":82", vip4.String() + ":83", vip4.String() + ":84",
		"[" + vip6.String() + "]:80", "[" + vip6.String() + "]:81", "[" + vip6.String() + "]:82"} {
		rs.ServeTCP(t, a, count)
	}

	d := openIn(t, lb, Options{Iface: lb.Iface(), BPFDir: testBPFDir(t)})
	t.Cleanup(func() { d.Close(); Detach(filepath.Dir(d.pinDir), lb.Iface()) })
	// No pings first: the neighbour cache resolves the router in the
	// background when LookupNextHop asks, and the refresh then puts the
	// real servers in the tables. One real server has no route at all.
	noRoute := netip.MustParseAddr("10.99.0.1")
	gue := tunDest(rs4, 81, lvs.TunnelGUE, lvs.TunnelNoCsum)
	if err := d.Apply([]lvs.Service{
		tcpService(vip4, 80, tunDest(rs4, 80, lvs.TunnelIPIP, ""), tunDest(noRoute, 80, lvs.TunnelIPIP, "")),
		tcpService(vip4, 81, gue),
		tcpService(vip4, 82, tunDest(rs4, 82, lvs.TunnelGRE, "")),
		tcpService(vip4, 83, tunDest(rsGRECsum, 83, lvs.TunnelGRE, lvs.TunnelCsum)),
		tcpService(vip4, 84, tunDest(rs6, 84, lvs.TunnelIPIP, "")),
		tcpService(vip6, 80, tunDest(rs6, 80, lvs.TunnelIPIP, "")),
		tcpService(vip6, 81, tunDest(rs6, 81, lvs.TunnelGUE, lvs.TunnelCsum)),
		tcpService(vip6, 82, tunDest(rs6, 82, lvs.TunnelGUE, lvs.TunnelNoCsum)),
	}); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, 10*time.Second, func() error {
		if u := d.Unresolved(); len(u) != 1 || u[0] != noRoute {
			return fmt.Errorf("unresolved real servers %v, want only the unroutable %v", u, noRoute)
		}
		return nil
	})
	for _, v := range []netip.Addr{vip4, vip6} {
		if err := d.SetVIPActive(v, true); err != nil {
			t.Fatal(err)
		}
	}
	const size = 6000
	for _, tc := range []struct {
		name, network, addr string
		tooBig              string // the too-big counter it must raise ("": none due)
	}{
		// In order of a shrinking room (1480, 1476, 1472, 1468 bytes):
		// the client's path MTU for the VIP, learnt from the last one, is
		// too big for the next, so each must answer too big again.
		{"IP-in-IP", "tcp4", vip4.String() + ":80", "tun_icmp4_too_big"},
		{"GRE", "tcp4", vip4.String() + ":82", "tun_icmp4_too_big"},
		{"GRE with checksum", "tcp4", vip4.String() + ":83", "tun_icmp4_too_big"},
		{"GUE", "tcp4", vip4.String() + ":81", "tun_icmp4_too_big"},
		{"IPv4 in IPv6", "tcp4", vip4.String() + ":84", "tun_icmp4_too_big"}, // 1460
		{"IPv6 in IPv6", "tcp6", "[" + vip6.String() + "]:80", "tun_icmp6_too_big"},
		{"GUE over IPv6 with checksum", "tcp6", "[" + vip6.String() + "]:81", "tun_icmp6_too_big"}, // 1448
		// The same room: the client already knows it. A zero UDP
		// checksum over IPv6, as IPVS sends it: fou6 takes it.
		{"GUE over IPv6 without checksum", "tcp6", "[" + vip6.String() + "]:82", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counters(t, d)
			const conns = 5
			for i := range conns {
				err := client.Do(func() error {
					c, err := net.DialTimeout(tc.network, tc.addr, 3*time.Second)
					if err != nil {
						return fmt.Errorf("connection %d: %w", i, err)
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err := io.WriteString(c, strings.Repeat("x", size-1)+"\n"); err != nil {
						return fmt.Errorf("connection %d: write: %w", i, err)
					}
					line, err := bufio.NewReader(c).ReadString('\n')
					if err != nil || line != strconv.Itoa(size)+"\n" {
						return fmt.Errorf("connection %d: read %q, %v; want %d", i, line, err, size)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			delta := counterDelta(before, counters(t, d))
			// SYN, the data, ACKs and FIN: several frames per connection.
			if delta["fwd_tx"] < 3*conns || delta["fwd_redirect"] != 0 || delta["fwd_no_real"] != 0 || (tc.tooBig != "" && delta[tc.tooBig] == 0) {
				t.Errorf("counters changed by %v: want at least %d encapsulated with XDP_TX, and %q", delta, 3*conns, tc.tooBig)
			}
			t.Logf("counters changed by %v", delta)
		})
	}
}
