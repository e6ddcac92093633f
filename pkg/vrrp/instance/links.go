package instance

import (
	"log/slog"
	"sync"

	"github.com/xdpvip/xdpvip/pkg/netif"
)

// LinkFollower turns link events into what the instances must hear: a
// tracked interface's state (TrackChange); for an instance's own
// interface, a LinkFault while it is gone, and once it is back with
// another ifindex and up, a Relink after the daemon's side (the XDP
// program) was rebuilt on it. An instance's old socket is bound to the old
// ifindex: leaving FAULT with it would make a MASTER that hears nobody.
type LinkFollower struct {
	log     *slog.Logger
	rebuild func(iface string) error

	mu sync.Mutex
	// known is the ifindex each instance interface was last built on, -1
	// once it was deleted.
	known map[string]int
}

// NewLinkFollower returns a follower; rebuild re-opens what the daemon
// holds on a re-created interface.
func NewLinkFollower(log *slog.Logger, rebuild func(iface string) error) *LinkFollower {
	return &LinkFollower{log: log, rebuild: rebuild, known: map[string]int{}}
}

// Follow handles one event: homes are the instances on ev's interface,
// tracking the ones that track it.
func (f *LinkFollower) Follow(ev netif.LinkEvent, homes, tracking []*Instance) {
	f.relink(ev, homes)
	if !ev.Up {
		f.log.Warn("interface down", "iface", ev.Name, "gone", ev.Gone)
	} else {
		f.log.Info("interface up", "iface", ev.Name)
	}
	for _, in := range tracking {
		in.Post(TrackChange{Kind: TrackInterface, Name: ev.Name, OK: ev.Up})
	}
}

func (f *LinkFollower) relink(ev netif.LinkEvent, homes []*Instance) {
	if len(homes) == 0 {
		return
	}
	f.mu.Lock()
	known, seen := f.known[ev.Name]
	switch {
	case ev.Gone:
		f.known[ev.Name] = -1
	case !seen:
		f.known[ev.Name] = ev.Index
	}
	f.mu.Unlock()
	fault := func() {
		for _, in := range homes {
			in.Post(LinkFault{Fault: true})
		}
	}
	switch {
	case ev.Gone:
		f.log.Warn("interface deleted: its instances are in FAULT until it is back", "iface", ev.Name)
		fault()
	case !seen || known == ev.Index:
	case !ev.Up:
		fault()
	default:
		f.log.Warn("interface re-created: rebuilding its XDP program and sockets", "iface", ev.Name, "ifindex", ev.Index)
		fault()
		if err := f.rebuild(ev.Name); err != nil {
			f.log.Error("interface re-created but the dataplane could not follow: its instances stay in FAULT", "iface", ev.Name, "err", err)
			return
		}
		f.mu.Lock()
		f.known[ev.Name] = ev.Index
		f.mu.Unlock()
		for _, in := range homes {
			in.Post(Relink{})
		}
	}
}
