package tests

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// openLabDataplane loads pkg/dataplane on lvs1 of the LVS lab (which takes
// the VIP, as MASTER), programs services, waits for the real servers to
// resolve and activates the VIP. Closed and detached at cleanup.
func openLabDataplane(t *testing.T, l *lvsLab, vip netip.Addr, services []lvs.Service) *dataplane.Dataplane {
	t.Helper()
	lb := l.LVS1
	lb.MustExec("ip", "addr", "add", netip.PrefixFrom(vip, vip.BitLen()).String(), "dev", lb.Iface(), "nodad")
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	bpfDir := filepath.Join("/sys/fs/bpf", "xdpvip-e2e-"+hex.EncodeToString(rnd[:]))
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	var d *dataplane.Dataplane
	lb.MustDo(func() error {
		var err error
		d, err = dataplane.Open(dataplane.Options{Iface: lb.Iface(), BPFDir: bpfDir})
		return err
	})
	t.Cleanup(func() {
		d.Close()
		if err := dataplane.Detach(bpfDir, lb.Iface()); err != nil {
			t.Errorf("Detach: %v", err)
		}
	})
	if err := d.Apply(services); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// Apply does not wait for ARP: the real servers join once resolved.
	testnet.Eventually(t, 10*time.Second, func() error {
		if u := d.Unresolved(); len(u) > 0 {
			return fmt.Errorf("real servers not resolved: %v", u)
		}
		return nil
	})
	if err := d.SetVIPActive(vip, true); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestXDPFragmentedUDP sends 4000-byte UDP datagrams (three fragments each
// at the lab's 1500 MTU) from the client to VIP:5353, served by rs1 and
// rs2 in DR: every datagram must arrive whole, reassembled by the real
// server it went to, and the XDP program must have forwarded every
// fragment (before, the first fragment went to a real server and the
// others to the load balancer's own stack, so nothing arrived).
func TestXDPFragmentedUDP(t *testing.T) {
	l := newLVSLab(t)
	const port = 5353
	svc := lvs.Service{
		Key:       lvs.ServiceKey{Proto: lvs.ProtoUDP, Addr: l.VIP, Port: port},
		Scheduler: "rr",
		Dests: []lvs.Dest{
			{Addr: l.RS1.Addr(4), Port: port, Weight: 1, Method: "DR"},
			{Addr: l.RS2.Addr(4), Port: port, Weight: 1, Method: "DR"},
		},
	}
	var mu sync.Mutex
	got := map[string]map[string]bool{} // real server -> digests received whole
	for _, rs := range []*testnet.Host{l.RS1, l.RS2} {
		var conn *net.UDPConn
		rs.MustDo(func() error {
			var err error
			conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(l.VIP.AsSlice()), Port: port})
			return err
		})
		t.Cleanup(func() { conn.Close() })
		name := rs.Name()
		got[name] = map[string]bool{}
		go func() {
			buf := make([]byte, 65536)
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				sum := sha256.Sum256(buf[:n])
				mu.Lock()
				got[name][fmt.Sprintf("%d:%x", n, sum[:8])] = true
				mu.Unlock()
			}
		}()
	}
	d := openLabDataplane(t, l, l.VIP, []lvs.Service{svc})

	const datagrams, size = 20, 4000
	want := map[string]bool{}
	for i := range datagrams {
		payload := bytes.Repeat([]byte{byte(i)}, size)
		sum := sha256.Sum256(payload)
		want[fmt.Sprintf("%d:%x", size, sum[:8])] = true
		l.Client.MustDo(func() error {
			// A new source port per datagram: the hash is the client
			// address, so all go to one real server; that is the point.
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IP(l.VIP.AsSlice()), Port: port})
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(payload)
			return err
		})
	}
	testnet.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range got {
			n += len(m)
		}
		if n < datagrams {
			return fmt.Errorf("%d of %d datagrams arrived whole: %v", n, datagrams, got)
		}
		return nil
	})
	mu.Lock()
	for name, m := range got {
		for k := range m {
			if !want[k] {
				t.Errorf("%s received a datagram nobody sent: %s", name, k)
			}
		}
	}
	mu.Unlock()
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// 4000 bytes of UDP in 1500-byte IP packets: three fragments each.
	if c["fwd_tx"] < 3*datagrams || c["fwd_no_real"] != 0 {
		t.Errorf("counters %v: want at least %d fragments forwarded", c, 3*datagrams)
	}
	t.Logf("datagrams by real server: rs1 %d, rs2 %d; counters %v", len(got["rs1"]), len(got["rs2"]), c)
}

