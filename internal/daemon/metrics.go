package daemon

import (
	"errors"
	"runtime"

	"github.com/xdpvip/xdpvip/internal/metrics"
	"github.com/xdpvip/xdpvip/internal/version"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
	"github.com/xdpvip/xdpvip/pkg/healthcheck"
)

// keepalivedState numbers states as keepalived (and its exporters) do.
var keepalivedState = map[string]int{
	"INIT": metrics.StateInit, "BACKUP": metrics.StateBackup,
	"MASTER": metrics.StateMaster, "FAULT": metrics.StateFault,
}

// MetricsSnapshot is what one Prometheus scrape reads.
func (d *Daemon) MetricsSnapshot() metrics.Snapshot {
	st := d.Status()
	var s metrics.Snapshot
	for _, in := range st.Instances {
		mi := metrics.Instance{
			Name: in.Name, Interface: in.Interface, VRID: in.VRID, State: keepalivedState[in.State],
			AdvertsIn: in.AdvertsIn, AdvertsOut: in.AdvertsOut, Drops: in.Drops,
			BecomeMaster: in.BecomeMaster, ReleaseMaster: in.ReleaseMaster,
			PriorityZeroIn: in.PriorityZeroIn, PriorityZeroOut: in.PriorityZeroOut,
			GARPDelays: in.GARPRounds, Failovers: in.BecomeMasterBy, LargestGapRatio: in.LargestGapRatio,
			Conflicts: in.Conflicts, Reannounced: in.ConflictReannounced, ConflictActive: in.ConflictActive,
		}
		if g := in.AdvertGaps; g != nil {
			mi.AdvertGaps = &metrics.Histogram{Bounds: g.Bounds, Counts: g.Counts, Count: g.Count, Sum: g.Sum}
		}
		for _, v := range in.VIPs {
			mi.VIPs = append(mi.VIPs, addrOf(v))
		}
		s.Instances = append(s.Instances, mi)
	}
	for _, sc := range st.Scripts {
		if sc.Disabled != "" {
			// keepalived frees a disabled script: no series, rather
			// than one that reads as a failing script.
			continue
		}
		s.Scripts = append(s.Scripts, metrics.Script{Name: sc.Name, OK: sc.OK, Running: sc.Running})
	}
	s.XDP, s.Maps = d.planes.xdpMetrics()
	d.mu.Lock()
	s.Reloads = map[string]uint64{"applied": uint64(d.reloads), "refused": uint64(d.refusedReloads)}
	d.mu.Unlock()
	for _, m := range d.monitors.List() {
		for _, c := range m.Monitor.Status().Checkers {
			h := &metrics.Histogram{Count: c.Latency.Count, Sum: c.Latency.Sum.Seconds()}
			for i, b := range healthcheck.LatencyBounds {
				h.Bounds = append(h.Bounds, b.Seconds())
				if i < len(c.Latency.Counts) {
					h.Counts = append(h.Counts, c.Latency.Counts[i])
				} else {
					h.Counts = append(h.Counts, 0)
				}
			}
			s.Checks = append(s.Checks, metrics.Check{
				Service: m.Spec.VS.String(), Backend: m.Spec.RS.String(), Kind: checkerKind(c.Name),
				Success: c.Successes, Failure: c.Failures, Latency: h,
			})
		}
	}
	if l, err := d.LVS(); err == nil {
		for _, v := range l.Services {
			ms := metrics.Service{
				Protocol: v.Protocol, Port: int(v.Port), Mark: v.Fwmark,
				Conns: v.Conns, PktsIn: v.InPkts, PktsOut: v.OutPkts, BytesIn: v.InBytes, BytesOut: v.OutBytes,
			}
			if v.Addr.IsValid() {
				ms.Address = v.Addr.String()
			}
			for _, dv := range v.Dests {
				ms.Backends = append(ms.Backends, metrics.Backend{
					Address: dv.Addr.String(), Port: int(dv.Port), Weight: dv.Weight, Healthy: dv.Up,
					Conns: dv.Conns, PktsIn: dv.InPkts, PktsOut: dv.OutPkts, BytesIn: dv.InBytes, BytesOut: dv.OutBytes,
					ActiveConn: dv.ActiveConn, InactConn: dv.InactConn,
				})
			}
			s.Services = append(s.Services, ms)
		}
	}
	return s
}

// checkerKind is the checker's keyword (TCP_CHECK, HTTP_GET…), the first
// word of its name.
func checkerKind(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] == ' ' {
			return name[:i]
		}
	}
	return name
}

// addrOf strips the prefix length of a VIP as status shows it ("a/len").
func addrOf(v string) string {
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == '/' {
			return v[:i]
		}
	}
	return v
}

// healthy answers /healthz: the daemon runs every configured instance.
func (d *Daemon) healthy() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.instances) < len(d.cfg.Instances) {
		return errors.New("not every vrrp_instance is running")
	}
	return nil
}

// serveMetrics starts /metrics and /healthz on opts.MetricsAddress; empty
// disables them.
func (d *Daemon) serveMetrics() (*metrics.Server, error) {
	if d.opts.MetricsAddress == "" {
		return nil, nil
	}
	reg := metrics.Registry(d, map[string]string{
		"version": version.Version, "commit": version.Commit,
		"bpf_object": dataplane.ObjectHash(), "goversion": runtime.Version(),
	})
	reg.MustRegister(d.routes.Collector())
	return metrics.Listen(d.opts.MetricsAddress, reg, d.healthy, d.log)
}

// xdpMetrics are every XDP program's counters (drops by reason, valid
// adverts, forwarded frames) and map occupancy, by interface.
func (p *planes) xdpMetrics() (map[string]map[string]uint64, map[string]map[string]metrics.MapUsage) {
	if len(p.xdp) == 0 {
		return nil, nil
	}
	counters := map[string]map[string]uint64{}
	usage := map[string]map[string]metrics.MapUsage{}
	for name, xp := range p.xdp {
		if c, err := xp.Counters(); err == nil {
			counters[name] = c
		}
		if u, err := xp.MapUsage(); err == nil {
			usage[name] = map[string]metrics.MapUsage{}
			for m, mu := range u {
				usage[name][m] = metrics.MapUsage{Entries: mu.Entries, MaxEntries: mu.MaxEntries}
			}
		}
	}
	return counters, usage
}
