package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// TestVLANDirectRoutingOverTheWire: client, load balancer and real server
// talk on VLAN 100 over one bridge (tagged frames on the wire); the program
// is attached to the load balancer's parent interface, sees the client's
// tagged TCP to the VIP, and sends it to the real server (VIP on lo, DR)
// tagged, with XDP_TX; the real server answers the client directly.
// Needs the 8021q module and ethtool: run in the qemu guests
// (tests/bpf_vm_test.go); this host's kernel has no 8021q.
//
// On a bond: the same with the load balancer's veth enslaved to an
// active-backup bond, VLAN 100 on the bond and the program on the bond
// (native XDP on bonds: Linux 5.15); needs the bonding module too.
func TestVLANDirectRoutingOverTheWire(t *testing.T) {
	requireBPF(t)
	t.Run("parent veth", func(t *testing.T) { vlanDirectRouting(t, false) })
	t.Run("bond of a veth", func(t *testing.T) { vlanDirectRouting(t, true) })
}

func vlanDirectRouting(t *testing.T, bond bool) {
	n := testnet.New(t)
	client := n.AddHost("client", "")
	lb := n.AddHost("lb", "")
	rs := n.AddHost("rs", "")
	const vlanDev, bondDev = "v100", "bond0"
	vip := netip.MustParseAddr("10.100.0.100")
	lbParent := lb.Iface()
	if bond {
		if out, err := lb.Exec(context.Background(), "ip", "link", "add", bondDev, "type", "bond", "mode", "active-backup"); err != nil {
			t.Skipf("no bonding in this kernel (bonding module; the qemu guest suite has it): %v: %s", err, out)
		}
		lb.MustExec("ip", "link", "set", lb.Iface(), "down")
		lb.MustExec("ip", "link", "set", lb.Iface(), "master", bondDev)
		lb.MustExec("ip", "link", "set", bondDev, "up")
		lbParent = bondDev
	}
	for _, h := range []struct {
		host   *testnet.Host
		parent string
		addr   string
	}{{client, client.Iface(), "10.100.0.50/24"}, {lb, lbParent, "10.100.0.11/24"}, {rs, rs.Iface(), "10.100.0.21/24"}} {
		if out, err := h.host.Exec(context.Background(), "ip", "link", "add", "link", h.parent, "name", vlanDev, "type", "vlan", "id", "100"); err != nil {
			t.Skipf("no 802.1Q devices in this kernel (8021q module; the qemu guest suite has it): %v: %s", err, out)
		}
		h.host.MustExec("ip", "addr", "add", h.addr, "dev", vlanDev)
		h.host.MustExec("ip", "link", "set", vlanDev, "up")
	}
	// The client's checksums finished in software (see tests/lvs_helpers:
	// a frame sent on with XDP_TX loses CHECKSUM_PARTIAL).
	client.MustExec("ethtool", "-K", client.Iface(), "tx", "off")
	lb.MustExec("ip", "addr", "add", vip.String()+"/32", "dev", vlanDev)
	for _, kv := range []string{"all.arp_ignore=1", "all.arp_announce=2", vlanDev + ".arp_ignore=1", vlanDev + ".arp_announce=2"} {
		rs.MustExec("sysctl", "-qw", "net.ipv4.conf."+kv)
	}
	rs.MustExec("ip", "addr", "add", vip.String()+"/32", "dev", "lo")
	n.AttachSwitchPass(lb)

	rs.ServeTCP(t, vip.String()+":80", func(c net.Conn) {
		fmt.Fprintf(c, "rs\n")
		c.Close()
	})

	d := openIn(t, lb, Options{Iface: lbParent, BPFDir: testBPFDir(t)})
	t.Cleanup(func() { d.Close(); Detach(filepath.Dir(d.pinDir), lbParent) })
	rsAddr := netip.MustParseAddr("10.100.0.21")
	lb.MustExec("ping", "-c", "1", "-W", "2", rsAddr.String()) // a neighbour entry on v100
	if err := d.Apply([]lvs.Service{tcpService(vip, 80, dest(rsAddr, 80, 1))}); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, 10*time.Second, func() error {
		if u := d.Unresolved(); len(u) > 0 {
			return fmt.Errorf("real server not resolved: %v", u)
		}
		return nil
	})
	if err := d.SetVIPActive(vip, true); err != nil {
		t.Fatal(err)
	}
	var r xdpvipReal
	if err := d.objs.Reals.Lookup(d.lvs.services[svcIdent{proto: lvs.ProtoTCP, addr: vip, port: 80}].reals[netip.AddrPortFrom(rsAddr, 80)], &r); err != nil {
		t.Fatal(err)
	}
	if r.Vlan != 100 || int(r.Ifindex) != d.ifindex {
		t.Errorf("real server entry: ifindex %d, vlan %d; want the parent %d and VLAN 100", r.Ifindex, r.Vlan, d.ifindex)
	}

	rxOnVLAN := func() uint64 { // frames rs received tagged, on its VLAN device
		h, err := rs.Handle()
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		l, err := h.LinkByName(vlanDev)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Statistics.RxPackets
	}
	rx0 := rxOnVLAN()
	const conns = 20
	for i := range conns {
		client.MustDo(func() error {
			c, err := net.DialTimeout("tcp4", vip.String()+":80", 3*time.Second)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || line != "rs\n" {
				return fmt.Errorf("connection %d: read %q, %v", i, line, err)
			}
			return nil
		})
	}
	if rx := rxOnVLAN() - rx0; rx < 3*conns {
		t.Errorf("rs received %d frames on %s, want at least %d: the tag was lost", rx, vlanDev, 3*conns)
	}
	c := counters(t, d)
	// SYN, ACK, FIN/ACK at least: three client frames per connection.
	if c["fwd_tx"] < 3*conns || c["fwd_redirect"] != 0 {
		t.Errorf("counters %v: want at least %d frames sent with XDP_TX", c, 3*conns)
	}
}
