package announce

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdpvip/xdpvip/pkg/bgp"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/flowsync"
)

// startSpeaker starts GoBGP for cfg, filling in the defaults.
func (b *speakerRoutes) startSpeaker(ctx context.Context, cfg *config.BGP) error {
	rid, iface, err := defaults(cfg)
	if err != nil {
		return err
	}
	sc := bgp.Config{RouterID: rid, LocalAS: cfg.LocalAS, Logger: b.log, Restarting: b.inherited(iface)}
	for _, nb := range cfg.Neighbors {
		sc.Neighbors = append(sc.Neighbors, bgp.Neighbor{Addr: nb.Addr, RemoteAS: nb.RemoteAS,
			HoldTime: nb.HoldTime, BFD: nb.BFD, Password: nb.Password, GracefulRestart: nb.GracefulRestart})
	}
	var syncer *flowsync.Syncer
	if xp := b.node.Forwarder(iface); xp != nil && len(cfg.FlowSyncPeers) > 0 {
		if syncer, err = flowsync.Start(flowsync.Config{Table: xp, Peers: cfg.FlowSyncPeers, Logger: b.log}); err != nil {
			return fmt.Errorf("%s: flow_sync_peer: %w", cfg.Pos, err)
		}
	}
	sp, err := bgp.Start(ctx, sc)
	if err != nil {
		if syncer != nil {
			syncer.Stop()
		}
		return fmt.Errorf("%s: bgp: %w", cfg.Pos, err)
	}
	b.mu.Lock()
	b.cfg, b.routerID, b.iface, b.speaker, b.syncer = cfg, rid, iface, sp, syncer
	b.mu.Unlock()
	b.log.Info("bgp speaker started", "router_id", rid, "local_as", cfg.LocalAS, "interface", iface,
		"neighbors", len(cfg.Neighbors))
	return nil
}

// inherited reports whether a previous daemon left ECMP virtual servers
// forwarded in the pinned maps: it died without leaving, and the routers
// may still hold its routes (graceful restart). Checked before the first
// evaluation sets anything.
func (b *speakerRoutes) inherited(iface string) bool {
	b.mu.Lock()
	first := b.speaker == nil && len(b.forwarded) == 0 && b.cfg == nil
	b.mu.Unlock()
	xp := b.node.Forwarder(iface)
	if !first || xp == nil {
		return false
	}
	cfg, _ := b.node.Running()
	for _, vs := range cfg.VirtualServers {
		if vs.Announce.Mode != config.AnnounceECMP {
			continue
		}
		if on, err := xp.VIPActive(vs.Addr); err == nil && on {
			b.log.Info("restarting: a previous daemon left the ECMP forwarding on", "vip", vs.Addr)
			return true
		}
	}
	return false
}

// defaults resolves router_id and interface when the configuration
// leaves them out: the source address and the interface of the route to
// the first neighbor.
func defaults(cfg *config.BGP) (netip.Addr, string, error) {
	rid, iface := cfg.RouterID, cfg.Interface
	if rid.IsValid() && iface != "" {
		return rid, iface, nil
	}
	first := cfg.Neighbors[0].Addr
	routes, err := netlink.RouteGet(net.IP(first.AsSlice()))
	if err != nil || len(routes) == 0 {
		return rid, iface, fmt.Errorf("%s: bgp: no route to neighbor %s for the default router_id/interface: %v", cfg.Pos, first, err)
	}
	r := routes[0]
	if !rid.IsValid() {
		src, ok := netip.AddrFromSlice(r.Src)
		if !ok || !src.Unmap().Is4() {
			return rid, iface, fmt.Errorf("%s: bgp: no IPv4 source address towards %s: set router_id", cfg.Pos, first)
		}
		rid = src.Unmap()
	}
	if iface == "" {
		l, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			return rid, iface, fmt.Errorf("%s: bgp: interface towards %s: %w", cfg.Pos, first, err)
		}
		iface = l.Attrs().Name
	}
	return rid, iface, nil
}

// Interfaces is where XDP must be attached for `announce ecmp` virtual
// servers: the bgp interface (a config may have no vrrp_instance).
func Interfaces(cfg *config.Config, log *slog.Logger) []string {
	if cfg.BGP == nil {
		return nil
	}
	ecmp := false
	for _, vs := range cfg.VirtualServers {
		ecmp = ecmp || vs.Announce.Mode == config.AnnounceECMP
	}
	if !ecmp {
		return nil
	}
	_, iface, err := defaults(cfg.BGP)
	if err != nil {
		log.Error("announce ecmp: no interface for XDP", "err", err)
		return nil
	}
	return []string{iface}
}

func (b *speakerRoutes) run(ctx context.Context) {
	defer close(b.doneC)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		b.evaluate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
		}
	}
}

