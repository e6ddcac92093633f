package instance

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// A VIP netlink refuses for good: retried with backoff, then FAULT with a
// priority-0 advert (the BACKUP takes over at once) instead of a MASTER
// without its VIP; after the hold it tries again.
func TestVIPAddFailsGoesFault(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).start()
	r.vips.fail[vip] = -1
	r.ops.take()
	r.advance(r.in.m.MasterDownInterval())
	r.wantState(vrrp.StateMaster)
	r.advance(time.Second)
	r.wantState(vrrp.StateFault)
	got := r.ops.take()
	if n := count(got, "add-failed 192.0.2.100"); n != vipAttempts {
		t.Fatalf("%d add attempts, want %d: %q", n, vipAttempts, got)
	}
	i := slices.Index(got, "send 0")
	if i < 0 || !slices.Equal(got[i:], []string{"send 0", "forward false", "notify /bin/f"}) {
		t.Fatalf("leaving for FAULT: %q, want priority 0, forwarding off, notify_fault", got)
	}
	// It stays FAULT for the hold, then comes back as BACKUP and may try again.
	r.advance(vipFaultHold - 2*time.Second)
	r.wantState(vrrp.StateFault)
	r.wantOps()
	r.advance(2 * time.Second)
	r.wantState(vrrp.StateBackup)
	r.vips.fail[vip] = 0
	r.advance(r.in.m.MasterDownInterval())
	r.wantState(vrrp.StateMaster)
	if !r.vips.present[vip] {
		t.Fatal("VIP missing after a successful retry")
	}
}

// A VIP that fails twice then succeeds: the instance stays MASTER and
// announces the VIP once it is there.
func TestVIPAddRetrySucceeds(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "    garp_master_delay 0\n")), "VI", nil).start()
	r.vips.fail[vip] = 2
	r.ops.take()
	r.advance(r.in.m.MasterDownInterval())
	r.advance(time.Second)
	r.wantState(vrrp.StateMaster)
	got := r.ops.take()
	if count(got, "add-failed 192.0.2.100") != 2 || count(got, "add 192.0.2.100") != 1 {
		t.Fatalf("retries: %q", got)
	}
	if i := slices.Index(got, "add 192.0.2.100"); i < 0 || i+1 >= len(got) || got[i+1] != "garp 192.0.2.100" {
		t.Fatalf("no GARP right after the VIP finally came: %q", got)
	}
}

// The daemon was frozen (SIGSTOP) for 4 × Master_Down_Interval while the
// MASTER kept advertising. On the XDP path the program's peer record says
// so: no takeover. When the peer record is old, the takeover happens.
func TestStalledBackupHearsPeerSeen(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withPeerSeen()).start()
	r.hear(200)
	mdi := r.in.m.MasterDownInterval()
	r.clk.now = r.clk.now.Add(4 * mdi) // frozen: no tick ran
	r.peer.seen, r.peer.p = true, PeerAdvert{Src: peer, Priority: 200, Interval: time.Second, Age: 300 * time.Millisecond}
	r.in.handle(Tick{})
	r.wantState(vrrp.StateBackup)
	// Our own adverts in the record do not count; an old record neither.
	r.peer.p.Age = mdi + time.Millisecond
	r.advance(mdi)
	r.wantState(vrrp.StateMaster)
}

// The same on the socket path: the timer fired far too late, so the
// instance gives the receive loop one interval to hand over what the
// socket queued while it was frozen.
func TestStalledBackupRechecksSocket(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).start()
	r.hear(200)
	mdi := r.in.m.MasterDownInterval()
	r.clk.now = r.clk.now.Add(4 * mdi)
	r.in.handle(Tick{})
	r.wantState(vrrp.StateBackup)
	r.advance(500 * time.Millisecond)
	r.hear(200) // the queued advert arrives
	r.advance(time.Second)
	r.wantState(vrrp.StateBackup)
	// A real silence: the takeover is only one interval later than usual.
	r.clk.now = r.clk.now.Add(4 * mdi)
	r.in.handle(Tick{})
	r.wantState(vrrp.StateBackup)
	r.advance(time.Second)
	r.wantState(vrrp.StateMaster)
}

// Queued adverts are heard before a due timer acts on the silence.
func TestTimerDrainsInbox(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).start()
	r.hear(200)
	r.clk.now = r.clk.now.Add(r.in.m.MasterDownInterval() + 10*time.Millisecond)
	r.in.Deliver(Datagram{Payload: r.advert(200, peer), Src: peer, Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255})
	r.in.handle(Tick{})
	r.wantState(vrrp.StateBackup)
}

// A MASTER that was stalled while a better router took over steps down on
// the peer record instead of advertising over it.
func TestStalledMasterYields(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withPeerSeen()).becomeMaster()
	r.clk.now = r.clk.now.Add(5 * time.Second)
	r.peer.seen, r.peer.p = true, PeerAdvert{Src: peer, Priority: 200, Interval: time.Second, Age: 100 * time.Millisecond}
	r.in.handle(Tick{})
	r.wantState(vrrp.StateBackup)
	if got := r.ops.take(); count(got, "send 100") != 0 {
		t.Fatalf("stalled MASTER advertised over a better one: %q", got)
	}
}

// An interface fault (gone, or ifindex changed and not rebuilt yet) is a
// FAULT until it is cleared.
func TestLinkFault(t *testing.T) {
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil).becomeMaster()
	r.in.handle(LinkFault{Fault: true})
	r.wantState(vrrp.StateFault)
	r.wantOps("send 0", "forward false", "del 192.0.2.100", "notify /bin/f")
	r.in.handle(TrackChange{Kind: TrackInterface, Name: "eth0", OK: true}) // link up, not rebuilt
	r.wantState(vrrp.StateFault)
	r.in.handle(LinkFault{Fault: false})
	r.wantState(vrrp.StateBackup)
}

// The interface was deleted and re-created: FAULT, and FAULT it stays
// until the socket and announcer are rebuilt on the new interface (a
// rebuild that fails is retried every second); only then BACKUP, which
// must hear the MASTER for a whole Master_Down_Interval before it may take
// over.
func TestRelinkRebuildsBeforeLeavingFault(t *testing.T) {
	fail := true
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withReopen(&fail)).becomeMaster()
	r.in.handle(LinkFault{Fault: true}) // deleted
	r.wantState(vrrp.StateFault)
	r.wantOps("send 0", "forward false", "del 192.0.2.100", "notify /bin/f")
	r.in.handle(TrackChange{Kind: TrackInterface, Name: "eth0", OK: true}) // re-created, up
	r.in.handle(Relink{})
	r.wantState(vrrp.StateFault)
	r.wantOps("close", "open-failed")
	r.advance(2500 * time.Millisecond)
	r.wantState(vrrp.StateFault)
	r.wantOps("open-failed", "open-failed")
	fail = false
	r.advance(time.Second)
	r.wantState(vrrp.StateBackup)
	r.wantOps("open", "notify /bin/b")
	r.hear(200)
	r.advance(r.in.m.MasterDownInterval() - 100*time.Millisecond)
	r.wantState(vrrp.StateBackup)
	r.in.stop()
	r.wantOps("notify /bin/s", "close")
}
