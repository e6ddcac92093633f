package lvs

import (
	"net/netip"
	"time"
)

// Real-server states in a listing.
const (
	StateActive    = "active"     // live and programmed with its weight
	StateInhibited = "inhibited"  // down, listed with weight 0 (inhibit_on_failure)
	StateDown      = "down"       // down and removed from the dataplane
	StateStandby   = "standby"    // live but displaced by the sorry server
	StateSorry     = "sorry"      // sorry server in use
	StateSorryIdle = "sorry-idle" // sorry server listed with weight 0 (sorry_server_inhibit)
	StateSorryOff  = "sorry-off"  // sorry server not in use and not listed
)

// ServiceView is one virtual server as `xdpvip lvs` shows it: the Manager's
// model combined with the backend's counters.
type ServiceView struct {
	Key                    ServiceKey `json:"-"`
	Protocol               string     `json:"protocol,omitempty"` // TCP, UDP, SCTP; empty for fwmark
	Addr                   netip.Addr `json:"address,omitzero"`
	Port                   uint16     `json:"port"`
	Fwmark                 uint32     `json:"fwmark,omitempty"`
	Family                 uint8      `json:"family"`
	Scheduler              string     `json:"scheduler"`
	PersistenceTimeout     uint32     `json:"persistence_timeout"` // seconds, 0 = none
	PersistenceGranularity int        `json:"persistence_granularity,omitempty"`
	OnePacket              bool       `json:"ops,omitempty"`
	Quorum                 int        `json:"quorum"`
	Hysteresis             int        `json:"hysteresis"`
	LiveWeight             int        `json:"live_weight"`
	QuorumUp               bool       `json:"quorum_up"`
	SorryInUse             bool       `json:"sorry_server_in_use"`
	Counters
	Dests []DestView `json:"real_servers"`
}

// DestView is one real server (or the sorry server) of a ServiceView.
type DestView struct {
	Addr   netip.Addr `json:"address"`
	Port   uint16     `json:"port"`
	Method string     `json:"method"` // DR, NAT, TUN
	// Tunnel is a TUN server's encapsulation; nil for DR and NAT.
	Tunnel *TunnelView `json:"tunnel,omitempty"`
	// Weight is what the dataplane uses now (0 when not programmed);
	// ConfiguredWeight is the configured one, EffectiveWeight the one in
	// force (configured, or set by a misc_dynamic checker).
	Weight           int    `json:"weight"`
	ConfiguredWeight int    `json:"configured_weight"`
	EffectiveWeight  int    `json:"effective_weight"`
	Programmed       bool   `json:"programmed"`
	Up               bool   `json:"up"`
	State            string `json:"state"`
	Sorry            bool   `json:"sorry_server,omitempty"`
	ActiveConn       uint64 `json:"active_conns"`
	InactConn        uint64 `json:"inactive_conns"`
	Counters
}

// TunnelView is a TUN server's tunnel in a listing, in keepalived's words
// with the defaults spelled out.
type TunnelView struct {
	Type string `json:"type"`           // ipip, gue, gre
	Port uint16 `json:"port,omitempty"` // gue's UDP port
	Csum string `json:"csum"`           // nocsum, csum, remcsum
}

func tunnelView(method string, t Tunnel) *TunnelView {
	if method != "TUN" {
		return nil
	}
	return &TunnelView{Type: t.TypeName(), Port: t.Port, Csum: t.CsumName()}
}

// Counters are connection, packet and byte counters.
type Counters struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
}

// Views returns every virtual server with all its configured real servers
// (programmed or not) and its sorry server, in ipvsadm's order, with the
// counters from stats (as Backend.Stats returns them; nil for none).
func (m *Manager) Views(stats []ServiceStats) []ServiceView {
	byKey := make(map[ServiceKey]*ServiceStats, len(stats))
	for i := range stats {
		byKey[canonicalKey(stats[i].Key)] = &stats[i]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	views := make([]ServiceView, 0, len(m.services))
	for _, st := range m.services {
		views = append(views, st.view(byKey[st.cfg.Key]))
	}
	return views
}

func (st *vsState) view(stats *ServiceStats) ServiceView {
	k := st.cfg.Key
	v := ServiceView{
		Key:                    k,
		Addr:                   k.Addr,
		Port:                   k.Port,
		Fwmark:                 k.Fwmark,
		Family:                 keyFamily(k),
		Scheduler:              st.cfg.Scheduler,
		PersistenceTimeout:     uint32(st.cfg.PersistenceTimeout / time.Second),
		PersistenceGranularity: st.cfg.PersistenceGranularity,
		OnePacket:              st.cfg.OnePacket,
		Quorum:                 st.cfg.Quorum,
		Hysteresis:             st.cfg.Hysteresis,
		LiveWeight:             st.live,
		QuorumUp:               st.quorate,
		SorryInUse:             st.sorryInUse(),
	}
	if k.Fwmark == 0 {
		v.Protocol = protoName(k.Proto)
	}
	destStats := map[RealServerKey]*DestStats{}
	if stats != nil {
		v.Counters = Counters{Conns: stats.Conns, InPkts: stats.PktsIn, OutPkts: stats.PktsOut, InBytes: stats.BytesIn, OutBytes: stats.BytesOut}
		for i := range stats.Dests {
			d := &stats.Dests[i]
			destStats[RealServerKey{d.Addr.Unmap(), d.Port}] = d
		}
	}
	programmed := make(map[RealServerKey]int, len(st.desired.Dests))
	for _, d := range st.desired.Dests {
		programmed[RealServerKey{d.Addr, d.Port}] = d.Weight
	}
	add := func(dv DestView) {
		key := RealServerKey{dv.Addr, dv.Port}
		dv.Weight, dv.Programmed = programmed[key]
		if s := destStats[key]; s != nil {
			dv.ActiveConn, dv.InactConn = s.ActiveConn, s.InactConn
			dv.Counters = Counters{Conns: s.Conns, InPkts: s.PktsIn, OutPkts: s.PktsOut, InBytes: s.BytesIn, OutBytes: s.BytesOut}
		}
		v.Dests = append(v.Dests, dv)
	}
	sorry := st.sorryInUse()
	for _, rs := range st.reals {
		dv := DestView{Addr: rs.key.Addr, Port: rs.key.Port, Method: rs.method, Tunnel: tunnelView(rs.method, rs.tunnel), ConfiguredWeight: rs.configured, EffectiveWeight: rs.weight, Up: rs.up}
		switch {
		case rs.up && sorry:
			dv.State = StateStandby
		case rs.up:
			dv.State = StateActive
		case rs.inhibit:
			dv.State = StateInhibited
		default:
			dv.State = StateDown
		}
		add(dv)
	}
	if s := st.sorry; s != nil {
		dv := DestView{Addr: s.Addr, Port: s.Port, Method: s.Method, Tunnel: tunnelView(s.Method, s.Tunnel), ConfiguredWeight: s.Weight, EffectiveWeight: s.Weight, Up: true, Sorry: true}
		switch {
		case sorry:
			dv.State = StateSorry
		case s.Inhibit:
			dv.State = StateSorryIdle
		default:
			dv.State = StateSorryOff
		}
		add(dv)
	}
	// Keep ipvsadm's destination order (address, then port).
	sortDestViews(v.Dests)
	return v
}
