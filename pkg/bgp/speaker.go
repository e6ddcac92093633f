package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgpmetrics "github.com/osrg/gobgp/v4/pkg/metrics"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Neighbor is one BGP peer (a router).
type Neighbor struct {
	Addr     netip.Addr
	RemoteAS uint32
	// HoldTime 0 means no keepalives (RFC 4271); keepalives go every
	// HoldTime/3.
	HoldTime time.Duration
	BFD      bool
	Password string
	// Port is the neighbor's TCP port, 0 for BGP's 179.
	Port uint16
	// GracefulRestart is the advertised restart time (RFC 4724), 0: off.
	GracefulRestart time.Duration
}

// Config configures a Speaker.
type Config struct {
	RouterID  netip.Addr // IPv4
	LocalAS   uint32
	Neighbors []Neighbor
	Logger    *slog.Logger
	// Restarting sets the Restart State bit towards graceful-restart
	// neighbors: this speaker replaces one that died, whose routes the
	// routers still hold.
	Restarting bool
}

// BFD timers: 300 ms × 3, detection within 1 s.
const (
	bfdIntervalMicros = 300_000
	bfdMultiplier     = 3
)

// retryInterval is how soon a lost or refused session is tried again
// (GoBGP's defaults, 120 s connect retry and 30 s idle hold after a reset,
// are meant for long-lived WAN sessions, not a rack).
const retryInterval = time.Second

// Speaker is the embedded GoBGP server: it keeps sessions with the
// neighbors and announces host routes with itself as next hop.
type Speaker struct {
	srv *server.BgpServer
	log *slog.Logger

	mu        sync.Mutex
	announced map[netip.Prefix]time.Time
}

// Start starts the BGP server and its neighbors. It does not listen on
// TCP port 179: the speaker opens the sessions (a BGP speaker may be passive
// on one side), so several daemons and routing daemons can share a host.
func Start(ctx context.Context, cfg Config) (*Speaker, error) {
	if !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("bgp: router id %v is not an IPv4 address", cfg.RouterID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	srv := server.NewBgpServer(server.LoggerOption(cfg.Logger.With("component", "gobgp"), lvl))
	go srv.Serve()
	s := &Speaker{srv: srv, log: cfg.Logger, announced: map[netip.Prefix]time.Time{}}
	ok := false
	defer func() {
		if !ok {
			srv.Stop()
		}
	}()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.LocalAS, RouterId: cfg.RouterID.String(), ListenPort: -1,
	}}); err != nil {
		return nil, fmt.Errorf("bgp: start: %w", err)
	}
	for _, nb := range cfg.Neighbors {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(nb, cfg.Restarting)}); err != nil {
			return nil, fmt.Errorf("bgp: neighbor %v: %w", nb.Addr, err)
		}
	}
	ok = true
	return s, nil
}

func peerConfig(nb Neighbor, restarting bool) *api.Peer {
	hold := uint64(nb.HoldTime / time.Second)
	retry := uint64(retryInterval / time.Second)
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if nb.Addr.Is6() {
		fam.Afi = api.Family_AFI_IP6
	}
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: nb.Addr.String(), PeerAsn: nb.RemoteAS, AuthPassword: nb.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(hold/3, 1), ConnectRetry: retry, IdleHoldTimeAfterReset: retry,
		}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}},
	}
	if nb.Port != 0 {
		p.Transport = &api.Transport{RemotePort: uint32(nb.Port)}
	}
	if nb.GracefulRestart > 0 {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(nb.GracefulRestart / time.Second),
			LocalRestarting: restarting}
		p.AfiSafis[0].MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	if nb.BFD {
		p.Bfd = &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: bfdIntervalMicros,
			RequiredMinimumReceive: bfdIntervalMicros, DetectionMultiplier: bfdMultiplier}
	}
	return p
}

// path is the locally originated route for prefix; the unspecified next
// hop makes GoBGP send its session address (next-hop-self).
func path(prefix netip.Prefix, withdraw bool) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(prefix)
	if err != nil {
		return nil, err
	}
	p := &apiutil.Path{Nlri: nlri, Withdrawal: withdraw}
	origin := bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)
	if prefix.Addr().Is4() {
		p.Family = bgp.RF_IPv4_UC
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		p.Attrs = []bgp.PathAttributeInterface{origin, nh}
		return p, nil
	}
	p.Family = bgp.RF_IPv6_UC
	mp, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
	if err != nil {
		return nil, err
	}
	p.Attrs = []bgp.PathAttributeInterface{origin, mp}
	return p, nil
}

