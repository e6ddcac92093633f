package netif

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkEvent is a change of an interface's usability.
type LinkEvent struct {
	Name  string
	Index int
	// Up is true when the interface is administratively up and has
	// carrier (IFF_UP and IFF_RUNNING), as keepalived's track_interface sees it.
	Up bool
	// Gone is true when the interface was deleted (Up is then false).
	Gone bool
}

// linkUp is keepalived's notion of a usable interface.
func linkUp(flags uint32) bool {
	return flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0
}

// WatchLinks reports the state of the named interfaces (all interfaces when
// names is empty): first the current state of each existing one, then one
// event per change of Up (repeated netlink notifications without a change
// are folded). It subscribes in the calling thread's network namespace.
// The channel is closed when ctx is done or the subscription fails.
func WatchLinks(ctx context.Context, names ...string) (<-chan LinkEvent, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	// Without an ErrorCallback the library closes updates on a fatal
	// receive error and skips benign ones.
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{ListExisting: true})
	if err != nil {
		return nil, fmt.Errorf("netif: link subscription: %w", err)
	}
	out := make(chan LinkEvent, 16)
	go func() {
		defer close(out)
		defer func() {
			close(done) // closes the socket; the library then closes updates
			go func() {
				for range updates { //nolint:revive // drain so the library's goroutine can exit
				}
			}()
		}()
		last := map[int]LinkEvent{}
		for {
			var u netlink.LinkUpdate
			var ok bool
			select {
			case <-ctx.Done():
				return
			case u, ok = <-updates:
				if !ok {
					return
				}
			}
			attrs := u.Link.Attrs()
			if attrs == nil || (len(want) > 0 && !want[attrs.Name]) {
				continue
			}
			ev := LinkEvent{Name: attrs.Name, Index: int(u.Index), Up: linkUp(u.Flags)}
			if u.Header.Type == unix.RTM_DELLINK {
				ev.Up, ev.Gone = false, true
			}
			prev, seen := last[ev.Index]
			if seen && prev == ev {
				continue
			}
			if ev.Gone {
				delete(last, ev.Index)
			} else {
				last[ev.Index] = ev
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
