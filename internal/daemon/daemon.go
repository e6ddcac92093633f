// Package daemon wires xdpvip together: it reads keepalived.conf, runs one
// VRRP runtime per vrrp_instance (adverts, VIPs, GARP, notify, tracking,
// sync groups), the health checkers and the virtual-server manager, drives
// the chosen dataplane (XDP, kernel IPVS or none), and answers the control
// socket. SIGHUP reloads as a diff; cancelling the context leaves
// gracefully (priority-0 adverts, VIPs removed, notify_stop).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/lvsconfig"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/healthcheck"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/script"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// Options configure the daemon.
type Options struct {
	ConfigPath    string
	PIDFile       string
	ControlSocket string
	BPFDir        string
	// Dataplane is "auto", "xdp", "ipvs" or "none".
	Dataplane string
	// XDPMode is "native", "generic" or "auto".
	XDPMode string
	Logger  *slog.Logger
	// Reload receives a value for every SIGHUP.
	Reload <-chan struct{}
}

// Daemon is one running xdpvip.
type Daemon struct {
	opts     Options
	log      *slog.Logger
	notifier *script.Notifier
	vipMgr   *netif.VIPs
	planes   *planes

	mu        sync.Mutex
	cfg       *config.Config
	instances map[string]*runningInstance
	groups    map[string]*instance.SyncGroup
	// links is the ifindex each instance interface was last built on, -1
	// once it was deleted.
	links    map[string]int
	scripts  context.CancelFunc
	lvsMgr   *lvs.Manager
	monitors map[string]*runningMonitor
	started  time.Time
	reloads  int
}

// runningInstance is an instance with the handles it owns.
type runningInstance struct {
	in      *instance.Instance
	cfg     *config.VRRPInstance
	tracked []instance.Tracked
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type runningMonitor struct {
	spec lvsconfig.Monitor
	mon  *healthcheck.Monitor
}

// Run runs the daemon until ctx is cancelled, then leaves gracefully.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ControlSocket == "" {
		opts.ControlSocket = control.DefaultSocket
	}
	cfg, err := loadConfig(opts.ConfigPath, opts.Logger)
	if err != nil {
		return err
	}
	d := &Daemon{
		opts: opts, log: opts.Logger, cfg: cfg,
		notifier:  &script.Notifier{Logger: opts.Logger},
		vipMgr:    netif.NewVIPs(nil),
		instances: map[string]*runningInstance{},
		groups:    map[string]*instance.SyncGroup{},
		links:     map[string]int{},
		monitors:  map[string]*runningMonitor{},
		started:   time.Now(),
	}
	if opts.PIDFile != "" {
		if err := writePIDFile(opts.PIDFile); err != nil {
			return err
		}
		defer os.Remove(opts.PIDFile)
	}
	srv, err := control.Listen(opts.ControlSocket, opts.Logger)
	if err != nil {
		return err
	}
	defer srv.Close()

	d.planes, err = openPlanes(opts, cfg, opts.Logger)
	if err != nil {
		return err
	}
	defer d.planes.Close()

	d.lvsMgr = lvs.NewManager(d.planes.backend(), lvs.ManagerOptions{OnQuorum: d.onQuorum})
	// Serve only once the dataplane and the manager exist: Status and LVS
	// read them.
	srv.Handle("status", func(context.Context) (any, error) { return d.Status(), nil })
	srv.Handle("lvs", func(context.Context) (any, error) { return d.LVS() })
	go srv.Serve()
	if err := d.apply(ctx, cfg); err != nil {
		d.shutdown()
		return err
	}
	d.log.Info("xdpvip started", "config", opts.ConfigPath, "instances", len(cfg.Instances),
		"virtual_servers", len(cfg.VirtualServers), "dataplane", d.planes.name())

	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping: leaving gracefully")
			d.shutdown()
			return nil
		case <-opts.Reload:
			d.reload(ctx)
		}
	}
}

