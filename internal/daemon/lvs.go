package daemon

import (
	"encoding/json"
	"fmt"
	"time"

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

// monitorKey identifies a monitor's configuration, so a reload keeps the
// monitors (and the health they learnt) whose configuration did not change.
func monitorKey(vs *config.VirtualServer, rs *config.RealServer, key lvs.ServiceKey) string {
	r := *rs
	r.Pos = config.Pos{}
	checkers := make([]config.Checker, len(rs.Checkers))
	for i, c := range rs.Checkers {
		checkers[i] = *c
		checkers[i].Pos = config.Pos{}
	}
	r.Checkers = nil
	// JSON, not fmt: the config types embed Pos, whose String method fmt
	// would print instead of the fields.
	b, err := json.Marshal(struct {
		Key       string
		DelayLoop time.Duration
		Omega     bool
		RS        config.RealServer
		Checkers  []config.Checker
	}{key.String(), vs.DelayLoop, vs.Omega, r, checkers})
	if err != nil {
		// Cannot happen for these types; a unique key restarts the monitor.
		return fmt.Sprintf("%v|%p", key, rs)
	}
	return string(b)
}

// applyLVS configures the virtual-server manager and (re)starts the health
// monitors whose configuration changed.
func (d *Daemon) applyLVS(cfg *config.Config) error {
	vss, err := lvsVirtualServers(cfg)
	if err != nil {
		return err
	}
	if err := d.lvsMgr.Configure(vss); err != nil {
		return fmt.Errorf("virtual servers: %w", err)
	}
	specs, err := healthMonitors(cfg, d.notifier)
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	var start []*runningMonitor
	d.mu.Lock()
	for _, spec := range specs {
		keys[spec.key] = true
		if _, ok := d.monitors[spec.key]; ok {
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
		vsKey, rsKey := m.spec.vs, m.spec.rs
		m.spec.cfg.Logger = d.log
		m.spec.cfg.OnChange = func(ev healthcheck.Event) {
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
		mon, err := healthcheck.NewMonitor(m.spec.cfg)
		if err != nil {
			return fmt.Errorf("real server %s: %w", m.spec.cfg.RealServer, err)
		}
		m.mon = mon
		d.mu.Lock()
		d.monitors[m.spec.key] = m
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
		keys, err := serviceKeys(cfg, vs)
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
				d.notifier.Notify(scriptCommand(s, 0))
			}
		}
	}
}
