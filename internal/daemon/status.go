package daemon

import (
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// InstanceStatus is one vrrp_instance as `xdpvip status` shows it.
type InstanceStatus = instance.Status

// ScriptStatus is one vrrp_script as `xdpvip status` shows it.
type ScriptStatus struct {
	instance.ScriptStatus
	// Disabled is why the start-up check disabled the script
	// (keepalived's message, e.g. "Disabling track script chk since not
	// found/accessible"): it is not run and no instance tracks it. Empty
	// for a script that runs.
	Disabled string `json:"disabled,omitempty"`
}

// Status is the answer to the control socket's "status" method.
type Status struct {
	RouterID  string           `json:"router_id"`
	PID       int              `json:"pid"`
	Config    string           `json:"config"`
	Started   time.Time        `json:"started"`
	Reloads   int              `json:"reloads"`
	Dataplane string           `json:"dataplane"`
	Instances []InstanceStatus `json:"instances"`
	// XDPDrops are the VRRP frames the XDP program dropped, by interface and
	// reason (the program drops before it can tell which instance).
	XDPDrops map[string]map[string]uint64 `json:"xdp_drops,omitempty"`
	// Scripts are the configured vrrp_scripts, in configuration order;
	// one no running instance tracks is not run (Running false).
	Scripts []ScriptStatus `json:"scripts,omitempty"`
	// BGP is the embedded speaker's sessions and routes (internal/announce).
	BGP *BGPStatus `json:"bgp,omitempty"`
}

// scriptStatus is the state of every configured vrrp_script.
func (d *Daemon) scriptStatus() []ScriptStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ScriptStatus
	for _, sc := range d.cfg.Scripts {
		if why, off := d.disabled[sc.Name]; off {
			out = append(out, ScriptStatus{ScriptStatus: instance.ScriptStatus{Name: sc.Name}, Disabled: why})
			continue
		}
		if r := d.runners[sc.Name]; r != nil {
			out = append(out, ScriptStatus{ScriptStatus: r.Status()})
			continue
		}
		out = append(out, ScriptStatus{ScriptStatus: instance.ScriptStatus{Name: sc.Name, OK: !sc.InitFail}})
	}
	return out
}