func loadConfig(path string, log *slog.Logger) (*config.Config, error) {
	cfg, diags, err := config.Load(path)
	for _, dg := range diags {
		if dg.Severity == config.Warning {
			log.Warn(dg.String())
		}
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func writePIDFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// reload reads the configuration again and applies the difference.
// A config that does not load leaves everything as it is.
func (d *Daemon) reload(ctx context.Context) {
	cfg, err := loadConfig(d.opts.ConfigPath, d.log)
	if err != nil {
		d.log.Error("reload failed: keeping the running configuration", "err", err)
		return
	}
	if err := d.apply(ctx, cfg); err != nil {
		d.log.Error("reload partly failed", "err", err)
	}
	d.mu.Lock()
	d.reloads++
	d.mu.Unlock()
	d.log.Info("configuration reloaded", "instances", len(cfg.Instances), "virtual_servers", len(cfg.VirtualServers))
}

// sameInstance reports whether two instance configurations are equal but
// for where they were written.
func sameInstance(a, b *config.VRRPInstance) bool {
	return reflect.DeepEqual(comparable(a), comparable(b))
}

// comparable is a copy of in without positions (its slices copied too).
func comparable(in *config.VRRPInstance) config.VRRPInstance {
	x := *in
	x.Pos = config.Pos{}
	strip := func(vs []config.VIP) []config.VIP {
		out := make([]config.VIP, len(vs))
		for i, v := range vs {
			v.Pos = config.Pos{}
			out[i] = v
		}
		return out
	}
	x.VIPs, x.ExcludedVIPs = strip(x.VIPs), strip(x.ExcludedVIPs)
	return x
}

// onlyPriorityChanged reports whether a and b differ in priority alone:
// such an instance keeps running and just gets its new priority, as a
// keepalived reload does, instead of leaving and rejoining.
func onlyPriorityChanged(a, b *config.VRRPInstance) bool {
	x, y := comparable(a), comparable(b)
	if x.Priority == y.Priority || x.Priority == vrrp.PriorityOwner || y.Priority == vrrp.PriorityOwner {
		return false
	}
	x.Priority = y.Priority
	return reflect.DeepEqual(x, y)
}

// apply makes the running daemon match cfg: instances that did not change
// keep running untouched (state and VIPs kept); removed or changed ones are
// stopped; new or changed ones are started.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config) error {
	d.mu.Lock()
	old := d.instances
	oldCfg := d.cfg
	d.mu.Unlock()

	keep := map[string]*runningInstance{}
	var stop []*runningInstance
	for name, ri := range old {
		nc := cfg.Instance(name)
		if nc != nil && oldCfg != nil && sameTracking(oldCfg, cfg, nc) {
			if sameInstance(ri.cfg, nc) {
				keep[name] = ri
				continue
			}
			if onlyPriorityChanged(ri.cfg, nc) {
				d.log.Info("priority changed by reload", "instance", name, "from", ri.cfg.Priority, "to", nc.Priority)
				ri.cfg = nc
				ri.in.Post(instance.BasePriority{Priority: uint8(nc.Priority)})
				keep[name] = ri
				continue
			}
		}
		stop = append(stop, ri)
	}
	for _, ri := range stop {
		d.stopInstance(ri)
	}
	if d.scripts != nil {
		d.scripts()
	}

	var errs []error
	for _, ic := range cfg.Instances {
		if _, ok := keep[ic.Name]; ok {
			continue
		}
		ri, err := d.startInstance(ctx, cfg, ic)
		if err != nil {
			errs = append(errs, fmt.Errorf("vrrp_instance %s: %w", ic.Name, err))
			continue
		}
		keep[ic.Name] = ri
	}
	d.mu.Lock()
	d.instances = keep
	d.cfg = cfg
	d.mu.Unlock()

	d.wireTracking(ctx, cfg)
	if err := d.applyLVS(cfg); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// sameTracking reports whether what instance ic tracks is configured the
// same in both configurations (its scripts may have changed).
func sameTracking(a, b *config.Config, ic *config.VRRPInstance) bool {
	for _, ts := range ic.TrackScripts {
		x, y := a.Script(ts.Name), b.Script(ts.Name)
		if (x == nil) != (y == nil) {
			return false
		}
		if x != nil {
			xc, yc := *x, *y
			xc.Pos, yc.Pos = config.Pos{}, config.Pos{}
			if !reflect.DeepEqual(xc, yc) {
				return false
			}
		}
	}
	ga, gb := a.SyncGroup(ic.SyncGroup), b.SyncGroup(ic.SyncGroup)
	if (ga == nil) != (gb == nil) {
		return false
	}
	return ga == nil || reflect.DeepEqual(ga.Members, gb.Members)
}

// syncGroup returns the running vrrp_sync_group ic belongs to, nil if none.
func (d *Daemon) syncGroup(cfg *config.Config, ic *config.VRRPInstance) *instance.SyncGroup {
	if ic.SyncGroup == "" || cfg.SyncGroup(ic.SyncGroup) == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.groups[ic.SyncGroup]
	if g == nil {
		g = instance.NewSyncGroup(ic.SyncGroup)
		d.groups[ic.SyncGroup] = g
	}
	return g
}

// startInstance opens the instance's sockets and starts its goroutines.
func (d *Daemon) startInstance(ctx context.Context, cfg *config.Config, ic *config.VRRPInstance) (*runningInstance, error) {
	ri := &runningInstance{cfg: ic, tracked: instance.Tracking(ic, cfg)}
	var io instance.IO
	ok := false
	defer func() {
		if !ok {
			if io.Close != nil {
				_ = io.Close()
			}
			d.closeInstance(ri)
		}
	}()
	if ic.UseVMAC {
		if err := d.planes.createVMAC(ic); err != nil {
			return nil, err
		}
	}
	rx, err := d.planes.receiveFor(ic)
	if err != nil {
		return nil, err
	}
	open := func() (instance.IO, error) { return openInstanceIO(ic, rx.name == "socket") }
	if io, err = open(); err != nil {
		return nil, err
	}
	in, err := instance.New(ic, instance.Deps{
		IO: io, Reopen: open, VIPs: d.vipMgr, Role: rx.role, Clock: instance.SystemClock{},
		Notifier: d.notifier, PeerSeen: rx.peer, Group: d.syncGroup(cfg, ic), Tracked: ri.tracked,
		Receive: rx.name, Log: d.log,
	})
	if err != nil {
		return nil, err
	}
	ri.in = in
	d.planes.register(ic, in)
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ri.cancel = cancel
	ri.wg.Add(1)
	go func() { defer ri.wg.Done(); in.Run(ictx) }()
	ok = true
	return ri, nil
}

// stopInstance leaves gracefully and waits for the instance to finish.
func (d *Daemon) stopInstance(ri *runningInstance) {
	ri.cancel()
	ri.wg.Wait()
	d.planes.release(ri.cfg, ri.in)
	d.closeInstance(ri)
}

func (d *Daemon) closeInstance(ri *runningInstance) {
	if ri.cfg.UseVMAC {
		d.planes.deleteVMAC(ri.cfg)
	}
}

// wireTracking (re)starts the vrrp_script runners and the link watcher for
// the running instances, and forgets sync groups left without members.
func (d *Daemon) wireTracking(ctx context.Context, cfg *config.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	d.scripts = cancel
	for name, g := range d.groups {
		if g.Len() == 0 {
			delete(d.groups, name)
		}
	}
	runners := map[string]*instance.ScriptRunner{}
	watch := map[string][]*instance.Instance{} // tracked interface → instances
	homes := map[string][]*instance.Instance{} // interface → instances on it
	for _, ri := range d.instances {
		homes[ri.cfg.Interface] = append(homes[ri.cfg.Interface], ri.in)
		for _, o := range ri.tracked {
			switch o.Kind {
			case instance.TrackScript:
				sc := cfg.Script(o.Name)
				if sc == nil {
					continue
				}
				if runners[o.Name] == nil {
					runners[o.Name] = instance.NewScriptRunner(sc, d.log)
				}
				runners[o.Name].Subscribe(ri.in)
			case instance.TrackInterface:
				watch[o.Name] = append(watch[o.Name], ri.in)
			}
		}
	}
	for _, r := range runners {
		go r.Run(sctx)
	}
	if len(homes) == 0 && len(watch) == 0 {
		return
	}
	var names []string
	for _, m := range []map[string][]*instance.Instance{homes, watch} {
		for n := range m {
			names = append(names, n)
		}
	}
	events, err := netif.WatchLinks(sctx, names...)
	if err != nil {
		d.log.Error("watching links failed: track_interface and interface re-creation not followed", "err", err)
		return
	}
	go func() {
		for ev := range events {
			d.relink(ev, homes[ev.Name])
			if !ev.Up {
				d.log.Warn("interface down", "iface", ev.Name, "gone", ev.Gone)
			} else {
				d.log.Info("interface up", "iface", ev.Name)
			}
			for _, in := range watch[ev.Name] {
				in.Post(instance.TrackChange{Kind: instance.TrackInterface, Name: ev.Name, OK: ev.Up})
			}
		}
	}()
}

// relink follows the instances' own interfaces: one that disappears puts
// its instances in FAULT; once it is back with another ifindex and up, the
// XDP program is re-opened on it and the instances rebuild their sockets
// before they may leave FAULT (their old ones are bound to the old ifindex:
// they would hear nobody and become a second MASTER).
func (d *Daemon) relink(ev netif.LinkEvent, homes []*instance.Instance) {
	if len(homes) == 0 {
		return
	}
	d.mu.Lock()
	known, seen := d.links[ev.Name]
	switch {
	case ev.Gone:
		d.links[ev.Name] = -1
	case !seen:
		d.links[ev.Name] = ev.Index
	}
	d.mu.Unlock()
	fault := func() {
		for _, in := range homes {
			in.Post(instance.LinkFault{Fault: true})
		}
	}
	switch {
	case ev.Gone:
		d.log.Warn("interface deleted: its instances are in FAULT until it is back", "iface", ev.Name)
		fault()
	case !seen || known == ev.Index:
	case !ev.Up:
		fault()
	default:
		d.log.Warn("interface re-created: rebuilding its XDP program and sockets", "iface", ev.Name, "ifindex", ev.Index)
		fault()
		if err := d.planes.reopen(ev.Name, d.lvsMgr.Services()); err != nil {
			d.log.Error("interface re-created but the dataplane could not follow: its instances stay in FAULT", "iface", ev.Name, "err", err)
			return
		}
		d.mu.Lock()
		d.links[ev.Name] = ev.Index
		d.mu.Unlock()
		for _, in := range homes {
			in.Post(instance.Relink{})
		}
	}
}

// shutdown stops every instance gracefully, then the checkers.
func (d *Daemon) shutdown() {
	d.mu.Lock()
	instances := d.instances
	d.instances = map[string]*runningInstance{}
	monitors := d.monitors
	d.monitors = map[string]*runningMonitor{}
	if d.scripts != nil {
		d.scripts()
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, ri := range instances {
		wg.Add(1)
		go func() { defer wg.Done(); d.stopInstance(ri) }()
	}
	wg.Wait()
	for _, m := range monitors {
		m.mon.Stop()
	}
	if d.lvsMgr != nil {
		d.lvsMgr.Shutdown()
	}
	// Like keepalived (without --dont-release-ipvs), remove the IPVS
	// services this daemon owns; services made by others stay. (The XDP
	// program's maps stay, so forwarding survives a restart.)
	if d.planes != nil && d.planes.ipvs != nil {
		if err := d.planes.ipvs.Apply(nil); err != nil {
			d.log.Error("removing the IPVS services failed", "err", err)
		}
	}
	waitNotifier(d.notifier, 5*time.Second)
}

// waitNotifier waits for notify scripts in flight, at most timeout.
func waitNotifier(n *script.Notifier, timeout time.Duration) {
	done := make(chan struct{})
	go func() { n.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// Status is what `xdpvip status` shows.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	st := Status{
		RouterID: d.cfg.Global.RouterID, PID: os.Getpid(), Config: d.opts.ConfigPath,
		Started: d.started, Reloads: d.reloads, Dataplane: d.planes.name(),
	}
	ins := make([]*instance.Instance, 0, len(d.instances))
	for _, ic := range d.cfg.Instances {
		if ri := d.instances[ic.Name]; ri != nil {
			ins = append(ins, ri.in)
		}
	}
	d.mu.Unlock()
	if st.RouterID == "" {
		st.RouterID, _ = os.Hostname()
	}
	for _, in := range ins {
		st.Instances = append(st.Instances, in.Status())
	}
	st.XDPDrops = d.planes.dropCounters()
	return st
}
