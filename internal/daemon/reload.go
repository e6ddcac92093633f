package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// refusal is an apply's error when it changed nothing.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// applied is what an apply did, by instance name.
type applied struct{ kept, priority, restarted, started, stopped, failed []string }

func (a applied) String() string {
	var b strings.Builder
	for _, p := range []struct {
		what  string
		names []string
	}{{"kept", a.kept}, {"priority changed", a.priority}, {"restarted", a.restarted}, {"started", a.started}, {"stopped", a.stopped}, {"FAILED", a.failed}} {
		if len(p.names) > 0 {
			fmt.Fprintf(&b, "%s%s: %s", map[bool]string{true: "; "}[b.Len() > 0], p.what, strings.Join(p.names, ", "))
		}
	}
	return b.String()
}

// apply makes the running daemon match cfg. Instances that did not change
// keep running untouched (state and VIPs kept); a priority change is
// stepped into the running instance. Every new or changed instance is
// built and opened first (socket, announcer, VMAC): if one fails, nothing
// is changed and the error is a refusal. Only then are the removed and
// changed ones retired and the new ones started.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config) (applied, error) {
	var res applied
	if _, err := lvsconfig.VirtualServers(cfg); err != nil {
		return res, refusal{err}
	}
	if _, err := lvsconfig.Monitors(cfg, d.notifier); err != nil {
		return res, refusal{err}
	}
	d.mu.Lock()
	old := d.instances
	oldCfg := d.cfg
	d.mu.Unlock()

	keep := map[string]*runningInstance{}
	retire := map[string]*runningInstance{}
	var prio []*runningInstance
	for name, ri := range old {
		nc := cfg.Instance(name)
		switch {
		case nc == nil:
			retire[name] = ri
			res.stopped = append(res.stopped, name)
		case oldCfg != nil && instance.Unchanged(oldCfg, cfg, ri.cfg, nc):
			keep[name] = ri
			res.kept = append(res.kept, name)
		case oldCfg != nil && instance.OnlyPriorityChanged(oldCfg, cfg, ri.cfg, nc):
			keep[name] = ri
			prio = append(prio, ri)
			res.priority = append(res.priority, name)
		default:
			retire[name] = ri
			res.restarted = append(res.restarted, name)
		}
	}
	var prepared []*runningInstance
	for _, ic := range cfg.Instances {
		if keep[ic.Name] != nil {
			continue
		}
		ri, err := d.prepareInstance(cfg, ic, old[ic.Name])
		if err != nil {
			for _, p := range prepared {
				p.abandon()
			}
			return applied{}, refusal{fmt.Errorf("%s: vrrp_instance %s: %w", ic.Pos, ic.Name, err)}
		}
		prepared = append(prepared, ri)
		if old[ic.Name] == nil {
			res.started = append(res.started, ic.Name)
		}
	}

	// Commit.
	for _, ri := range prio {
		nc := cfg.Instance(ri.cfg.Name)
		d.log.Info("priority changed by reload", "instance", nc.Name, "from", ri.cfg.Priority, "to", nc.Priority)
		ri.cfg = nc
		ri.in.Post(instance.BasePriority{Priority: uint8(nc.Priority)})
	}
	for _, ri := range retire {
		d.stopInstance(ri, cfg)
	}
	if d.scripts != nil {
		d.scripts()
	}
	var errs []error
	for _, ri := range prepared {
		name := ri.cfg.Name
		if err := d.launchInstance(ctx, ri); err != nil {
			errs = append(errs, fmt.Errorf("vrrp_instance %s: %w", name, err))
			res.failed = append(res.failed, name)
			// The dataplane refused the new configuration: back to the
			// previous one, as far as it still opens.
			if prev := retire[name]; prev != nil {
				if back, err := d.prepareInstance(oldCfg, prev.cfg, nil); err == nil && d.launchInstance(ctx, back) == nil {
					d.log.Warn("instance rolled back to its previous configuration", "instance", name)
					keep[name] = back
				}
			}
			continue
		}
		keep[ri.cfg.Name] = ri
	}
	d.mu.Lock()
	d.instances = keep
	d.cfg = cfg
	d.disabled = d.gate.disabledScripts(cfg)
	d.mu.Unlock()

	d.wireTracking(ctx, cfg)
	if err := d.applyLVS(cfg); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// prepareInstance builds instance ic of cfg and opens what it needs
