package daemon

import (
	"fmt"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/config"
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
// monitors whose configuration changed (internal/monitors).
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
	return d.monitors.Apply(specs)
}

// onQuorum runs the virtual server's quorum_up / quorum_down script.
func (d *Daemon) onQuorum(ev lvs.QuorumEvent) {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	d.log.Warn("virtual server quorum changed", "virtual_server", ev.Service.String(), "up", ev.Up,
		"live_weight", ev.LiveWeight, "quorum", ev.Quorum, "hysteresis", ev.Hysteresis)
	for _, c := range lvsconfig.QuorumScripts(cfg, ev.Service, ev.Up) {
		d.notifier.Notify(c)
	}
}
