package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/bgp"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/flowsync"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// bgpTick is how often the announcements are re-evaluated: health, quorum
// and VRRP state are read, not pushed, so the hooks into the rest of the
// daemon stay small. A route is withdrawn at most this long after its
// virtual server stops being able to serve.
const bgpTick = 100 * time.Millisecond

// stopDrainWait is how long SIGTERM waits between withdrawing the routes
// and closing the sessions: the routers have the withdrawals within a round
// trip and move the flows to the other nodes while this node still
// forwards.
const stopDrainWait = 2 * time.Second

// BGPStatus is the bgp part of `xdpvip status`.
type BGPStatus struct {
	RouterID  string        `json:"router_id"`
	LocalAS   uint32        `json:"local_as"`
	Interface string        `json:"interface,omitempty"`
	Draining  bool          `json:"draining"`
	Sessions  []bgp.Session `json:"sessions"`
	Routes    []RouteStatus `json:"routes"`
	// FlowSync counts the flows exchanged with flow_sync_peer nodes.
	FlowSync *flowsync.Stats `json:"flow_sync,omitempty"`
}

// RouteStatus is one announceable prefix: announced, or why not.
type RouteStatus struct {
	Prefix         string    `json:"prefix"`
	VirtualServers []string  `json:"virtual_servers"`
	Mode           string    `json:"mode"`
	Announced      bool      `json:"announced"`
	Since          time.Time `json:"since,omitzero"`
	// Reason is why the prefix is withdrawn (empty while announced).
	Reason string `json:"reason,omitempty"`
	// Forwarded: the XDP program forwards the address (announce ecmp).
	Forwarded bool `json:"forwarded,omitempty"`
}

// DrainResult is the answer to the control socket's "drain" method.
type DrainResult struct {
	Withdrawn []string `json:"withdrawn"`
}

// bgpRoutes runs the speaker and keeps its announcements in line with what
// the node can serve (route health injection).
type bgpRoutes struct {
	d     *Daemon
	log   *slog.Logger
	kick  chan struct{}
	stop  context.CancelFunc
	doneC chan struct{}

	mu        sync.Mutex
	cfg       *config.BGP
	routerID  netip.Addr
	iface     string
	speaker   *bgp.Speaker
	syncer    *flowsync.Syncer // nil without flow_sync_peer
	draining  bool
	routes    []RouteStatus
	forwarded map[netip.Addr]bool
}

// startBGP starts the speaker when the configuration has a bgp block and
// registers the "drain" and "undrain" methods (which say so when there is
// none).
func (d *Daemon) startBGP(ctx context.Context, srv *control.Server) error {
	srv.Handle("drain", func(context.Context) (any, error) { return d.drainBGP() })
	srv.Handle("undrain", func(context.Context) (any, error) { return d.undrainBGP() })
	return d.ensureBGP(ctx)
}

// reloadBGP starts the speaker for a bgp block a reload added; a running
// speaker follows the configuration by itself (evaluate).
func (d *Daemon) reloadBGP(ctx context.Context) {
	if err := d.ensureBGP(ctx); err != nil {
		d.log.Error("reload: starting the bgp speaker failed", "err", err)
	}
}

// ensureBGP starts the speaker and its loop unless running or not
// configured.
func (d *Daemon) ensureBGP(ctx context.Context) error {
	d.mu.Lock()
	cfg, running := d.cfg, d.bgp != nil
	d.mu.Unlock()
	if cfg.BGP == nil || running {
		return nil
	}
	b := &bgpRoutes{d: d, log: d.log.With("component", "bgp"), kick: make(chan struct{}, 1),
		doneC: make(chan struct{}), forwarded: map[netip.Addr]bool{}}
	if err := b.startSpeaker(ctx, cfg.BGP); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stop = cancel
	d.mu.Lock()
	d.bgp = b
	d.mu.Unlock()
	go b.run(lctx)
	return nil
}

