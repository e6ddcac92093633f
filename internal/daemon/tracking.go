package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/script"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// tracked is one object an instance tracks, with the weight it gives it.
type tracked struct {
	kind   string // "script" or "interface"
	name   string
	weight int
	ok     bool
}

// tracker turns the state of an instance's tracked objects into its
// effective priority and fault state, and posts the changes to it.
type tracker struct {
	mu    sync.Mutex
	in    *instance
	base  uint8
	objs  []tracked
	group *syncGroup
	// own is the instance's own fault (before the sync group's); sent is
	// what the instance was last told.
	own       bool
	sentPrio  uint8
	sentFault bool
}

func newTracker(cfg *config.VRRPInstance, c *config.Config) *tracker {
	t := &tracker{base: uint8(cfg.Priority)}
	if !cfg.DontTrackPrimary {
		t.objs = append(t.objs, tracked{kind: "interface", name: cfg.Interface, ok: true})
	}
	for _, ti := range cfg.TrackInterfaces {
		t.objs = append(t.objs, tracked{kind: "interface", name: ti.Name, weight: ti.Weight, ok: true})
	}
	for _, ts := range cfg.TrackScripts {
		w := ts.Weight
		s := c.Script(ts.Name)
		if !ts.WeightSet && s != nil {
			w = s.Weight
		}
		ok := s == nil || !s.InitFail
		t.objs = append(t.objs, tracked{kind: "script", name: ts.Name, weight: w, ok: ok})
	}
	return t
}

// compute returns the effective priority and the instance's own fault.
func (t *tracker) compute() (uint8, bool) {
	objs := make([]vrrp.Tracked, len(t.objs))
	for i, o := range t.objs {
		objs[i] = vrrp.Tracked{Weight: o.weight, OK: o.ok}
	}
	return vrrp.EffectivePriority(t.base, objs)
}

// initial returns the priority to start the machine with and records it.
func (t *tracker) initial() uint8 {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, f := t.compute()
	t.sentPrio, t.own = p, f
	return p
}

// set records the state of a tracked object and posts what changed.
func (t *tracker) set(kind, name string, ok bool) {
	t.mu.Lock()
	changed := false
	for i := range t.objs {
		if t.objs[i].kind == kind && t.objs[i].name == name && t.objs[i].ok != ok {
			t.objs[i].ok = ok
			changed = true
		}
	}
	if !changed {
		t.mu.Unlock()
		return
	}
	p, f := t.compute()
	t.own = f
	group := t.group
	t.mu.Unlock()
	if group != nil {
		group.refresh()
	} else {
		t.publish(f)
	}
	t.mu.Lock()
	if p != t.sentPrio {
		t.sentPrio = p
		t.mu.Unlock()
		t.in.log.Info("effective priority changed", "tracked", kind+" "+name, "ok", ok, "priority", p)
		t.in.post(vrrp.PriorityChanged{New: p})
		return
	}
	t.mu.Unlock()
}

// setBase changes the configured priority (a reload) and posts the new
// effective priority.
func (t *tracker) setBase(base uint8) {
	t.mu.Lock()
	t.base = base
	p, _ := t.compute()
	changed := p != t.sentPrio
	t.sentPrio = p
	t.mu.Unlock()
	if changed {
		t.in.post(vrrp.PriorityChanged{New: p})
	}
}

// publish tells the instance whether it is in fault.
func (t *tracker) publish(fault bool) {
	t.mu.Lock()
	if fault == t.sentFault {
		t.mu.Unlock()
		return
	}
	t.sentFault = fault
	t.mu.Unlock()
	if fault {
		t.in.post(vrrp.InterfaceDown{})
	} else {
		t.in.post(vrrp.InterfaceUp{})
	}
}

func (t *tracker) ownFault() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.own
}

// syncGroup makes its members change state together: a fault of one is a
// fault of all; one becoming MASTER or BACKUP takes the others along.
type syncGroup struct {
	name    string
	members []*instance
	trk     []*tracker
}

// refresh recomputes the group fault and tells every member.
func (g *syncGroup) refresh() {
	fault := false
	for _, t := range g.trk {
		fault = fault || t.ownFault()
	}
	for _, t := range g.trk {
		t.publish(fault)
	}
}

// follow runs after member leader entered a state: the others follow.
func (g *syncGroup) follow(leader *instance, to vrrp.State) {
	states := make([]vrrp.State, len(g.members))
	li := -1
	for i, m := range g.members {
		if m == leader {
			li = i
			states[i] = to
			continue
		}
		states[i] = m.State()
	}
	for i, want := range vrrp.SyncGroupFollow(states, li) {
		switch want {
		case vrrp.StateMaster:
			g.members[i].post(vrrp.SyncMaster{})
		case vrrp.StateBackup:
			g.members[i].post(vrrp.SyncBackup{})
		}
	}
}

// scriptRunner runs one vrrp_script every interval and reports its
// rise/fall-counted state to the trackers that use it.
type scriptRunner struct {
	cfg     *config.VRRPScript
	log     *slog.Logger
	counter *vrrp.ScriptCounter
	subs    []*tracker
}

func (r *scriptRunner) run(ctx context.Context) {
	timeout := r.cfg.Timeout
	if timeout <= 0 {
		timeout = r.cfg.Interval
	}
	cmd := script.Command{Line: r.cfg.Script.Command, Timeout: timeout}
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		res, err := script.Run(ctx, cmd)
		if ctx.Err() != nil {
			return
		}
		success := err == nil && res.ExitCode == 0
		if ok, changed := r.counter.Report(success); changed {
			r.log.Info("vrrp_script state changed", "script", r.cfg.Name, "ok", ok, "exit", res.ExitCode, "err", err)
			for _, t := range r.subs {
				t.set("script", r.cfg.Name, ok)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
