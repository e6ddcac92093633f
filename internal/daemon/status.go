package daemon

import "time"

// InstanceStatus is one vrrp_instance as `xdpvip status` shows it.
type InstanceStatus struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	VRID      int    `json:"vrid"`
	Version   int    `json:"version"`
	Family    int    `json:"family"`
	SyncGroup string `json:"sync_group,omitempty"`
	// State is INIT, BACKUP, MASTER or FAULT.
	State              string `json:"state"`
	ConfiguredPriority int    `json:"configured_priority"`
	EffectivePriority  int    `json:"effective_priority"`
	// Master is the current master's address as last heard (ours while
	// MASTER), empty when unknown.
	Master string `json:"master"`
	// MasterIsSelf is set while this node is the MASTER.
	MasterIsSelf         bool      `json:"master_is_self"`
	MasterPriority       int       `json:"master_priority"`
	Source               string    `json:"source"`
	AdvertInterval       string    `json:"advert_interval"`
	MasterAdvertInterval string    `json:"master_advert_interval"`
	VIPs                 []string  `json:"vips"`
	Transitions          uint64    `json:"transitions"`
	LastTransition       time.Time `json:"last_transition"`
	AdvertsIn            uint64    `json:"adverts_in"`
	AdvertsOut           uint64    `json:"adverts_out"`
	// Drops counts adverts dropped by the daemon, by reason.
	Drops map[string]uint64 `json:"drops"`
	// Receive is "socket" or "xdp": where adverts come from.
	Receive string `json:"receive"`
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
	// BGP is the embedded speaker's sessions and routes (bgp.go).
	BGP *BGPStatus `json:"bgp,omitempty"`
}
