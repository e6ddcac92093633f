package daemon

import (
	"github.com/xdpvip/xdpvip/internal/announce"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// The bgp part of the status and the drain answer (internal/announce).
type (
	BGPStatus   = announce.Status
	RouteStatus = announce.RouteStatus
	DrainResult = announce.DrainResult
)

// routeNode is the daemon as route health injection reads it.
type routeNode struct{ d *Daemon }

func (n routeNode) Running() (*config.Config, map[string]vrrp.State) {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	states := map[string]vrrp.State{}
	for name, ri := range n.d.instances {
		states[name] = ri.in.State()
	}
	return n.d.cfg, states
}

func (n routeNode) QuorumUp() map[string]bool {
	q := map[string]bool{}
	for _, v := range n.d.lvsMgr.Views(nil) {
		q[v.Key.String()] = v.QuorumUp
	}
	return q
}

func (n routeNode) Dataplane() string { return n.d.planes.name() }

func (n routeNode) Forwarder(iface string) announce.Forwarder {
	if xp := n.d.planes.xdp[iface]; xp != nil {
		return xp
	}
	return nil
}
