package daemon

import (
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// InstanceStatus is one vrrp_instance as `xdpvip status` shows it.
type InstanceStatus = instance.Status

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
	// BGP is the embedded speaker's sessions and routes (internal/announce).
	BGP *BGPStatus `json:"bgp,omitempty"`
}
