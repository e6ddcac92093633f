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
	"sync"
	"time"

	"github.com/xdpvip/xdpvip/internal/announce"
	"github.com/xdpvip/xdpvip/internal/configload"
	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/monitors"
	"github.com/xdpvip/xdpvip/internal/reloadplan"
	"github.com/xdpvip/xdpvip/internal/runlock"
	"github.com/xdpvip/xdpvip/internal/sdnotify"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/script"
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
	// ExtraPIDFiles get the same PID as PIDFile (keepalived's -r/-c pid
	// files of its VRRP and checker children: xdpvip is one process).
	ExtraPIDFiles []string
	// DontReleaseIPVS keeps the IPVS services on stop (keepalived -I).
	DontReleaseIPVS bool
	// DontReleaseVRRP leaves VIPs and forwarding in place on stop, with no
	// priority-0 advert (keepalived -V): the next daemon adopts them.
	DontReleaseVRRP bool
	// MetricsAddress is HOST:PORT for /metrics and /healthz; empty: none.
	MetricsAddress string
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
	loader   *configload.Loader

	mu        sync.Mutex
	cfg       *config.Config
	instances map[string]*runningInstance
	groups    map[string]*instance.SyncGroup
	links     *instance.LinkFollower
	scripts   context.CancelFunc
	lvsMgr    *lvs.Manager
	monitors  *monitors.Set
	started   time.Time
	reloads   int
	routes    *announce.Routes
	// refusedReloads counts reloads that did not load or were refused.
	refusedReloads int
	// reloadReqs carries `xdpvip reload [--dry-run]` from the control
	// socket to the main loop, where every reload runs.
	reloadReqs chan reloadRequest
	// runners are the vrrp_script runners wireTracking started, by name.
	runners map[string]*instance.ScriptRunner
	// gate checks the scripts of every configuration loaded; disabled
	// are the running configuration's vrrp_scripts it disabled, and why.
	gate     *scriptGate
	disabled map[string]string
}

// runningInstance is an instance with the handles it owns.
type runningInstance struct {
	in      *instance.Instance
	cfg     *config.VRRPInstance
	tracked []instance.Tracked
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// undo releases what was opened for the instance while it is only
	// prepared (not running yet).
	undo []func()
}

// loadConfigFile reads a configuration; tests replace it.
var loadConfigFile = config.Load

// Run runs the daemon until ctx is cancelled, then leaves gracefully.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ControlSocket == "" {
		opts.ControlSocket = control.DefaultSocket
	}
	if opts.BPFDir == "" {
		opts.BPFDir = dataplane.DefaultBPFDir
	}
	// One daemon per bpf dir, decided before anything is read or written.
	lock, err := runlock.Take(opts.BPFDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	loader := configload.New()
	gate := newScriptGate(opts.Logger)
	loader.Read = gate.read(func(p string) (*config.Config, []config.Diagnostic, error) { return loadConfigFile(p) })
	cfg, err := loader.Load(ctx, opts.ConfigPath, opts.Logger)
	if err != nil {
		return err
	}
	d := &Daemon{
		opts: opts, log: opts.Logger, cfg: cfg, loader: loader, gate: gate,
		notifier:  &script.Notifier{Logger: opts.Logger},
		vipMgr:    netif.NewVIPs(nil),
		instances: map[string]*runningInstance{},
		groups:    map[string]*instance.SyncGroup{},
		started:   time.Now(),
	}
	d.routes = announce.New(routeNode{d}, d.log)
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
	d.monitors = monitors.New(d.lvsMgr, d.log)
	d.links = instance.NewLinkFollower(d.log, func(iface string) error { return d.planes.reopen(iface, d.lvsMgr.Services()) })
	// Serve only once the dataplane and the manager exist: Status and LVS
	// read them.
	srv.Handle("status", func(context.Context) (any, error) { return d.Status(), nil })
	srv.Handle("lvs", func(context.Context) (any, error) { return d.LVS() })
	d.reloadReqs = make(chan reloadRequest)
	srv.Handle("reload", func(ctx context.Context) (any, error) { return d.requestReload(ctx, false) })
	srv.Handle("reload-dry-run", func(ctx context.Context) (any, error) { return d.requestReload(ctx, true) })
	// Metrics are not worth failing over: a taken port is logged, and the
	// daemon runs without them.
	if ms, err := d.serveMetrics(); err != nil {
		d.log.Error("metrics disabled", "err", err)
	} else if ms != nil {
		defer ms.Close()
	}
	if _, err := d.apply(ctx, cfg); err != nil {
		d.shutdown()
		return err
	}
	srv.Handle("drain", func(context.Context) (any, error) { return d.routes.Drain() })
	srv.Handle("undrain", func(context.Context) (any, error) { return d.routes.Undrain() })
	// Answer once every instance has started (leftover VIPs dealt with) and
	// every handler is registered.
	go srv.Serve()
	if err := d.routes.Start(ctx); err != nil {
		d.shutdown()
		return err
	}
	// Written last: a PID file means a daemon that started.
	if opts.PIDFile != "" {
		if err := runlock.WritePIDFile(opts.PIDFile); err != nil {
			d.shutdown()
			return err
		}
		defer runlock.RemovePIDFile(opts.PIDFile)
	}
	for _, f := range opts.ExtraPIDFiles {
		if err := runlock.WritePIDFile(f); err != nil {
			d.shutdown()
			return err
		}
		defer runlock.RemovePIDFile(f)
	}
	d.log.Info("xdpvip started", "config", opts.ConfigPath, "instances", len(cfg.Instances),
		"virtual_servers", len(cfg.VirtualServers), "dataplane", d.planes.name())
	svc := sdnotify.NewService(d.log)
	svc.Ready(d.summary())

	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping: leaving gracefully")
			svc.Stopping()
			d.routes.DrainBeforeStop() // withdraw first
			d.shutdown()
			return nil
		case <-opts.Reload:
			svc.Reloading()
			d.reload(ctx)
			svc.Ready(d.summary())
		case req := <-d.reloadReqs:
			if req.dryRun {
				req.reply <- d.dryRun(ctx)
				continue
			}
			svc.Reloading()
			req.reply <- d.reload(ctx)
			svc.Ready(d.summary())
		case <-svc.Watchdog:
			svc.Ping()
		}
	}
}