// sameBGP reports whether two bgp blocks are equal but for positions.
func sameBGP(a, b *config.BGP) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Pos, y.Pos = config.Pos{}, config.Pos{}
	strip := func(ns []*config.BGPNeighbor) []config.BGPNeighbor {
		out := make([]config.BGPNeighbor, len(ns))
		for i, n := range ns {
			out[i] = *n
			out[i].Pos = config.Pos{}
		}
		return out
	}
	return reflect.DeepEqual(strip(x.Neighbors), strip(y.Neighbors)) && slices.Equal(x.FlowSyncPeers, y.FlowSyncPeers) &&
		x.RouterID == y.RouterID && x.Interface == y.Interface && x.LocalAS == y.LocalAS
}

// evaluate decides every announced virtual server and applies the result:
// the speaker's routes and, for ECMP services, the XDP forwarding flag.
func (b *speakerRoutes) evaluate(ctx context.Context) {
	cfg, states := b.node.Running()
	b.mu.Lock()
	oldCfg, running := b.cfg, b.speaker != nil
	b.mu.Unlock()
	if cfg.BGP == nil && running {
		// A reload removed the bgp block: its sessions go (and with them
		// the routes).
		b.log.Info("bgp block removed: stopping the speaker")
		b.stopSpeaker()
		b.mu.Lock()
		b.cfg, b.routes = nil, nil
		b.mu.Unlock()
	}
	if cfg.BGP != nil && !sameBGP(oldCfg, cfg.BGP) {
		// A reloaded bgp block: new sessions with the new settings.
		b.log.Info("bgp block changed: restarting the speaker")
		b.stopSpeaker()
		if err := b.startSpeaker(ctx, cfg.BGP); err != nil {
			b.log.Error("restarting the bgp speaker failed: no routes announced", "err", err)
			b.mu.Lock()
			b.cfg = cfg.BGP // do not retry every tick; the next reload does
			b.mu.Unlock()
			return
		}
	}

	f := facts{states: states, quorum: b.node.QuorumUp(), ipvs: b.node.Dataplane() == "ipvs",
		xdp: func(iface string) bool { return b.node.Forwarder(iface) != nil }}
	b.mu.Lock()
	f.draining, f.iface = b.draining, b.iface
	b.mu.Unlock()
	xp := b.node.Forwarder(f.iface)
	pl := decide(cfg, f)

	b.mu.Lock()
	sp := b.speaker
	b.mu.Unlock()
	if sp == nil {
		return
	}
	ann, wd, err := sp.Set(pl.want())
	if err != nil {
		b.log.Error("updating BGP routes failed", "err", err)
	}
	for _, p := range ann {
		b.log.Info("route announced", "prefix", p, "virtual_servers", pl.routes[p].VirtualServers)
	}
	for _, p := range wd {
		reason := "no longer configured"
		if rs := pl.routes[p]; rs != nil {
			reason = rs.Reason
		}
		b.log.Warn("route withdrawn", "prefix", p, "reason", reason)
	}
	since := map[netip.Prefix]time.Time{}
	for _, r := range sp.Announced() {
		since[r.Prefix] = r.Since
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if xp != nil {
		b.setForwarding(xp, pl.forward)
	}
	b.routes = b.routes[:0]
	for _, p := range pl.order {
		rs := *pl.routes[p]
		rs.Announced = !since[p].IsZero()
		rs.Since = since[p]
		rs.Forwarded = b.forwarded[p.Addr()]
		b.routes = append(b.routes, rs)
	}
}

// setForwarding turns the XDP forwarding of ECMP addresses on and off to
// match forward; b.mu is held.
func (b *speakerRoutes) setForwarding(xp Forwarder, forward map[netip.Addr]bool) {
	for a := range b.forwarded {
		if !forward[a] {
			if err := xp.SetVIPActive(a, false); err != nil {
				b.log.Warn("stopping ECMP forwarding failed", "vip", a, "err", err)
				continue
			}
			delete(b.forwarded, a)
		}
	}
	for a := range forward {
		if !b.forwarded[a] {
			if err := xp.SetVIPActive(a, true); err != nil {
				b.log.Warn("starting ECMP forwarding failed", "vip", a, "err", err)
				continue
			}
			b.forwarded[a] = true
		}
	}
}

// stopSpeaker closes the sessions and stops the flow exchange.
func (b *speakerRoutes) stopSpeaker() {
	b.mu.Lock()
	sp, syncer := b.speaker, b.syncer
	b.speaker, b.syncer = nil, nil
	b.mu.Unlock()
	if sp != nil {
		sp.Stop()
	}
	if syncer != nil {
		syncer.Stop()
	}
}
