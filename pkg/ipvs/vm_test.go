package ipvs

// Tests against a real kernel IPVS. They run inside the qemu guest that
// tests/ipvs_vm_test.go boots (internal/ipvsvm), which sets XDPVIP_IPVS_VM=1;
// elsewhere they skip, because they flush the IPVS table and build
// networks in the guest's root namespace.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	kipvs "github.com/cloudflare/ipvs"
	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// inGuest skips unless running inside the ipvsvm guest, and gives each
// test an empty IPVS table.
func inGuest(t *testing.T) {
	t.Helper()
	if os.Getenv("XDPVIP_IPVS_VM") != "1" {
		t.Skip("needs kernel IPVS: runs inside the qemu guest of tests/ipvs_vm_test.go (XDPVIP_IPVS_VM=1)")
	}
	run(t, "ipvsadm", "-C")
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipvsadmList is `ipvsadm -Ln` with trailing spaces trimmed from each line.
func ipvsadmList(t *testing.T) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(run(t, "ipvsadm", "-Ln"), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// recorder is a kernel client that records the calls that change state.
type recorder struct {
	kipvs.Client
	calls []string
}

func (r *recorder) note(op string, s kipvs.Service, d *kipvs.Destination) {
	c := op + " " + keyString(keyOf(s))
	if d != nil {
		c += fmt.Sprintf(" %s w%d", netip.AddrPortFrom(d.Address, d.Port), d.Weight)
	}
	r.calls = append(r.calls, c)
}
func (r *recorder) CreateService(s kipvs.Service) error {
	r.note("CreateService", s, nil)
	return r.Client.CreateService(s)
}
func (r *recorder) UpdateService(s kipvs.Service) error {
	r.note("UpdateService", s, nil)
	return r.Client.UpdateService(s)
}
func (r *recorder) RemoveService(s kipvs.Service) error {
	r.note("RemoveService", s, nil)
	return r.Client.RemoveService(s)
}
func (r *recorder) CreateDestination(s kipvs.Service, d kipvs.Destination) error {
	r.note("CreateDestination", s, &d)
	return r.Client.CreateDestination(s, d)
}
func (r *recorder) UpdateDestination(s kipvs.Service, d kipvs.Destination) error {
	r.note("UpdateDestination", s, &d)
	return r.Client.UpdateDestination(s, d)
}
func (r *recorder) RemoveDestination(s kipvs.Service, d kipvs.Destination) error {
	r.note("RemoveDestination", s, &d)
	return r.Client.RemoveDestination(s, d)
}

func newRecorded(t *testing.T) (*Backend, *recorder) {
	t.Helper()
	c, err := kipvs.New()
	if err != nil {
		t.Fatalf("kernel IPVS client: %v", err)
	}
	r := &recorder{Client: c}
	b := NewWithClient(r)
	t.Cleanup(func() {
		if cl, ok := c.(io.Closer); ok {
			cl.Close()
		}
	})
	return b, r
}

func TestVMAvailable(t *testing.T) {
	inGuest(t)
	if err := Available(); err != nil {
		t.Fatalf("Available() = %v in a kernel with IPVS", err)
	}
}

func TestVMSeedServiceAsIpvsadmListsIt(t *testing.T) {
	inGuest(t)
	b, r := newRecorded(t)
	if err := b.Apply([]lvs.Service{seedService()}); err != nil {
		t.Fatal(err)
	}
	if got := ipvsadmList(t); got != ipvsvm.SeedListing {
		t.Fatalf("ipvsadm -Ln:\n%s\nwant:\n%s", got, ipvsvm.SeedListing)
	}
	if len(r.calls) != 3 {
		t.Errorf("calls %q; want one service and two real servers created", r.calls)
	}
}

func TestVMReapplyChangesNothing(t *testing.T) {
	inGuest(t)
	b, r := newRecorded(t)
	if err := b.Apply([]lvs.Service{seedService()}); err != nil {
		t.Fatal(err)
	}
	before := ipvsadmList(t)
	r.calls = nil
	for range 3 {
		if err := b.Apply([]lvs.Service{seedService()}); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.calls) != 0 {
		t.Errorf("re-applying the same set made calls %q", r.calls)
	}
	if after := ipvsadmList(t); after != before {
		t.Errorf("kernel state changed:\n%s\nwas:\n%s", after, before)
	}
}

func TestVMWeightChangeUpdatesOnlyThatEntry(t *testing.T) {
	inGuest(t)
	b, r := newRecorded(t)
	if err := b.Apply([]lvs.Service{seedService()}); err != nil {
		t.Fatal(err)
	}
	before := ipvsadmList(t)
	s := seedService()
	s.Dests[1].Weight = 7
	r.calls = nil
	if err := b.Apply([]lvs.Service{s}); err != nil {
		t.Fatal(err)
	}
	want := []string{"UpdateDestination TCP 192.168.12.211:80 192.168.28.104:80 w7"}
	if !slices.Equal(r.calls, want) {
		t.Errorf("calls %q; want %q", r.calls, want)
	}
	after := ipvsadmList(t)
	wantAfter := strings.Replace(before, "192.168.28.104:80            Route   1", "192.168.28.104:80            Route   7", 1)
	if after != wantAfter || after == before {
		t.Errorf("ipvsadm -Ln after:\n%s\nwant:\n%s", after, wantAfter)
	}
}

func TestVMForeignServiceLeftAlone(t *testing.T) {
	inGuest(t)
	run(t, "ipvsadm", "-A", "-t", "10.9.9.9:8080", "-s", "lc")
	run(t, "ipvsadm", "-a", "-t", "10.9.9.9:8080", "-r", "10.9.9.10:8080", "-m", "-w", "3")
	run(t, "ipvsadm", "-A", "-f", "77", "-s", "rr")
	foreign := func() string {
		var keep []string
		for _, l := range strings.Split(ipvsadmList(t), "\n") {
			if strings.Contains(l, "10.9.9.") || strings.Contains(l, "FWM  77") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	before := foreign()
	if !strings.Contains(before, "10.9.9.10:8080               Masq    3") || !strings.Contains(before, "FWM  77 rr") {
		t.Fatalf("hand-made services not listed as expected:\n%s", ipvsadmList(t))
	}
	b, _ := newRecorded(t)
	for _, set := range [][]lvs.Service{{seedService()}, nil} {
		if err := b.Apply(set); err != nil {
			t.Fatal(err)
		}
		if got := foreign(); got != before {
			t.Fatalf("hand-made services changed:\n%s\nwant:\n%s", got, before)
		}
	}
	if l := ipvsadmList(t); strings.Contains(l, "192.168.12.211") {
		t.Errorf("the owned service survived an empty desired set:\n%s", l)
	}
}

func TestVMRemoveAndInhibit(t *testing.T) {
	inGuest(t)
	b, _ := newRecorded(t)
	if err := b.Apply([]lvs.Service{seedService()}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*lvs.Service)
		want   []string // real-server lines
	}{
		{"weight 0 (inhibit_on_failure)", func(s *lvs.Service) { s.Dests[0].Weight = 0 }, []string{
			"  -> 192.168.28.103:80            Route   0      0          0",
			"  -> 192.168.28.104:80            Route   1      0          0"}},
		{"real server removed", func(s *lvs.Service) { s.Dests = s.Dests[1:] }, []string{
			"  -> 192.168.28.104:80            Route   1      0          0"}},
		{"real server back", func(*lvs.Service) {}, []string{
			"  -> 192.168.28.103:80            Route   1      0          0",
			"  -> 192.168.28.104:80            Route   1      0          0"}},
	}
	for _, tt := range tests {
		s := seedService()
		tt.mutate(&s)
		if err := b.Apply([]lvs.Service{s}); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []string
		for _, l := range strings.Split(ipvsadmList(t), "\n") {
			if strings.HasPrefix(l, "  -> 192.") {
				got = append(got, l)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: real servers\n%s\nwant\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

// TestVMSchedulersProtocolsMethods creates one service per scheduler,
// across TCP, UDP, SCTP and fwmark, with persistence granularity and the
// three forwarding methods, and reads them back from the kernel.
func TestVMSchedulersProtocolsMethods(t *testing.T) {
	inGuest(t)
	protos := []uint8{lvs.ProtoTCP, lvs.ProtoUDP, lvs.ProtoSCTP}
	methods := []string{"DR", "NAT", "TUN"}
	var set []lvs.Service
	for i, algo := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "mh", "sed", "nq", "fo", "ovf"} {
		s := lvs.Service{
			Key:       lvs.ServiceKey{Proto: protos[i%3], Addr: netip.MustParseAddr("10.1.0.1"), Port: uint16(1000 + i)},
			Scheduler: algo,
			Dests:     []lvs.Dest{{Addr: netip.MustParseAddr("10.2.0.1"), Port: uint16(1000 + i), Weight: i, Method: methods[i%3]}},
		}
		if i == 4 {
			s.Key = lvs.ServiceKey{Fwmark: 42, Family: 4}
		}
		if i%2 == 0 {
			s.PersistenceTimeout = 300 * time.Second
			s.PersistenceGranularity = 24
		}
		set = append(set, s)
	}
	b, _ := newRecorded(t)
	if err := b.Apply(set); err != nil {
		t.Fatal(err)
	}
	c, err := kipvs.New()
	if err != nil {
		t.Fatal(err)
	}
	have, err := c.Services()
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != len(set) {
		t.Fatalf("kernel has %d services; want %d", len(have), len(set))
	}
	for _, s := range set {
		want, err := toKernel(s)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(have, func(h kipvs.ServiceExtended) bool { return keyOf(h.Service) == want.key })
		if i < 0 {
			t.Errorf("%s missing from the kernel", keyString(want.key))
			continue
		}
		if serviceChanged(have[i].Service, want.svc) {
			t.Errorf("%s: kernel has %+v; want %+v", keyString(want.key), have[i].Service, want.svc)
		}
		dests, err := c.Destinations(have[i].Service)
		if err != nil || len(dests) != 1 || destChanged(dests[0].Destination, want.dests[want.order[0]]) {
			t.Errorf("%s: real servers %+v (%v); want %+v", keyString(want.key), dests, err, want.dests)
		}
	}
	l := ipvsadmList(t)
	for _, frag := range []string{"UDP  10.1.0.1:1001 wrr", "SCTP 10.1.0.1:1002 lc persistent 300 mask 255.255.255.0",
		"FWM  42 lblc persistent 300 mask 255.255.255.0", "Masq", "Tunnel", "Route", "TCP  10.1.0.1:1012 ovf persistent 300"} {
		if !strings.Contains(l, frag) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", frag, l)
		}
	}
	r := &recorder{Client: c}
	if err := NewWithClient(r).Apply(set); err != nil || len(r.calls) != 0 {
		t.Errorf("a fresh backend re-applying the set: err %v, calls %q; want none", err, r.calls)
	}
}

// TestVMTunnels programs TUN real servers with every tunnel keepalived
// 2.2.7 knows (IP-in-IP, GUE with each checksum option, GRE with and
// without checksums, an IPv6 real server behind the IPv4 VIP) and reads
// them back from the kernel: over netlink (Backend.Destinations and the
// raw attributes) and, where the guest's ipvsadm has it, --tun-info. A
// tunnel change alone reaches the kernel.
func TestVMTunnels(t *testing.T) {
	inGuest(t)
	key := lvs.ServiceKey{Proto: lvs.ProtoUDP, Addr: netip.MustParseAddr("10.1.0.9"), Port: 53}
	dests := []lvs.Dest{
		{Addr: netip.MustParseAddr("10.2.0.1"), Port: 53, Weight: 1, Method: "TUN"},
		{Addr: netip.MustParseAddr("10.2.0.2"), Port: 53, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6080}},
		{Addr: netip.MustParseAddr("10.2.0.3"), Port: 53, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6081, Csum: "csum"}},
		{Addr: netip.MustParseAddr("10.2.0.4"), Port: 53, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6082, Csum: "remcsum"}},
		{Addr: netip.MustParseAddr("10.2.0.5"), Port: 53, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre"}},
		{Addr: netip.MustParseAddr("10.2.0.6"), Port: 53, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre", Csum: "csum"}},
		{Addr: netip.MustParseAddr("10.2.0.7"), Port: 53, Weight: 1, Method: "DR"},
		{Addr: netip.MustParseAddr("2001:db8::8"), Port: 53, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6083}},
	}
	b, _ := newRecorded(t)
	check := func(step string, want []lvs.Dest) {
		t.Helper()
		if err := b.Apply([]lvs.Service{{Key: key, Scheduler: "rr", Dests: want}}); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got, err := b.Destinations(key)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the kernel has\n%v\nwant\n%v", step, got, want)
		}
	}
	check("create", dests)
	// The raw attributes: the kernel's numbers (ip_vs.h).
	c, err := kipvs.New()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := c.Service(kipvs.Service{Address: key.Addr, Port: key.Port, Protocol: kipvs.UDP, Family: kipvs.INET})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Destinations(svc.Service)
	if err != nil {
		t.Fatal(err)
	}
	numbers := map[string]string{}
	for _, d := range raw {
		numbers[d.Address.String()] = fmt.Sprintf("%v type %d port %d flags %d", d.FwdMethod, d.TunnelType, d.TunnelPort, d.TunnelFlags)
	}
	for addr, w := range map[string]string{
		"10.2.0.1": "Tunnel type 0 port 0 flags 0", "10.2.0.2": "Tunnel type 1 port 6080 flags 0",
		"10.2.0.3": "Tunnel type 1 port 6081 flags 1", "10.2.0.4": "Tunnel type 1 port 6082 flags 2",
		"10.2.0.5": "Tunnel type 2 port 0 flags 0", "10.2.0.6": "Tunnel type 2 port 0 flags 1",
		"10.2.0.7": "DirectRoute type 0 port 0 flags 0", "2001:db8::8": "Tunnel type 1 port 6083 flags 0",
	} {
		if numbers[addr] != w {
			t.Errorf("%s: kernel attributes %q, want %q", addr, numbers[addr], w)
		}
	}
	// ipvsadm 1.31's TunnelInfo column (pkg/lvs's list_test.go holds
	// xdpvip lvs --tun-info to the same lines).
	if out, err := exec.Command("ipvsadm", "-Ln", "--tun-info").CombinedOutput(); err != nil {
		t.Errorf("ipvsadm -Ln --tun-info: %v: %s", err, out)
	} else {
		t.Logf("ipvsadm -Ln --tun-info:\n%s", out)
		for _, l := range []string{
			"  -> 10.2.0.1:53                  Tunnel  ipip          1      0          0",
			"  -> 10.2.0.2:53                  Tunnel  gue:6080:-c   1      0          0",
			"  -> 10.2.0.3:53                  Tunnel  gue:6081:+c   1      0          0",
			"  -> 10.2.0.4:53                  Tunnel  gue:6082:r+c  1      0          0",
			"  -> 10.2.0.5:53                  Tunnel  gre:-c        1      0          0",
			"  -> 10.2.0.6:53                  Tunnel  gre:+c        1      0          0",
			"  -> 10.2.0.7:53                  Route   n/a           1      0          0",
			"  -> [2001:db8::8]:53             Tunnel  gue:6083:-c   1      0          0",
		} {
			if !strings.Contains(string(out), l+" ") {
				t.Errorf("ipvsadm --tun-info lacks %q", l)
			}
		}
	}
	// Only tunnels change: ipip -> gre csum, gue port and checksum, gre -> ipip.
	changed := slices.Clone(dests)
	changed[0].Tunnel = lvs.Tunnel{Type: "gre", Csum: "csum"}
	changed[1].Tunnel = lvs.Tunnel{Type: "gue", Port: 7080, Csum: "remcsum"}
	changed[4].Tunnel = lvs.Tunnel{}
	check("tunnels changed", changed)
	_, r := newRecorded(t)
	if err := NewWithClient(r).Apply([]lvs.Service{{Key: key, Scheduler: "rr", Dests: changed}}); err != nil || len(r.calls) != 0 {
		t.Errorf("a fresh backend re-applying the tunnels: err %v, calls %q; want none", err, r.calls)
	}
}

// inNetns runs fn on a thread switched into the named network namespace;
// sockets fn creates stay in it. The thread is discarded afterwards.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		f, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// TestVMHTTPThroughDR builds the seed's network inside the guest: the
// director (the guest's root namespace, holding the VIP on a bridge), two
// real servers holding the VIP on lo with arp_ignore/arp_announce, and a
// client, each in its own namespace. The client's requests to the VIP
// reach a real server unchanged (it sees the client's address) and the
// replies bypass the director (IPVS counts no outgoing packets in DR).
func TestVMHTTPThroughDR(t *testing.T) {
	inGuest(t)
	const vip = "192.168.12.211"
	run(t, "ip", "link", "add", "br0", "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", "br0").Run() })
	run(t, "ip", "addr", "add", "192.168.28.101/24", "dev", "br0")
	run(t, "ip", "addr", "add", vip+"/32", "dev", "br0")
	run(t, "ip", "link", "set", "br0", "up")
	hosts := []struct{ ns, addr string }{{"cl", "192.168.28.50"}, {"rs1", "192.168.28.103"}, {"rs2", "192.168.28.104"}}
	for _, h := range hosts {
		run(t, "ip", "netns", "add", h.ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
		run(t, "ip", "link", "add", "v"+h.ns, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		run(t, "ip", "link", "set", "v"+h.ns, "master", "br0", "up")
		run(t, "ip", "-n", h.ns, "addr", "add", h.addr+"/24", "dev", "eth0")
		run(t, "ip", "-n", h.ns, "link", "set", "eth0", "up")
		run(t, "ip", "-n", h.ns, "link", "set", "lo", "up")
		if h.ns == "cl" {
			run(t, "ip", "-n", h.ns, "route", "add", vip+"/32", "dev", "eth0")
			continue
		}
		run(t, "ip", "-n", h.ns, "addr", "add", vip+"/32", "dev", "lo")
		run(t, "ip", "netns", "exec", h.ns, "sh", "-c",
			"for i in all eth0; do echo 1 > /proc/sys/net/ipv4/conf/$i/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/$i/arp_announce; done")
		name := h.ns
		var ln net.Listener
		if err := inNetns(name, func() (err error) { ln, err = net.Listen("tcp4", ":80"); return err }); err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			local := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
			fmt.Fprintf(w, "%s remote=%s local=%s\n", name, r.RemoteAddr, local)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}

	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Apply([]lvs.Service{seedService()}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = inNetns("cl", func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	get := func() (string, error) {
		resp, err := client.Get("http://" + vip + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		if body, err = get(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("GET through IPVS DR: %v", err)
	}
	if !strings.Contains(body, "remote=192.168.28.50:") || !strings.Contains(body, "local="+vip+":80") {
		t.Fatalf("real server saw %q; want the client's own address and the VIP", body)
	}
	const more = 4
	for range more {
		next, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Fields(next)[0] != strings.Fields(body)[0] {
			t.Errorf("persistence 50: answered by %q after %q", next, body)
		}
	}
	// The kernel folds its per-CPU counters into the totals every 2 s
	// (with the rate estimator), so poll.
	var (
		stats          []lvs.ServiceStats
		conns, in, out uint64
	)
	deadline = time.Now().Add(10 * time.Second)
	for {
		if stats, err = b.Stats(); err != nil {
			t.Fatal(err)
		}
		if len(stats) != 1 {
			t.Fatalf("stats for %d services; want 1", len(stats))
		}
		conns, in, out = 0, 0, 0
		for _, d := range stats[0].Dests {
			conns += d.Conns
			in += d.PktsIn
			out += d.PktsOut
		}
		if (stats[0].Conns >= more+1 && conns >= more+1 && in > 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling interval, bounded by the deadline
	}
	if stats[0].Conns < more+1 || conns < more+1 || in == 0 {
		t.Errorf("kernel counters %+v; want at least %d connections and incoming packets", stats[0], more+1)
	}
	if out != 0 || stats[0].PktsOut != 0 {
		t.Errorf("director forwarded %d reply packets; in DR the real server answers the client directly", out)
	}
	t.Logf("answered by %q; kernel counters: %d conns, %d packets in, %d out", strings.TrimSpace(body), stats[0].Conns, stats[0].PktsIn, stats[0].PktsOut)
}