// TestXDPIPv6DirectRouting: the LVS lab with IPv6 addresses; a virtual
// server on an IPv6 VIP over rs1 and rs2 (the VIP on lo) answers 100
// TCP connections from the client, all through the XDP program, half of
// them with a destination-options extension header on every packet
// (were it not walked, those would reach lvs1's own stack and be
// refused).
func TestXDPIPv6DirectRouting(t *testing.T) {
	l := newLVSLab(t)
	vip := netip.MustParseAddr("2001:db8:100::100")
	addr := map[*testnet.Host]string{l.Client: "2001:db8:100::50", l.LVS1: "2001:db8:100::11", l.RS1: "2001:db8:100::21", l.RS2: "2001:db8:100::22"}
	for h, a := range addr {
		h.MustExec("ip", "addr", "add", a+"/64", "dev", h.Iface(), "nodad")
	}
	names := map[string]string{}
	for _, rs := range []*testnet.Host{l.RS1, l.RS2} {
		rs.MustExec("ip", "addr", "add", vip.String()+"/128", "dev", "lo")
		var ln net.Listener
		rs.MustDo(func() error {
			var err error
			ln, err = net.Listen("tcp6", "["+vip.String()+"]:80")
			return err
		})
		t.Cleanup(func() { ln.Close() })
		name := rs.Name()
		names[name] = addr[rs]
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s\n", name)
				c.Close()
			}
		}()
	}
	for _, rs := range []*testnet.Host{l.RS1, l.RS2} { // neighbour entries on lvs1
		l.LVS1.MustExec("ping", "-6", "-c", "1", "-W", "2", addr[rs])
	}
	svc := lvs.Service{
		Key:       lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: vip, Port: 80},
		Scheduler: "wrr",
		Dests: []lvs.Dest{
			{Addr: netip.MustParseAddr(addr[l.RS1]), Port: 80, Weight: 1, Method: "DR"},
			{Addr: netip.MustParseAddr(addr[l.RS2]), Port: 80, Weight: 1, Method: "DR"},
		},
	}
	d := openLabDataplane(t, l, vip, []lvs.Service{svc})
	const conns = 100
	got := map[string]int{}
	// The second half carries a destination-options header (an 8-octet
	// PadN), set on the client's socket: the program walks it.
	dstOpts := string([]byte{0, 0, 1, 4, 0, 0, 0, 0})
	for i := range conns {
		dialer := net.Dialer{Timeout: 3 * time.Second}
		if i >= conns/2 {
			dialer.Control = func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, dstOpts)
				}); err != nil {
					return err
				}
				return serr
			}
		}
		l.Client.MustDo(func() error {
			c, err := dialer.Dial("tcp6", "["+vip.String()+"]:80")
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return fmt.Errorf("connection %d: %q, %w", i, line, err)
			}
			got[strings.TrimSpace(line)]++
			return nil
		})
	}
	t.Logf("connections by real server: %v", got)
	if got["rs1"]+got["rs2"] != conns || got["rs1"] == 0 || got["rs2"] == 0 {
		t.Errorf("answers %v: want %d, from both real servers", got, conns)
	}
	stats, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var flows uint64
	for _, ds := range stats[0].Dests {
		flows += ds.Conns
	}
	if flows != conns {
		t.Errorf("the program counted %d new flows for %d connections", flows, conns)
	}
}
