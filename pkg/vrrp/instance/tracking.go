package instance

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/script"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// Kinds of tracked objects.
const (
	TrackScript    = "script"
	TrackInterface = "interface"
)

// Tracked is one object an instance tracks, with the weight it gives it.
type Tracked struct {
	Kind   string // TrackScript or TrackInterface
	Name   string
	Weight int
	OK     bool
}

// Tracking lists what instance cfg of c tracks, in its initial state: the
// primary interface (unless dont_track_primary), track_interface and
// track_script (weights from the script unless the instance sets one).
func Tracking(cfg *config.VRRPInstance, c *config.Config) []Tracked {
	var objs []Tracked
	if !cfg.DontTrackPrimary {
		objs = append(objs, Tracked{Kind: TrackInterface, Name: cfg.Interface, OK: true})
	}
	for _, ti := range cfg.TrackInterfaces {
		objs = append(objs, Tracked{Kind: TrackInterface, Name: ti.Name, Weight: ti.Weight, OK: true})
	}
	for _, ts := range cfg.TrackScripts {
		w := ts.Weight
		s := c.Script(ts.Name)
		if !ts.WeightSet && s != nil {
			w = s.Weight
		}
		objs = append(objs, Tracked{Kind: TrackScript, Name: ts.Name, Weight: w, OK: s == nil || !s.InitFail})
	}
	return objs
}

// tracking turns the state of the tracked objects into the effective
// priority and the instance's own fault.
type tracking struct {
	base     uint8
	objs     []Tracked
	sentPrio uint8 // what the machine was last told
}

func (t *tracking) compute() (uint8, bool) {
	objs := make([]vrrp.Tracked, len(t.objs))
	for i, o := range t.objs {
		objs[i] = vrrp.Tracked{Weight: o.Weight, OK: o.OK}
	}
	return vrrp.EffectivePriority(t.base, objs)
}

func (t *tracking) set(c TrackChange) bool {
	changed := false
	for i := range t.objs {
		if o := &t.objs[i]; o.Kind == c.Kind && o.Name == c.Name && o.OK != c.OK {
			o.OK = c.OK
			changed = true
		}
	}
	return changed
}

func (in *Instance) trackChange(now time.Time, c TrackChange) {
	if !in.track.set(c) {
		return
	}
	_, fault := in.track.compute()
	if fault != in.trackFault {
		in.trackFault = fault
		in.faultChanged(now)
	}
	in.updatePriority(now, c.Kind+" "+c.Name)
}

// updatePriority tells the machine a new effective priority.
func (in *Instance) updatePriority(now time.Time, why string) {
	p, _ := in.track.compute()
	if p == in.track.sentPrio {
		return
	}
	in.track.sentPrio = p
	in.log.Info("effective priority changed", "why", why, "priority", p)
	in.perform(in.m.Step(now, vrrp.PriorityChanged{New: p}))
}

func (in *Instance) ownFault() bool { return in.trackFault || in.vipFault || in.linkFault }

// faultChanged runs after the instance's own fault changed: the sync group
// learns it, then the machine.
func (in *Instance) faultChanged(now time.Time) {
	if in.d.Group != nil {
		in.groupFault = in.d.Group.setOwn(in, in.ownFault())
	}
	in.applyFault(now)
}

// applyFault steps the machine into or out of FAULT when the fault (own
// or the group's) changed.
func (in *Instance) applyFault(now time.Time) {
	f := in.ownFault() || in.groupFault
	if f == in.sentFault {
		return
	}
	in.sentFault = f
	if f {
		in.perform(in.m.Step(now, vrrp.InterfaceDown{}))
	} else {
		in.perform(in.m.Step(now, vrrp.InterfaceUp{}))
	}
}

// SyncGroup makes its members change state together: a fault of one is a
// fault of all; one becoming MASTER or BACKUP takes the others along.
// Members join in New and leave when they stop.
type SyncGroup struct {
	Name string

	mu      sync.Mutex
	members []*Instance
	own     map[*Instance]bool
}

// NewSyncGroup returns an empty vrrp_sync_group.
func NewSyncGroup(name string) *SyncGroup {
	return &SyncGroup{Name: name, own: map[*Instance]bool{}}
}