// Announce originates prefix (idempotent).
func (s *Speaker) Announce(prefix netip.Prefix) error {
	p, err := path(prefix, false)
	if err != nil {
		return fmt.Errorf("bgp: announce %v: %w", prefix, err)
	}
	if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("bgp: announce %v: %w", prefix, err)
	}
	s.mu.Lock()
	if _, ok := s.announced[prefix]; !ok {
		s.announced[prefix] = time.Now()
	}
	s.mu.Unlock()
	return nil
}

// Withdraw stops originating prefix.
func (s *Speaker) Withdraw(prefix netip.Prefix) error {
	p, err := path(prefix, true)
	if err != nil {
		return fmt.Errorf("bgp: withdraw %v: %w", prefix, err)
	}
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("bgp: withdraw %v: %w", prefix, err)
	}
	s.mu.Lock()
	delete(s.announced, prefix)
	s.mu.Unlock()
	return nil
}

// Set announces exactly want: the prefixes not yet announced are
// announced, the others withdrawn. It returns what it changed.
func (s *Speaker) Set(want map[netip.Prefix]bool) (announced, withdrawn []netip.Prefix, err error) {
	s.mu.Lock()
	have := make(map[netip.Prefix]bool, len(s.announced))
	for p := range s.announced {
		have[p] = true
	}
	s.mu.Unlock()
	ann, wd := Diff(have, want)
	var errs []error
	for _, p := range wd {
		if e := s.Withdraw(p); e != nil {
			errs = append(errs, e)
			continue
		}
		withdrawn = append(withdrawn, p)
	}
	for _, p := range ann {
		if e := s.Announce(p); e != nil {
			errs = append(errs, e)
			continue
		}
		announced = append(announced, p)
	}
	return announced, withdrawn, errors.Join(errs...)
}

// Route is an announced prefix and since when.
type Route struct {
	Prefix netip.Prefix `json:"prefix"`
	Since  time.Time    `json:"since"`
}

// Announced lists the originated prefixes, sorted.
func (s *Speaker) Announced() []Route {
	s.mu.Lock()
	out := make([]Route, 0, len(s.announced))
	for p, t := range s.announced {
		out = append(out, Route{Prefix: p, Since: t})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Route) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return out
}

// Session is one neighbor's state as `xdpvip status` shows it.
type Session struct {
	Neighbor string `json:"neighbor"`
	RemoteAS uint32 `json:"remote_as"`
	// State is BGP's FSM state: IDLE, CONNECT, ACTIVE, OPENSENT,
	// OPENCONFIRM or ESTABLISHED.
	State string `json:"state"`
	// Uptime is when the session was last established (zero if never).
	Uptime   time.Time `json:"uptime,omitzero"`
	HoldTime uint64    `json:"hold_time"` // negotiated, seconds
	BFD      string    `json:"bfd,omitempty"`
	Flops    uint32    `json:"flops"`
	// LastError is why the session went down last, if it did.
	LastError string `json:"last_error,omitempty"`
}

// Sessions lists the neighbors' sessions in configuration order.
func (s *Speaker) Sessions(ctx context.Context) ([]Session, error) {
	var out []Session
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		st := p.GetState()
		ss := Session{Neighbor: p.GetConf().GetNeighborAddress(), RemoteAS: p.GetConf().GetPeerAsn(),
			State: strings.TrimPrefix(st.GetSessionState().String(), "SESSION_STATE_"), Flops: st.GetFlops(),
			LastError: st.GetDisconnectMessage()}
		if t := p.GetTimers().GetState(); t != nil {
			ss.HoldTime = t.GetNegotiatedHoldTime()
			if up := t.GetUptime(); up != nil && up.GetSeconds() > 0 && ss.State == "ESTABLISHED" {
				ss.Uptime = up.AsTime()
			}
		}
		if b := st.GetBfdState(); b != nil && b.GetSessionState() != api.BfdSessionState_BFD_SESSION_STATE_UNSPECIFIED {
			ss.BFD = strings.TrimPrefix(b.GetSessionState().String(), "BFD_SESSION_STATE_")
		}
		out = append(out, ss)
	})
	return out, err
}

// Stop withdraws nothing by itself: it closes every session (a Cease
// NOTIFICATION), so the routers drop the routes at once.
func (s *Speaker) Stop() {
	s.srv.Stop()
	s.mu.Lock()
	s.announced = map[netip.Prefix]time.Time{}
	s.mu.Unlock()
}

// Collector is GoBGP's own Prometheus collector for this speaker's
// sessions (bgp_peer_state, bgp_routes_advertised, message counters...).
func (s *Speaker) Collector() prometheus.Collector { return gobgpmetrics.NewBgpCollector(s.srv) }

// DescribeCollector sends the descriptors of Collector without a speaker,
// for a registry that outlives speakers (a reload restarts them).
func DescribeCollector(ch chan<- *prometheus.Desc) {
	gobgpmetrics.NewBgpCollector(nil).Describe(ch)
}
