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
	// BecomeMaster and ReleaseMaster count transitions into and out of
	// MASTER; BecomeMasterBy counts the former by cause (pkg/vrrp Cause*).
	BecomeMaster   uint64            `json:"become_master"`
	ReleaseMaster  uint64            `json:"release_master"`
	BecomeMasterBy map[string]uint64 `json:"become_master_by_cause"`
	// PriorityZeroIn and PriorityZeroOut count priority-0 adverts
	// received and sent.
	PriorityZeroIn  uint64 `json:"priority_zero_in"`
	PriorityZeroOut uint64 `json:"priority_zero_out"`
	// GARPRounds counts gratuitous ARP / NA rounds (every VIP once).
	GARPRounds uint64 `json:"garp_rounds"`
	// MasterRxLowerPri counts the lower priority adverts heard while
	// MASTER (answered unless lower_prio_no_advert; each one sends the
	// garp_lower_prio_repeat rounds and runs notify_master_rx_lower_pri).
	MasterRxLowerPri uint64 `json:"master_rx_lower_pri"`
	// MasterDownInterval is the BACKUP's Master_Down_Interval as of now.
	MasterDownInterval string `json:"master_down_interval"`
	// LargestGapSeconds is the largest gap between consecutive adverts
	// from the MASTER in the last minute (kernel arrival times), and
	// LargestGapRatio that gap over Master_Down_Interval: near 1 is a
	// failover that nearly happened. Zero when no gap was measured.
	LargestGapSeconds float64 `json:"largest_gap_seconds"`
	LargestGapRatio   float64 `json:"largest_gap_ratio"`
	// AdvertGaps is the histogram of all the gaps measured.
	AdvertGaps *GapHistogram `json:"advert_gaps,omitempty"`
	// ConflictStatus is split-brain evidence (conflict.go).
	ConflictStatus
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
	s.MasterDownInterval = in.m.MasterDownInterval().String()
	s.Transitions = st.Transitions
	s.BecomeMaster, s.ReleaseMaster = st.BecameMaster, st.ReleasedMaster
	s.PriorityZeroIn, s.PriorityZeroOut = st.PriorityZeroReceived, st.PriorityZeroSent
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
	s.BecomeMasterBy = make(map[string]uint64, len(in.becameBy))
	for c, n := range in.becameBy {
		s.BecomeMasterBy[c] = n
	}
	gap, ratio := in.gaps.largest(in.d.Clock.Now())
	s.LargestGapSeconds, s.LargestGapRatio = gap.Seconds(), ratio
	s.AdvertGaps = in.gaps.histogram()
	in.mu.Unlock()
	s.GARPRounds = in.garpRounds.Load()
	s.MasterRxLowerPri = in.rxLowerPri.Load()
	s.AdvertsIn = in.advertsIn.Load()
	s.AdvertsOut = in.advertsOut.Load()
	s.Drops = map[string]uint64{}
	for i := range in.drops {
		if n := in.drops[i].Load(); n > 0 {
			s.Drops[vrrp.DropReason(i).String()] = n
		}
	}
	s.ClaimsUndecoded = in.conflict.undecoded.Load()
	if n := in.queueFull.Load(); n > 0 {
		s.Drops["queue_full"] = n
	}
	return s
}
