package instance

import (
	"time"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// Status is one vrrp_instance as `xdpvip status` shows it.
type Status struct {
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

// snapshot refreshes the status Status reads.
func (in *Instance) snapshot() {
	st := in.m.Stats()
	in.mu.Lock()
	defer in.mu.Unlock()
	s := &in.status
	in.state = in.m.State()
	s.State = in.state.String()
	s.EffectivePriority = int(in.m.Priority())
	if a := in.m.MasterAddr(); a.IsValid() {
		s.Master = a.String()
		s.MasterPriority = int(in.m.MasterPriority())
	} else {
		s.Master, s.MasterPriority = "", 0
	}
	s.MasterIsSelf = in.state == vrrp.StateMaster
	if s.MasterIsSelf {
		s.Master, s.MasterPriority = in.io.Sender.Source().String(), int(in.m.Priority())
	}
	s.MasterAdvertInterval = in.m.MasterAdverInterval().String()
	s.Transitions = st.Transitions
}

// State is the instance's state as of its last step.
func (in *Instance) State() vrrp.State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

// Status returns a copy of the instance's status with live counters.
func (in *Instance) Status() Status {
	in.mu.Lock()
	s := in.status
	s.VIPs = append([]string(nil), in.status.VIPs...)
	in.mu.Unlock()
	s.AdvertsIn = in.advertsIn.Load()
	s.AdvertsOut = in.advertsOut.Load()
	s.Drops = map[string]uint64{}
	for i := range in.drops {
		if n := in.drops[i].Load(); n > 0 {
			s.Drops[vrrp.DropReason(i).String()] = n
		}
	}
	if n := in.queueFull.Load(); n > 0 {
		s.Drops["queue_full"] = n
	}
	return s
}
