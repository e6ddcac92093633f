package daemon

import (
	"fmt"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/healthcheck"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// LVSList is the answer to the control socket's "lvs" method.
type LVSList struct {
	Dataplane string            `json:"dataplane"`
	Services  []lvs.ServiceView `json:"services"`
}

// LVS returns the virtual servers with their health and the backend's
// counters.
func (d *Daemon) LVS() (LVSList, error) {
	stats, err := d.planes.backend().Stats()
	if err != nil {
		return LVSList{}, fmt.Errorf("reading %s counters: %w", d.planes.name(), err)
	}
	return LVSList{Dataplane: d.planes.name(), Services: d.lvsMgr.Views(stats)}, nil
}

// applyLVS configures the virtual-server manager and (re)starts the health
// monitors whose configuration changed.
func (d *Daemon) applyLVS(cfg *config.Config) error {
	vss, err := lvsconfig.VirtualServers(cfg)
	if err != nil {
		return err
	}
	if err := d.lvsMgr.Configure(vss); err != nil {
		return fmt.Errorf("virtual servers: %w", err)
	}
	specs, err := lvsconfig.Monitors(cfg, d.notifier)
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	var start []*runningMonitor
	d.mu.Lock()
	for _, spec := range specs {
		keys[spec.Key] = true
		if _, ok := d.monitors[spec.Key]; ok {
			continue
		}
		start = append(start, &runningMonitor{spec: spec})
	}
	var stop []*runningMonitor
	for k, m := range d.monitors {
		if !keys[k] {
			stop = append(stop, m)
			delete(d.monitors, k)
		}
	}
	d.mu.Unlock()
	for _, m := range stop {
		m.mon.Stop()
	}
	for _, m := range start {
		services, rsKey := m.spec.Services(), m.spec.RS
		m.spec.Config.Logger = d.log
		m.spec.Config.OnChange = func(ev healthcheck.Event) {
			for _, vsKey := range services {
				var err error
				switch ev.Kind {
				case healthcheck.WeightChanged:
					err = d.lvsMgr.SetWeight(vsKey, rsKey, ev.Weight)
				default:
					err = d.lvsMgr.SetHealth(vsKey, rsKey, ev.Up)
					if err == nil && ev.Up {
						err = d.lvsMgr.SetWeight(vsKey, rsKey, ev.Weight)
					}
				}
				if err != nil {
					d.log.Error("updating real server failed", "virtual_server", vsKey.String(), "real_server", rsKey.String(), "err", err)
				}
			}
		}
		mon, err := healthcheck.NewMonitor(m.spec.Config)
		if err != nil {
			return fmt.Errorf("real server %s: %w", m.spec.Config.RealServer, err)
		}
		m.mon = mon
		d.mu.Lock()
		d.monitors[m.spec.Key] = m
		d.mu.Unlock()
		mon.Start()
	}
	return nil
}

// onQuorum runs the virtual server's quorum_up / quorum_down script.
func (d *Daemon) onQuorum(ev lvs.QuorumEvent) {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	d.log.Warn("virtual server quorum changed", "virtual_server", ev.Service.String(), "up", ev.Up,
		"live_weight", ev.LiveWeight, "quorum", ev.Quorum, "hysteresis", ev.Hysteresis)
	for _, vs := range cfg.VirtualServers {
		keys, err := lvsconfig.ServiceKeys(cfg, vs)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if k != ev.Service {
				continue
			}
			s := vs.QuorumDown
			if ev.Up {
				s = vs.QuorumUp
			}
			if !s.IsZero() {
				d.notifier.Notify(lvsconfig.ScriptCommand(s, 0))
			}
		}
	}
}
