package instance

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/script"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// ops records the side effects of all fakes of one rig in order, as
// "send 100", "add 192.0.2.100", "forward on", "garp 192.0.2.100",
// "notify MASTER", ...
type ops struct{ list []string }

func (o *ops) add(format string, args ...any) { o.list = append(o.list, fmt.Sprintf(format, args...)) }

// take returns the ops recorded since the last take.
func (o *ops) take() []string {
	l := o.list
	o.list = nil
	return l
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// After is not used by tests that step handle themselves; Run is not
// driven with the fake clock.
func (c *fakeClock) After(time.Duration) <-chan time.Time { return nil }

type fakeSender struct {
	ops  *ops
	src  netip.Addr
	dsts []netip.Addr
}

func (s *fakeSender) Source() netip.Addr         { return s.src }
func (s *fakeSender) Destinations() []netip.Addr { return s.dsts }
func (s *fakeSender) Send(b []byte, dst netip.Addr) error {
	a, err := vrrp.Decode(b, s.src, dst)
	if err != nil {
		return err
	}
	s.ops.add("send %d", a.Priority)
	return nil
}

// fakeVIPs is an interface with addresses on it. fail makes Add of an
// address fail that many more times (-1: always).
type fakeVIPs struct {
	ops     *ops
	present map[netip.Addr]bool
	owned   map[netip.Addr]bool
	fail    map[netip.Addr]int
}

func newFakeVIPs(o *ops) *fakeVIPs {
	return &fakeVIPs{ops: o, present: map[netip.Addr]bool{}, owned: map[netip.Addr]bool{}, fail: map[netip.Addr]int{}}
}

var errRefused = errors.New("netlink: operation not permitted")

func (f *fakeVIPs) Add(v netif.VIP) (bool, error) {
	a := v.Prefix.Addr()
	if n := f.fail[a]; n != 0 {
		if n > 0 {
			f.fail[a] = n - 1
		}
		f.ops.add("add-failed %v", a)
		return false, errRefused
	}
	if f.present[a] {
		return true, nil
	}
	f.present[a], f.owned[a] = true, true
	f.ops.add("add %v", a)
	return false, nil
}

func (f *fakeVIPs) Remove(v netif.VIP) (bool, error) {
	a := v.Prefix.Addr()
	if !f.owned[a] || !f.present[a] {
		return false, nil
	}
	delete(f.present, a)
	delete(f.owned, a)
	f.ops.add("del %v", a)
	return true, nil
}

func (f *fakeVIPs) Present(v netif.VIP) (bool, error) { return f.present[v.Prefix.Addr()], nil }
func (f *fakeVIPs) Claim(v netif.VIP)                 { f.owned[v.Prefix.Addr()] = true }

type fakeAnnouncer struct{ ops *ops }

func (a *fakeAnnouncer) Announce(vip netip.Addr) error {
	a.ops.add("garp %v", vip)
	return nil
}

type fakeRole struct {
	ops *ops
	on  bool
}

func (r *fakeRole) SetForwarding(_ []netip.Addr, on bool) {
	r.on = on
	r.ops.add("forward %v", on)
}
func (r *fakeRole) Forwarding([]netip.Addr) bool { return r.on }

type fakeNotifier struct{ ops *ops }

func (n *fakeNotifier) Notify(c script.Command, extra ...string) {
	n.ops.add("notify %s", strings.TrimSpace(c.Line+" "+strings.Join(extra, " ")))
}

type fakePeer struct {
	seen bool
	p    PeerAdvert
}

func (f *fakePeer) LastAdvert() (PeerAdvert, bool) { return f.p, f.seen }

// rig is one instance with fakes, stepped by hand.
type rig struct {
	t     *testing.T
	ops   *ops
	clk   *fakeClock
	snd   *fakeSender
	vips  *fakeVIPs
	role  *fakeRole
	in    *Instance
	cfg   *config.Config
	group *SyncGroup
	peer  *fakePeer
}

var (
	self = netip.MustParseAddr("192.0.2.1")
	peer = netip.MustParseAddr("192.0.2.2")
	vip  = netip.MustParseAddr("192.0.2.100")
)

// instanceConf is a vrrp_instance block; body is added inside it.
func instanceConf(name string, vrid int, body string) string {
	return fmt.Sprintf(`vrrp_instance %s {
    interface eth0
    virtual_router_id %d
    priority 100
    advert_int 1
    notify_master "/bin/m"
    notify_backup "/bin/b"
    notify_fault "/bin/f"
    notify_stop "/bin/s"
    virtual_ipaddress {
        192.0.2.%d/32
    }
%s
}
`, name, vrid, 93+vrid, body)
}

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse("test.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type rigOption func(*rig, *Deps)

func withRole(on bool) rigOption {
	return func(r *rig, d *Deps) { r.role.on = on }
}

func withPeerSeen() rigOption {
	return func(r *rig, d *Deps) { r.peer = &fakePeer{}; d.PeerSeen = r.peer }
}

// withReopen makes the rig's IO rebuildable: open fails while *fail is
// set, and each opening is recorded as "open".
func withReopen(fail *bool) rigOption {
	return func(r *rig, d *Deps) {
		d.IO.Close = func() error { r.ops.add("close"); return nil }
		d.Reopen = func() (IO, error) {
			if *fail {
				r.ops.add("open-failed")
				return IO{}, errors.New("no source address on interface")
			}
			r.ops.add("open")
			return IO{Sender: r.snd, Announcer: &fakeAnnouncer{ops: r.ops}, Close: d.IO.Close}, nil
		}
	}
}

func withGroup(g *SyncGroup) rigOption {
	return func(r *rig, d *Deps) { r.group = g; d.Group = g }
}

// newRig builds instance name of cfg on fakes; the clock starts at a fixed
// time and nothing is stepped yet.
func newRig(t *testing.T, cfg *config.Config, name string, o *ops, opts ...rigOption) *rig {
	t.Helper()
	if o == nil {
		o = &ops{}
	}
	ic := cfg.Instance(name)
	r := &rig{
		t: t, ops: o, cfg: cfg,
		clk:  &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		snd:  &fakeSender{ops: o, src: self, dsts: []netip.Addr{netip.MustParseAddr("224.0.0.18")}},
		vips: newFakeVIPs(o),
		role: &fakeRole{ops: o},
	}
	d := Deps{
		IO: IO{Sender: r.snd, Announcer: &fakeAnnouncer{ops: o}}, VIPs: r.vips, Role: r.role,
		Clock: r.clk, Notifier: &fakeNotifier{ops: o}, Tracked: Tracking(ic, cfg), Receive: "socket",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, opt := range opts {
		opt(r, &d)
	}
	in, err := New(ic, d)
	if err != nil {
		t.Fatal(err)
	}
	r.in = in
	return r
}

// start leaves INIT and clears the ops.
func (r *rig) start() *rig {
	r.in.start()
	r.in.snapshot()
	r.pump()
	return r
}

// pump handles the inputs other parts posted (group, tracking).
func (r *rig) pump() {
	for {
		select {
		case x := <-r.in.inputs:
			r.in.handle(x)
		case x := <-r.in.inbox:
			r.in.handle(x)
		default:
			return
		}
	}
}

// advance moves the clock by d, ticking at every deadline on the way.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	end := r.clk.now.Add(d)
	for i := 0; ; i++ {
		if i > 10000 {
			r.t.Fatal("instance keeps asking to be stepped: busy loop")
		}
		next := r.in.next()
		if next.IsZero() || next.After(end) {
			break
		}
		if next.After(r.clk.now) {
			r.clk.now = next
		}
		r.in.handle(Tick{})
		r.pump()
	}
	r.clk.now = end
}

// advert is the payload of an advert from src with priority prio.
func (r *rig) advert(prio uint8, src netip.Addr) []byte {
	r.t.Helper()
	ic := r.in.cfg
	rc := RecvConfig(ic)
	a := &vrrp.Advert{
		Version: rc.Version, Type: vrrp.TypeAdvertisement, VRID: rc.VRID, Priority: prio,
		AuthType: rc.AuthType, AuthData: rc.AuthData, Interval: ic.AdvertInt, Addrs: rc.VIPs,
	}
	b, err := a.Marshal(src, netip.MustParseAddr("224.0.0.18"))
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// hear steps an advert from peer on the socket path.
func (r *rig) hear(prio uint8) {
	r.in.handle(Datagram{Payload: r.advert(prio, peer), Src: peer, Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255})
	r.pump()
}

func (r *rig) wantState(s vrrp.State) {
	r.t.Helper()
	if got := r.in.State(); got != s {
		r.t.Fatalf("state %v, want %v", got, s)
	}
}

// wantOps checks the side effects since the last check.
func (r *rig) wantOps(want ...string) {
	r.t.Helper()
	got := r.ops.take()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		r.t.Fatalf("side effects:\n  got  %q\n  want %q", got, want)
	}
}

// becomeMaster starts the rig and lets its Master_Down_Timer run out.
func (r *rig) becomeMaster() *rig {
	r.t.Helper()
	r.start()
	r.advance(r.in.m.MasterDownInterval())
	r.wantState(vrrp.StateMaster)
	r.ops.take()
	return r
}