// reload reads the configuration again and applies the difference.
// A config that does not load leaves everything as it is.
func (d *Daemon) reload(ctx context.Context) reloadplan.Result {
	cfg, err := d.loader.Load(ctx, d.opts.ConfigPath, d.log)
	if err != nil {
		d.log.Error("reload failed: keeping the running configuration", "err", err)
		d.countRefused()
		return reloadplan.Result{Plan: reloadplan.Plan{Refused: err.Error()}, Error: err.Error()}
	}
	d.mu.Lock()
	plan := reloadplan.Compute(d.cfg, cfg)
	d.mu.Unlock()
	// A configuration whose new or changed instances cannot all be opened
	// is refused and changes nothing either (apply).
	res, err := d.apply(ctx, cfg)
	var refused refusal
	switch {
	case errors.As(err, &refused):
		d.log.Error("reload refused: nothing applied, the running configuration is kept", "err", err)
		d.countRefused()
		plan.Refused = err.Error()
		return reloadplan.Result{Plan: plan, Error: err.Error()}
	case err != nil:
		d.log.Error("reload partly applied", "applied", res.String(), "err", err)
	default:
		d.log.Info("configuration reloaded", "applied", res.String(), "instances", len(cfg.Instances), "virtual_servers", len(cfg.VirtualServers))
	}
	out := reloadplan.Result{Plan: plan, Applied: res.String()}
	out.Plan.Refused = "" // apply opened everything it needed
	if err != nil {
		out.Error = err.Error()
	}
	// A bgp block the reload added starts the speaker; a running one
	// follows the configuration by itself.
	if err := d.routes.Start(ctx); err != nil {
		d.log.Error("reload: starting the bgp speaker failed", "err", err)
	}
	d.mu.Lock()
	d.reloads++
	d.mu.Unlock()
	return out
}

// reloadRequest is one `xdpvip reload [--dry-run]` waiting for the main loop.
type reloadRequest struct {
	dryRun bool
	reply  chan reloadplan.Result
}

// requestReload hands a reload to the main loop (so it never runs beside a
// SIGHUP's) and waits for its result.
func (d *Daemon) requestReload(ctx context.Context, dryRun bool) (reloadplan.Result, error) {
	req := reloadRequest{dryRun: dryRun, reply: make(chan reloadplan.Result, 1)}
	select {
	case d.reloadReqs <- req:
	case <-ctx.Done():
		return reloadplan.Result{}, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r, nil
	case <-ctx.Done():
		return reloadplan.Result{}, ctx.Err()
	}
}

// dryRun loads the configuration and says what a reload would do,
// changing nothing.
func (d *Daemon) dryRun(ctx context.Context) reloadplan.Result {
	cfg, err := d.loader.Load(ctx, d.opts.ConfigPath, d.log)
	if err != nil {
		return reloadplan.Result{DryRun: true, Plan: reloadplan.Plan{Refused: err.Error()}, Error: err.Error()}
	}
	d.mu.Lock()
	plan := reloadplan.Compute(d.cfg, cfg)
	d.mu.Unlock()
	d.log.Info("reload dry run: nothing applied", "changes", len(plan.Changes), "refused", plan.Refused)
	return reloadplan.Result{DryRun: true, Plan: plan}
}

// summary is the one-line status `systemctl status` shows.
func (d *Daemon) summary() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("%d VRRP instance(s), %d virtual server(s), dataplane %s, %d reload(s)",
		len(d.instances), len(d.cfg.VirtualServers), d.planes.name(), d.reloads)
}

// countRefused counts a reload that changed nothing (metrics).
func (d *Daemon) countRefused() {
	d.mu.Lock()
	d.refusedReloads++
	d.mu.Unlock()
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
	d.runners = runners
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
			d.links.Follow(ev, homes[ev.Name], watch[ev.Name])
		}
	}()
}

// shutdown stops every instance gracefully, then the checkers.
func (d *Daemon) shutdown() {
	d.mu.Lock()
	instances := d.instances
	d.instances = map[string]*runningInstance{}
	if d.scripts != nil {
		d.scripts()
	}
	d.mu.Unlock()
	d.routes.Stop()
	var wg sync.WaitGroup
	for _, ri := range instances {
		wg.Add(1)
		go func() { defer wg.Done(); d.stopInstance(ri, nil) }()
	}
	wg.Wait()
	if d.lvsMgr != nil {
		d.monitors.Stop()
		d.lvsMgr.Shutdown()
	}
	// Like keepalived (without --dont-release-ipvs), remove the IPVS
	// services this daemon owns; services made by others stay. (The XDP
	// program's maps stay, so forwarding survives a restart.)
	if d.planes != nil && d.planes.ipvs != nil && !d.opts.DontReleaseIPVS {
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
	st.Scripts = d.scriptStatus()
	st.BGP = d.routes.Status()
	return st
}