// startSpeaker starts GoBGP for cfg, filling in the defaults.
func (b *bgpRoutes) startSpeaker(ctx context.Context, cfg *config.BGP) error {
	rid, iface, err := bgpDefaults(cfg)
	if err != nil {
		return err
	}
	sc := bgp.Config{RouterID: rid, LocalAS: cfg.LocalAS, Logger: b.log, Restarting: b.inherited(iface)}
	for _, nb := range cfg.Neighbors {
		sc.Neighbors = append(sc.Neighbors, bgp.Neighbor{Addr: nb.Addr, RemoteAS: nb.RemoteAS,
			HoldTime: nb.HoldTime, BFD: nb.BFD, Password: nb.Password, GracefulRestart: nb.GracefulRestart})
	}
	var syncer *flowsync.Syncer
	if xp := b.d.planes.xdp[iface]; xp != nil && len(cfg.FlowSyncPeers) > 0 {
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
func (b *bgpRoutes) inherited(iface string) bool {
	b.mu.Lock()
	first := b.speaker == nil && len(b.forwarded) == 0 && b.cfg == nil
	b.mu.Unlock()
	xp := b.d.planes.xdp[iface]
	if !first || xp == nil {
		return false
	}
	b.d.mu.Lock()
	cfg := b.d.cfg
	b.d.mu.Unlock()
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

// bgpDefaults resolves router_id and interface when the configuration
// leaves them out: the source address and the interface of the route to
// the first neighbor.
func bgpDefaults(cfg *config.BGP) (netip.Addr, string, error) {
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

// ecmpInterfaces is where XDP must be attached for `announce ecmp`
// virtual servers: the bgp interface (a config may have no vrrp_instance).
func ecmpInterfaces(cfg *config.Config, log *slog.Logger) []string {
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
	_, iface, err := bgpDefaults(cfg.BGP)
	if err != nil {
		log.Error("announce ecmp: no interface for XDP", "err", err)
		return nil
	}
	return []string{iface}
}

func (b *bgpRoutes) run(ctx context.Context) {
	defer close(b.doneC)
	t := time.NewTicker(bgpTick)
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
func (b *bgpRoutes) evaluate(ctx context.Context) {
	d := b.d
	d.mu.Lock()
	cfg := d.cfg
	masters := map[string]vrrp.State{}
	for name, ri := range d.instances {
		masters[name] = ri.in.State()
	}
	d.mu.Unlock()

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

	quorum := map[string]bool{}
	for _, v := range d.lvsMgr.Views(nil) {
		quorum[v.Key.String()] = v.QuorumUp
	}
	b.mu.Lock()
	draining, iface := b.draining, b.iface
	b.mu.Unlock()
	xp := d.planes.xdp[iface]

	byPrefix := map[netip.Prefix]*RouteStatus{}
	var order []netip.Prefix
	want := map[netip.Prefix]bool{}
	forward := map[netip.Addr]bool{}
	for _, vs := range cfg.VirtualServers {
		if vs.Announce.Mode == "" {
			continue
		}
		in := bgp.Inputs{Mode: vs.Announce.Mode, Draining: draining, Quorum: true}
		keys, err := lvsconfig.ServiceKeys(cfg, vs)
		if err != nil {
			continue
		}
		for _, k := range keys {
			q, ok := quorum[k.String()]
			in.Quorum = in.Quorum && ok && q
		}
		switch vs.Announce.Mode {
		case config.AnnounceECMP:
			// Only XDP forwards a VIP the node does not hold: kernel IPVS
			// would need it on a local interface.
			in.Attached = xp != nil
		case config.AnnounceVRRP:
			st, running := masters[vs.Announce.Instance]
			in.InstanceRunning, in.Master = running, st == vrrp.StateMaster
			ic := cfg.Instance(vs.Announce.Instance)
			in.Attached = d.planes.kind == "ipvs" || (ic != nil && d.planes.xdp[ic.Interface] != nil)
		}
		ok, reason := bgp.Decide(in)
		p := bgp.HostPrefix(vs.Addr)
		rs := byPrefix[p]
		if rs == nil {
			rs = &RouteStatus{Prefix: p.String(), Mode: vs.Announce.Mode, Announced: true}
			byPrefix[p] = rs
			order = append(order, p)
		}
		rs.VirtualServers = append(rs.VirtualServers, vs.Key())
		// Every service on the address must be able to serve: a node
		// that cannot serve one port leaves the address to the others.
		if !ok && rs.Reason == "" {
			rs.Announced, rs.Reason = false, reason
		}
		if bgp.Forward(in) && xp != nil {
			forward[vs.Addr.Unmap()] = true
		}
	}
	for p, rs := range byPrefix {
		if rs.Announced {
			want[p] = true
		}
	}

	b.mu.Lock()
	sp := b.speaker
	b.mu.Unlock()
	if sp == nil {
		return
	}
	ann, wd, err := sp.Set(want)
	if err != nil {
		b.log.Error("updating BGP routes failed", "err", err)
	}
	for _, p := range ann {
		b.log.Info("route announced", "prefix", p, "virtual_servers", byPrefix[p].VirtualServers)
	}
	for _, p := range wd {
		reason := "no longer configured"
		if rs := byPrefix[p]; rs != nil {
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
	b.routes = b.routes[:0]
	for _, p := range order {
		rs := *byPrefix[p]
		rs.Announced = !since[p].IsZero()
		rs.Since = since[p]
		rs.Forwarded = b.forwarded[p.Addr()]
		b.routes = append(b.routes, rs)
	}
}

// drainBGP withdraws every route and keeps them withdrawn; the node still
// forwards what the routers send until they have converged.
func (d *Daemon) drainBGP() (DrainResult, error) {
	d.mu.Lock()
	b := d.bgp
	d.mu.Unlock()
	if b == nil {
		return DrainResult{}, fmt.Errorf("no bgp block: nothing is announced")
	}
	b.mu.Lock()
	b.draining = true
	sp := b.speaker
	b.mu.Unlock()
	res := DrainResult{Withdrawn: []string{}}
	if sp == nil {
		return res, nil
	}
	_, wd, err := sp.Set(nil)
	for _, p := range wd {
		res.Withdrawn = append(res.Withdrawn, p.String())
	}
	slices.Sort(res.Withdrawn)
	b.log.Warn("draining: every route withdrawn", "withdrawn", res.Withdrawn)
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return res, err
}

// undrainBGP ends a drain: the routes come back as the node can serve.
func (d *Daemon) undrainBGP() (DrainResult, error) {
	d.mu.Lock()
	b := d.bgp
	d.mu.Unlock()
	if b == nil {
		return DrainResult{}, fmt.Errorf("no bgp block: nothing is announced")
	}
	b.mu.Lock()
	b.draining = false
	b.mu.Unlock()
	b.log.Info("drain ended: routes announced again as the node can serve")
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return DrainResult{Withdrawn: []string{}}, nil
}

// drainBeforeStop withdraws the routes when any is announced (SIGTERM,
// SIGINT) and, when one is an ECMP route, gives the routers stopDrainWait
// to move its flows to the other nodes. A route announced for a VRRP
// instance has no other node to go to until this one leaves VRRP, so
// there is nothing to wait for.
func (d *Daemon) drainBeforeStop() {
	d.mu.Lock()
	b := d.bgp
	d.mu.Unlock()
	if b == nil {
		return
	}
	b.mu.Lock()
	sp := b.speaker
	ecmp := false
	for _, r := range b.routes {
		ecmp = ecmp || (r.Announced && r.Mode == config.AnnounceECMP)
	}
	b.mu.Unlock()
	if sp == nil || len(sp.Announced()) == 0 {
		return
	}
	if _, err := d.drainBGP(); err != nil {
		d.log.Error("draining before stop failed", "err", err)
	}
	if ecmp {
		time.Sleep(stopDrainWait)
	}
}

// stopBGP closes the sessions (the ECMP forwarding flags stay in the pinned
// maps, like VRRP's, so a restart does not interrupt forwarding).
func (d *Daemon) stopBGP() {
	d.mu.Lock()
	b := d.bgp
	d.bgp = nil
	d.mu.Unlock()
	if b == nil {
		return
	}
	b.stop()
	<-b.doneC
	b.stopSpeaker()
}

// stopSpeaker closes the sessions and stops the flow exchange.
func (b *bgpRoutes) stopSpeaker() {
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

// bgpStatus is the BGP part of Status, nil without a bgp block.
func (d *Daemon) bgpStatus() *BGPStatus {
	d.mu.Lock()
	b := d.bgp
	d.mu.Unlock()
	if b == nil {
		return nil
	}
	b.mu.Lock()
	st := &BGPStatus{RouterID: b.routerID.String(), Interface: b.iface, Draining: b.draining,
		Routes: append([]RouteStatus(nil), b.routes...)}
	if b.cfg != nil {
		st.LocalAS = b.cfg.LocalAS
	}
	sp := b.speaker
	if b.syncer != nil {
		fs := b.syncer.Stats()
		st.FlowSync = &fs
	}
	b.mu.Unlock()
	if sp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if ss, err := sp.Sessions(ctx); err == nil {
			st.Sessions = ss
		}
	}
	return st
}
