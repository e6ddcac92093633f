package instance

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// The instance's interface is deleted and re-created: FAULT from the
// deletion on; the dataplane is rebuilt only once the new interface is up,
// and the instance rebuilds its socket only after that succeeded. Going
// down and up on the same ifindex is only tracking.
func TestLinkFollower(t *testing.T) {
	fail := false
	r := newRig(t, parse(t, instanceConf("VI", 7, "")), "VI", nil, withReopen(&fail)).becomeMaster()
	var rebuilt []string
	rebuildErr := errors.New("no XDP on it yet")
	var failRebuild bool
	f := NewLinkFollower(slog.New(slog.NewTextHandler(io.Discard, nil)), func(iface string) error {
		rebuilt = append(rebuilt, iface)
		if failRebuild {
			return rebuildErr
		}
		return nil
	})
	ins := []*Instance{r.in}
	follow := func(ev netif.LinkEvent) { f.Follow(ev, ins, ins); r.pump() }

	follow(netif.LinkEvent{Name: "eth0", Index: 2, Up: true}) // first sight
	r.wantState(vrrp.StateMaster)
	follow(netif.LinkEvent{Name: "eth0", Index: 2, Up: false}) // cable cut: tracking only
	r.wantState(vrrp.StateFault)
	follow(netif.LinkEvent{Name: "eth0", Index: 2, Up: true})
	r.wantState(vrrp.StateBackup)
	if len(rebuilt) != 0 {
		t.Fatalf("rebuilt %v on a plain down/up", rebuilt)
	}
	r.ops.take()

	follow(netif.LinkEvent{Name: "eth0", Index: 2, Gone: true})
	r.wantState(vrrp.StateFault)
	follow(netif.LinkEvent{Name: "eth0", Index: 9, Up: false}) // re-created, still down
	failRebuild = true
	follow(netif.LinkEvent{Name: "eth0", Index: 9, Up: true})
	r.wantState(vrrp.StateFault) // the dataplane could not follow
	failRebuild = false
	follow(netif.LinkEvent{Name: "eth0", Index: 9, Up: false})
	follow(netif.LinkEvent{Name: "eth0", Index: 9, Up: true})
	r.wantState(vrrp.StateBackup)
	if len(rebuilt) != 2 {
		t.Fatalf("dataplane rebuilt %d times, want 2 (failed, then done)", len(rebuilt))
	}
	if got := r.ops.take(); count(got, "open") != 1 {
		t.Fatalf("socket rebuilt %d times: %q", count(got, "open"), got)
	}
	// Known now: the next down/up on ifindex 9 is tracking again.
	follow(netif.LinkEvent{Name: "eth0", Index: 9, Up: false})
	follow(netif.LinkEvent{Name: "eth0", Index: 9, Up: true})
	if len(rebuilt) != 2 {
		t.Fatal("rebuilt again on the same ifindex")
	}
}