// (VMAC, socket, announcer) without starting it or touching the
// dataplane, so that a running predecessor is not disturbed yet.
func (d *Daemon) prepareInstance(cfg *config.Config, ic *config.VRRPInstance, predecessor *runningInstance) (*runningInstance, error) {
	ri := &runningInstance{cfg: ic, tracked: instance.Tracking(ic, cfg)}
	ok := false
	defer func() {
		if !ok {
			ri.abandon()
		}
	}()
	if ic.UseVMAC {
		if err := d.planes.createVMAC(ic); err != nil {
			return nil, err
		}
		if predecessor == nil || !predecessor.cfg.UseVMAC || instance.VMACName(predecessor.cfg) != instance.VMACName(ic) {
			ri.undo = append(ri.undo, func() { d.planes.deleteVMAC(ic) })
		}
	}
	rx := d.planes.receivePath(ic)
	open := func() (instance.IO, error) { return instance.OpenIO(ic, rx.name == "socket") }
	// After the interface was re-created its VMAC (a macvlan on it) is
	// gone too: make it again first.
	reopen := func() (instance.IO, error) {
		if ic.UseVMAC {
			if err := d.planes.createVMAC(ic); err != nil {
				return instance.IO{}, err
			}
		}
		return open()
	}
	io, err := open()
	if err != nil {
		return nil, err
	}
	ri.undo = append(ri.undo, func() { _ = io.Close() })
	ri.in, err = instance.New(ic, instance.Deps{
		IO: io, Reopen: reopen, VIPs: d.vipMgr, Role: rx.role, Clock: instance.SystemClock{},
		Notifier: d.notifier, PeerSeen: rx.peer, Group: d.syncGroup(cfg, ic), Tracked: ri.tracked,
		Receive: rx.name, Log: d.log,
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return ri, nil
}

// abandon releases what prepareInstance opened for an instance that will
// not run.
func (ri *runningInstance) abandon() {
	for _, u := range ri.undo {
		u()
	}
	ri.undo = nil
}

// launchInstance tells the dataplane about a prepared instance and starts
// it; from then on the instance owns its socket and announcer.
func (d *Daemon) launchInstance(ctx context.Context, ri *runningInstance) error {
	if err := d.planes.attach(ri.cfg, ri.in); err != nil {
		ri.abandon()
		return err
	}
	ri.undo = nil
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ri.cancel = cancel
	ri.wg.Add(1)
	go func() { defer ri.wg.Done(); ri.in.Run(ictx) }()
	// The daemon answers (and a reload reports) only once the instance has
	// dealt with what a previous daemon left: no stray VIP beside the
	// MASTER's after `xdpvip status` answers.
	select {
	case <-ri.in.Started():
	case <-time.After(2 * time.Second):
		d.log.Warn("instance slow to start", "instance", ri.cfg.Name)
	}
	return nil
}

// stopInstance leaves gracefully and waits for the instance to finish. Its
// VMAC is deleted unless next still uses it.
func (d *Daemon) stopInstance(ri *runningInstance, next *config.Config) {
	keep := next == nil && d.opts.DontReleaseVRRP // the daemon is leaving
	if keep {
		ri.in.KeepOnStop()
	}
	ri.cancel()
	ri.wg.Wait()
	if keep {
		return // VIPs, VRID and forwarding stay for the next daemon
	}
	d.planes.release(ri.cfg, ri.in)
	if !ri.cfg.UseVMAC {
		return
	}
	if next != nil {
		for _, ic := range next.Instances {
			if ic.UseVMAC && instance.VMACName(ic) == instance.VMACName(ri.cfg) {
				return
			}
		}
	}
	d.planes.deleteVMAC(ri.cfg)
}