// Len is the number of members.
func (g *SyncGroup) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// join adds in with its own fault and returns the group's fault.
func (g *SyncGroup) join(in *Instance, own bool) bool {
	g.mu.Lock()
	g.members = append(g.members, in)
	g.mu.Unlock()
	return g.setOwn(in, own)
}

func (g *SyncGroup) leave(in *Instance) {
	g.mu.Lock()
	for i, m := range g.members {
		if m == in {
			g.members = append(g.members[:i:i], g.members[i+1:]...)
			break
		}
	}
	delete(g.own, in)
	g.mu.Unlock()
	g.setOwn(nil, false)
}

// setOwn records member in's own fault (in nil: none changed), tells the
// other members the group's fault and returns it.
func (g *SyncGroup) setOwn(in *Instance, own bool) bool {
	g.mu.Lock()
	if in != nil {
		g.own[in] = own
	}
	fault := false
	for _, f := range g.own {
		fault = fault || f
	}
	others := make([]*Instance, 0, len(g.members))
	for _, m := range g.members {
		if m != in {
			others = append(others, m)
		}
	}
	g.mu.Unlock()
	for _, m := range others {
		m.Post(groupFault{fault: fault})
	}
	return fault
}

// follow runs after member leader entered state to: the others follow.
func (g *SyncGroup) follow(leader *Instance, to vrrp.State) {
	g.mu.Lock()
	members := append([]*Instance(nil), g.members...)
	g.mu.Unlock()
	states := make([]vrrp.State, len(members))
	li := -1
	for i, m := range members {
		if m == leader {
			li, states[i] = i, to
			continue
		}
		states[i] = m.State()
	}
	for i, want := range vrrp.SyncGroupFollow(states, li) {
		switch want {
		case vrrp.StateMaster:
			members[i].Post(machineEvent{vrrp.SyncMaster{}})
		case vrrp.StateBackup:
			members[i].Post(machineEvent{vrrp.SyncBackup{}})
		}
	}
}

// ScriptRunner runs one vrrp_script every interval and reports its
// rise/fall-counted state to the instances that track it.
type ScriptRunner struct {
	cfg     *config.VRRPScript
	log     *slog.Logger
	counter *vrrp.ScriptCounter
	subs    []*Instance
	// ok mirrors the counter's state for Status; running is set while Run
	// runs.
	ok, running atomic.Bool
}

// ScriptStatus is one vrrp_script as status and metrics show it.
type ScriptStatus struct {
	Name string `json:"name"`
	// OK is the rise/fall-counted result.
	OK bool `json:"ok"`
	// Running is set while the script is scheduled (tracked by a running
	// instance).
	Running bool `json:"running"`
}

// NewScriptRunner returns the runner of sc.
func NewScriptRunner(sc *config.VRRPScript, log *slog.Logger) *ScriptRunner {
	r := &ScriptRunner{cfg: sc, log: log, counter: vrrp.NewScriptCounter(sc.Rise, sc.Fall, sc.InitFail)}
	r.ok.Store(r.counter.OK())
	return r
}

// Status is the script's state now.
func (r *ScriptRunner) Status() ScriptStatus {
	return ScriptStatus{Name: r.cfg.Name, OK: r.ok.Load(), Running: r.running.Load()}
}

// Subscribe makes in hear the script's state.
func (r *ScriptRunner) Subscribe(in *Instance) { r.subs = append(r.subs, in) }

// Run runs the script until ctx ends. The state after the first run is
// reported whether or not it changed, so an instance that kept a failed
// state across a reload (which restarts the runners) learns the truth.
func (r *ScriptRunner) Run(ctx context.Context) {
	timeout := r.cfg.Timeout
	if timeout <= 0 {
		timeout = r.cfg.Interval
	}
	cmd := script.Command{Line: r.cfg.Script.Command, Timeout: timeout}
	r.running.Store(true)
	defer r.running.Store(false)
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for first := true; ; first = false {
		res, err := script.Run(ctx, cmd)
		if ctx.Err() != nil {
			return
		}
		ok, changed := r.counter.Report(err == nil && res.ExitCode == 0)
		r.ok.Store(ok)
		if changed {
			r.log.Info("vrrp_script state changed", "script", r.cfg.Name, "ok", ok, "exit", res.ExitCode, "err", err)
		}
		if changed || first {
			for _, in := range r.subs {
				in.Post(TrackChange{Kind: TrackScript, Name: r.cfg.Name, OK: ok})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
