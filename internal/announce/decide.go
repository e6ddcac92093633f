package announce

import (
	"net/netip"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/bgp"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// facts is what the node knows when it decides its routes.
type facts struct {
	states   map[string]vrrp.State // running vrrp_instances by name
	quorum   map[string]bool       // by lvs.ServiceKey.String()
	draining bool
	ipvs     bool                    // the dataplane is kernel IPVS
	xdp      func(iface string) bool // an XDP program runs on iface
	iface    string                  // the bgp interface (ECMP forwarding)
}

// plan is one evaluation's decision: the announceable prefixes in
// configuration order, each with its verdict, and the ECMP addresses the
// XDP program forwards.
type plan struct {
	order   []netip.Prefix
	routes  map[netip.Prefix]*RouteStatus
	forward map[netip.Addr]bool
}

// want is the set of prefixes to announce.
func (p plan) want() map[netip.Prefix]bool {
	want := map[netip.Prefix]bool{}
	for pr, rs := range p.routes {
		if rs.Announced {
			want[pr] = true
		}
	}
	return want
}

// decide applies bgp.Decide to every announced virtual server of cfg. An
// address is announced only when every service on it can serve: a node
// that cannot serve one port leaves the address to the others.
func decide(cfg *config.Config, f facts) plan {
	pl := plan{routes: map[netip.Prefix]*RouteStatus{}, forward: map[netip.Addr]bool{}}
	ecmpXDP := f.xdp(f.iface)
	for _, vs := range cfg.VirtualServers {
		if vs.Announce.Mode == "" {
			continue
		}
		in := bgp.Inputs{Mode: vs.Announce.Mode, Draining: f.draining, Quorum: true}
		keys, err := lvsconfig.ServiceKeys(cfg, vs)
		if err != nil {
			continue
		}
		for _, k := range keys {
			q, ok := f.quorum[k.String()]
			in.Quorum = in.Quorum && ok && q
		}
		switch vs.Announce.Mode {
		case config.AnnounceECMP:
			// Only XDP forwards a VIP the node does not hold: kernel IPVS
			// would need it on a local interface.
			in.Attached = ecmpXDP
		case config.AnnounceVRRP:
			st, running := f.states[vs.Announce.Instance]
			in.InstanceRunning, in.Master = running, st == vrrp.StateMaster
			ic := cfg.Instance(vs.Announce.Instance)
			in.Attached = f.ipvs || (ic != nil && f.xdp(ic.Interface))
		}
		ok, reason := bgp.Decide(in)
		p := bgp.HostPrefix(vs.Addr)
		rs := pl.routes[p]
		if rs == nil {
			rs = &RouteStatus{Prefix: p.String(), Mode: vs.Announce.Mode, Announced: true}
			pl.routes[p] = rs
			pl.order = append(pl.order, p)
		}
		rs.VirtualServers = append(rs.VirtualServers, vs.Key())
		if !ok && rs.Reason == "" {
			rs.Announced, rs.Reason = false, reason
		}
		if bgp.Forward(in) && ecmpXDP {
			pl.forward[vs.Addr.Unmap()] = true
		}
	}
	return pl
}
