// Package announce is route health injection: it runs the embedded BGP
// speaker (pkg/bgp) for the configuration's bgp block and keeps its routes
// in line with what the node can serve, reading every tick the running
// configuration, the vrrp_instances' states, the virtual servers' quorum
// and the dataplane (Node). For `announce ecmp` virtual servers it also
// turns the XDP program's forwarding of the address on and off, and runs
// the flow exchange with flow_sync_peer nodes (pkg/flowsync).
package announce

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/xdpvip/xdpvip/pkg/bgp"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/flowsync"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// tick is how often the announcements are re-evaluated: health, quorum
// and VRRP state are read, not pushed, so the hooks into the rest of the
// daemon stay small. A route is withdrawn at most this long after its
// virtual server stops being able to serve.
const tick = 100 * time.Millisecond

// stopDrainWait is how long SIGTERM waits between withdrawing the routes
// and closing the sessions: the routers have the withdrawals within a round
// trip and move the flows to the other nodes while this node still
// forwards.
const stopDrainWait = 2 * time.Second

// Node is what the routes are decided from, read every tick.
type Node interface {
	// Running is the configuration in force and the state of every
	// running vrrp_instance by name, read together.
	Running() (*config.Config, map[string]vrrp.State)
	// QuorumUp says, by lvs.ServiceKey.String(), whether each virtual
	// service has quorum.
	QuorumUp() map[string]bool
	// Dataplane is "xdp", "ipvs" or "none".
	Dataplane() string
	// Forwarder is the XDP program on iface, nil when there is none.
	Forwarder(iface string) Forwarder
}

// Forwarder is the XDP program of an interface as ECMP uses it: the
// per-VIP forwarding flag and the flow table flow_sync_peer exchanges.
type Forwarder interface {
	flowsync.Table
	VIPActive(vip netip.Addr) (bool, error)
	SetVIPActive(vip netip.Addr, on bool) error
}

// Status is the bgp part of `xdpvip status`.
type Status struct {
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

// Routes is the node's route health injection: nothing until a bgp block
// starts the speaker, then the speaker and its evaluation loop.
type Routes struct {
	node Node
	log  *slog.Logger

	mu sync.Mutex
	r  *speakerRoutes // nil without a bgp block
}

// New returns the routes of node; Start starts them.
func New(node Node, log *slog.Logger) *Routes {
	return &Routes{node: node, log: log}
}

// speakerRoutes runs the speaker and keeps its announcements in line with
// what the node can serve.
type speakerRoutes struct {
	node  Node
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

// Start starts the speaker and its loop when the configuration has a bgp
// block, unless they run already: at start and after every reload (a
// running speaker follows the configuration by itself).
func (rs *Routes) Start(ctx context.Context) error {
	cfg, _ := rs.node.Running()
	rs.mu.Lock()
	running := rs.r != nil
	rs.mu.Unlock()
	if cfg.BGP == nil || running {
		return nil
	}
	b := &speakerRoutes{node: rs.node, log: rs.log.With("component", "bgp"), kick: make(chan struct{}, 1),
		doneC: make(chan struct{}), forwarded: map[netip.Addr]bool{}}
	if err := b.startSpeaker(ctx, cfg.BGP); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stop = cancel
	rs.mu.Lock()
	rs.r = b
	rs.mu.Unlock()
	go b.run(lctx)
	return nil
}

func (rs *Routes) current() *speakerRoutes {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.r
}

// Drain withdraws every route and keeps them withdrawn; the node still
// forwards what the routers send until they have converged.
func (rs *Routes) Drain() (DrainResult, error) {
	b, sp, err := rs.setDraining(true)
	if err != nil {
		return DrainResult{}, err
	}
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
	b.wake()
	return res, err
}

// Undrain ends a drain: the routes come back as the node can serve.
func (rs *Routes) Undrain() (DrainResult, error) {
	b, _, err := rs.setDraining(false)
	if err != nil {
		return DrainResult{}, err
	}
	b.log.Info("drain ended: routes announced again as the node can serve")
	b.wake()
	return DrainResult{Withdrawn: []string{}}, nil
}

// setDraining sets or clears the drain and returns the running speaker.
func (rs *Routes) setDraining(on bool) (*speakerRoutes, *bgp.Speaker, error) {
	b := rs.current()
	if b == nil {
		return nil, nil, fmt.Errorf("no bgp block: nothing is announced")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draining = on
	return b, b.speaker, nil
}

// DrainBeforeStop withdraws the routes when any is announced (SIGTERM,
// SIGINT) and, when one is an ECMP route, gives the routers stopDrainWait
// to move its flows to the other nodes. A route announced for a VRRP
// instance has no other node to go to until this one leaves VRRP, so
// there is nothing to wait for.
func (rs *Routes) DrainBeforeStop() {
	b := rs.current()
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
	if _, err := rs.Drain(); err != nil {
		rs.log.Error("draining before stop failed", "err", err)
	}
	if ecmp {
		time.Sleep(stopDrainWait)
	}
}

// Stop closes the sessions (the ECMP forwarding flags stay in the pinned
// maps, like VRRP's, so a restart does not interrupt forwarding).
func (rs *Routes) Stop() {
	rs.mu.Lock()
	b := rs.r
	rs.r = nil
	rs.mu.Unlock()
	if b == nil {
		return
	}
	b.stop()
	<-b.doneC
	b.stopSpeaker()
}

// Status is the BGP part of the daemon's status, nil without a bgp block.
func (rs *Routes) Status() *Status {
	b := rs.current()
	if b == nil {
		return nil
	}
	b.mu.Lock()
	st := &Status{RouterID: b.routerID.String(), Interface: b.iface, Draining: b.draining,
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

// wake has the loop evaluate now.
func (b *speakerRoutes) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}
