// Command failoverbench measures VRRP failover of xdpvip and keepalived
// side by side, in one namespace topology, in the same run.
//
// Topology (see topo.go): client, lb1 (priority 100) and lb2 (priority 90)
// on a bridge; VIP 192.0.2.100/24, VRID 51. Both daemons get the same
// keepalived.conf. Each load balancer has a TCP responder on VIP:8080 that
// answers with its name; the client connects to the VIP every 5 ms (100 ms
// timeout, several attempts in flight).
//
// A run: start lb1, wait until it holds the VIP; start lb2; wait until the
// client's neighbour entry for the VIP holds lb1's MAC and lb1 answers;
// let lb2 listen for 3 × advert_int + 0.5 s plus a random fraction of
// advert_int (so the failure falls at a random advert phase); then fail
// lb1 and measure from that instant t0:
//
//   - new MASTER: the VIP appears on lb2's interface (netlink address
//     notification, with a 2 ms poll as a safety net). The same definition
//     for both daemons, independent of their own status reporting;
//   - client neighbour: the client's entry for the VIP holds lb2's MAC
//     (netlink neighbour notification, with a poll);
//   - first TCP answer from lb2 read by the client.
//
// Scenarios: crash (SIGKILL to the daemon's process group, then lb1's
// cable down, so the dead host neither advertises nor answers on the VIP)
// and graceful (SIGTERM), each at VRRPv2 advert_int 1 with PASS auth and
// VRRPv3 advert_int 0.1. Runs of the daemons are interleaved (run i of
// every daemon before run i+1), so load drift hits all of them alike.
//
//	failoverbench --xdpvip bin/xdpvip --runs 5
//	failoverbench --scenarios crash-v3,graceful-v3 --daemons xdpvip,xdpvip-none,keepalived
//
// Needs root, iproute2, nsenter and keepalived. Everything it creates (the
// namespaces named fbXXXXXX-*, pins under /sys/fs/bpf/fbXXXXXX-*, its work
// directory) is removed on exit and on SIGINT/SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/vishvananda/netlink"

	"github.com/xdpvip/xdpvip/internal/netlab"
)

const (
	vrid          = 51
	vipPrefix     = "192.0.2.100/24"
	responderPort = 8080
)

var vipAddr = netip.MustParsePrefix(vipPrefix).Addr()

// options are the command-line flags.
type options struct {
	runs          int
	scenarios     []scenario
	daemons       []daemonSpec
	xdpvip        string
	keepalived    string
	jsonOut       string
	keep          bool
	bpfRoot       string
	probeInterval time.Duration
	probeTimeout  time.Duration
	maxStall      time.Duration
	retries       int
}

func parseFlags(args []string) (options, error) {
	fs := pflag.NewFlagSet("failoverbench", pflag.ContinueOnError)
	var o options
	var scen, daemons string
	fs.IntVar(&o.runs, "runs", 5, "runs per scenario and daemon")
	fs.StringVar(&scen, "scenarios", "all", "comma-separated: crash-v2, graceful-v2, crash-v3, graceful-v3, all")
	fs.StringVar(&daemons, "daemons", "xdpvip,keepalived", "comma-separated: xdpvip (default dataplane), xdpvip-none (--dataplane none), keepalived")
	fs.StringVar(&o.xdpvip, "xdpvip", "bin/xdpvip", "path of the xdpvip binary")
	fs.StringVar(&o.keepalived, "keepalived", "keepalived", "keepalived binary")
	fs.StringVar(&o.jsonOut, "json", "", "also write every sample (ms) to this JSON file")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configs and daemon logs)")
	fs.StringVar(&o.bpfRoot, "bpf-root", "/sys/fs/bpf", "bpffs directory under which each xdpvip gets a pin directory")
	fs.DurationVar(&o.probeInterval, "probe-interval", 5*time.Millisecond, "time between TCP connects to the VIP")
	fs.DurationVar(&o.probeTimeout, "probe-timeout", 100*time.Millisecond, "timeout of one TCP connect and answer")
	fs.DurationVar(&o.maxStall, "max-stall", 25*time.Millisecond, "repeat a run in which the measuring process itself went this long without running")
	fs.IntVar(&o.retries, "retries", 3, "how often a stalled run is repeated before its figures are kept anyway (flagged)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", errBadFlag, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", errBadFlag, fs.Arg(0))
	}
	if o.runs < 1 {
		return o, fmt.Errorf("%w: --runs must be at least 1", errBadFlag)
	}
	if o.retries < 0 {
		return o, fmt.Errorf("%w: --retries must not be negative", errBadFlag)
	}
	if o.probeInterval <= 0 || o.probeTimeout <= 0 {
		return o, fmt.Errorf("%w: --probe-interval and --probe-timeout must be positive", errBadFlag)
	}
	var err error
	if o.scenarios, err = parseScenarios(scen); err != nil {
		return o, err
	}
	if o.daemons, err = parseDaemons(daemons); err != nil {
		return o, err
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "failoverbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o, os.Stdout, os.Stderr)
	if err == nil && o.jsonOut != "" {
		err = writeJSON(o.jsonOut, res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "failoverbench:", err)
		stop()
		os.Exit(1)
	}
}

// bench is the state shared by every run.
type bench struct {
	o      options
	topo   *topology
	runner *daemonRunner
	obs    *observer
	probe  *prober
	lb1NH  *netlink.Handle
	lb2NH  *netlink.Handle
	cliNH  *netlink.Handle
	cliIdx int
}

// run builds the topology, runs every scenario, prints a line per run to
// progress and the table to out, and tears everything down.
func run(ctx context.Context, o options, out, progress io.Writer) (results, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (network namespaces, raw sockets, XDP)")
	}
	var err error
	if o.xdpvip, err = resolveBinary(o.xdpvip, o.daemons, false); err != nil {
		return nil, err
	}
	if o.keepalived, err = resolveBinary(o.keepalived, o.daemons, true); err != nil {
		return nil, err
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("needs %s: %w", tool, err)
		}
	}
	// The responders, prober and watchers stop with this context.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	topo, err := newTopology()
	if err != nil {
		return nil, err
	}
	defer topo.Close()
	defer cancel() // stop the probes before the namespaces go
	workDir, err := os.MkdirTemp("", "failoverbench-"+topo.Prefix()+"-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintln(progress, "failoverbench: work directory", workDir)
	} else {
		defer os.RemoveAll(workDir)
	}
	b := &bench{
		o:      o,
		topo:   topo,
		runner: &daemonRunner{xdpvip: o.xdpvip, keepalived: o.keepalived, workDir: workDir, bpfRoot: o.bpfRoot, prefix: topo.Prefix()},
		obs:    &observer{},
	}
	defer func() {
		_ = b.runner.removePins(topo.lb1)
		_ = b.runner.removePins(topo.lb2)
	}()
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	defer b.lb1NH.Close()
	defer b.lb2NH.Close()
	defer b.cliNH.Close()

	printHeader(out, o, topo)
	res := results{}
	repeated, kept := 0, 0 // runs in which this process stalled
	for _, sc := range o.scenarios {
		for i := range o.runs {
			order := append([]daemonSpec(nil), o.daemons...)
			if i%2 == 1 { // alternate which daemon goes first
				for l, r := 0, len(order)-1; l < r; l, r = l+1, r-1 {
					order[l], order[r] = order[r], order[l]
				}
			}
			for _, d := range order {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("interrupted: %w", ctx.Err())
				}
				for attempt := 0; ; attempt++ {
					m, stall, err := b.runOnce(ctx, sc, d)
					if err != nil {
						return nil, fmt.Errorf("%s run %d, %s: %w", sc.Name, i+1, d.Name, err)
					}
					line := fmt.Sprintf("%-12s run %d/%d  %-12s master %8s  neigh %8s  tcp %8s  (stall %s)",
						sc.Name, i+1, o.runs, d.Name, msOrDash(m[metricMaster]), msOrDash(m[metricNeigh]), msOrDash(m[metricTCP]), msOrDash(stall))
					if stall > o.maxStall && attempt < o.retries {
						fmt.Fprintf(progress, "%s  discarded: the benchmark itself stalled, repeating\n", line)
						repeated++
						continue
					}
					if stall > o.maxStall {
						line += "  kept after " + strconv.Itoa(o.retries) + " repeats: figures are upper bounds"
						kept++
					}
					fmt.Fprintln(progress, line)
					res.add(sc.Name, d.Name, m)
					break
				}
			}
		}
	}
	fmt.Fprintln(out)
	printTable(out, res, o.scenarios, o.daemons)
	fmt.Fprintf(out, "\nruns repeated because the benchmark process stalled > %v: %d; stalled runs kept after %d repeats: %d\n",
		o.maxStall, repeated, o.retries, kept)
	return res, nil
}

// resolveBinary finds the binary for the xdpvip or keepalived daemons, if
// any daemon in the list needs it.
func resolveBinary(path string, daemons []daemonSpec, keepalived bool) (string, error) {
	needed := false
	for _, d := range daemons {
		needed = needed || d.Keepalived == keepalived
	}
	if !needed {
		return path, nil
	}
	p, err := exec.LookPath(path)
	if err != nil {
		hint := "build it with `make build` or pass --xdpvip"
		if keepalived {
			hint = "install the keepalived package or pass --keepalived"
		}
		return "", fmt.Errorf("%s: %w (%s)", path, err, hint)
	}
	return filepath.Abs(p)
}

func msOrDash(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return ms(d) + "ms"
}

// setup starts the responders, the prober and the watchers; they run
// until ctx ends.
func (b *bench) setup(ctx context.Context) error {
	t := b.topo
	for _, h := range []*host{t.lb1, t.lb2} {
		if err := startResponder(ctx, h, responderPort); err != nil {
			return err
		}
	}
	b.probe = &prober{
		target:   netip.AddrPortFrom(vipAddr, responderPort),
		interval: b.o.probeInterval,
		timeout:  b.o.probeTimeout,
		workers:  int(b.o.probeTimeout/b.o.probeInterval) + 4,
		last:     map[string]time.Time{},
		onAnswer: func(name string, at time.Time) {
			if name == t.lb2.Name() {
				b.obs.mark(metricTCP, at)
			}
		},
	}
	if err := b.probe.run(ctx, t.client); err != nil {
		return err
	}
	if err := watchAddr(ctx, t.lb2, vipAddr, 2*time.Millisecond, b.obs); err != nil {
		return err
	}
	if err := watchNeigh(ctx, t.client, vipAddr, t.lb2.MAC(), 2*time.Millisecond, b.obs); err != nil {
		return err
	}
	var err error
	if b.lb1NH, err = t.lb1.Handle(); err != nil {
		return err
	}
	if b.lb2NH, err = t.lb2.Handle(); err != nil {
		return err
	}
	if b.cliNH, err = t.client.Handle(); err != nil {
		return err
	}
	l, err := b.cliNH.LinkByName(hostIface)
	if err != nil {
		return err
	}
	b.cliIdx = l.Attrs().Index
	return nil
}

// reset brings the topology back to its initial state: cables up, no VIP
// anywhere, no pins (so no XDP program attached), no client neighbour
// entry for the VIP. The daemons must be stopped already.
func (b *bench) reset() error {
	t := b.topo
	for _, h := range []*host{t.lb1, t.lb2} {
		if err := t.setCable(h, true); err != nil {
			return err
		}
		if err := h.DelAddr(netip.MustParsePrefix(vipPrefix)); err != nil {
			return err
		}
		if err := b.runner.removePins(h); err != nil {
			return err
		}
	}
	for _, x := range []struct {
		h  *host
		nh *netlink.Handle
	}{{t.lb1, b.lb1NH}, {t.lb2, b.lb2NH}} {
		// Unpinning the link of a dead daemon detaches its program; wait
		// for that so keepalived never runs behind a leftover XDP program.
		err := waitFor(5*time.Second, func() error {
			l, err := x.nh.LinkByName(hostIface)
			if err != nil {
				return err
			}
			if xdp := l.Attrs().Xdp; xdp != nil && xdp.Attached {
				return fmt.Errorf("XDP program %d still attached to %s in %s", xdp.ProgId, hostIface, x.h.NS())
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return t.client.FlushNeigh(vipAddr)
}

// runOnce runs one failover of daemon d in scenario sc and returns the
// three delays (-1 for a metric not met within the deadline).
// The second result is the longest stall of this process while it measured.
func (b *bench) runOnce(ctx context.Context, sc scenario, d daemonSpec) (m [numMetrics]time.Duration, stall time.Duration, err error) {
	t := b.topo
	if err := b.reset(); err != nil {
		return m, 0, fmt.Errorf("reset: %w", err)
	}
	lb1, err := b.runner.start(d, t.lb1, sc, nodeConf{RouterID: "lb1", State: "MASTER", Priority: 100})
	if err != nil {
		return m, 0, err
	}
	defer lb1.Stop(10 * time.Second)
	alive := func(p *process, name string) error {
		if p.Exited() {
			return fmt.Errorf("%s on %s: %w:\n%s", d.Name, name, errDaemonExited, p.LogTail(20))
		}
		return ctx.Err()
	}
	err = waitFor(10*time.Second+4*sc.AdvertInt, func() error {
		if err := alive(lb1, "lb1"); err != nil {
			return err
		}
		return b.vipOn(b.lb1NH, "lb1", true)
	})
	if err != nil {
		return m, 0, fmt.Errorf("lb1 never took the VIP: %w\n%s", err, lb1.LogTail(20))
	}

	lb2Start := time.Now()
	lb2, err := b.runner.start(d, t.lb2, sc, nodeConf{RouterID: "lb2", State: "BACKUP", Priority: 90})
	if err != nil {
		return m, 0, err
	}
	defer lb2.Stop(10 * time.Second)
	steady := func() error {
		if err := alive(lb1, "lb1"); err != nil {
			return err
		}
		if err := alive(lb2, "lb2"); err != nil {
			return err
		}
		if err := b.vipOn(b.lb2NH, "lb2", false); err != nil {
			return err
		}
		nb, err := netlab.NeighOn(b.cliNH, b.cliIdx, vipAddr)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		if !nb.Usable() || nb.MAC.String() != t.lb1.MAC().String() {
			return fmt.Errorf("client's neighbour entry for the VIP is %v, want lb1's %s", nb, t.lb1.MAC())
		}
		if since := time.Since(b.probe.lastAnswer(t.lb1.Name())); since > b.o.probeTimeout+10*b.o.probeInterval {
			return fmt.Errorf("lb1 last answered on the VIP %v ago", since.Round(time.Millisecond))
		}
		return nil
	}
	if err := waitFor(10*time.Second, steady); err != nil {
		return m, 0, fmt.Errorf("no steady state: %w", err)
	}
	// lb2 listens for 3 × advert_int + 0.5 s, then a random fraction of
	// advert_int so the failure falls at a random point of the advert cycle.
	settle := 3*sc.AdvertInt + 500*time.Millisecond + rand.N(sc.AdvertInt)
	if err := waitFor(settle+5*time.Second, func() error {
		if err := steady(); err != nil {
			return fmt.Errorf("%w (lost steady state while settling)", err)
		}
		if time.Since(lb2Start) < settle {
			return errNotYet
		}
		return nil
	}); err != nil {
		return m, 0, err
	}

	meter := startStallMeter(time.Millisecond)
	t0 := time.Now()
	b.obs.arm(t0)
	if sc.Graceful {
		err = lb1.Signal(syscall.SIGTERM)
	} else {
		err = lb1.SignalGroup(syscall.SIGKILL)
		if err == nil {
			err = t.setCable(t.lb1, false)
		}
	}
	if err != nil {
		meter.Stop()
		return m, 0, fmt.Errorf("failing lb1: %w", err)
	}
	m = b.obs.wait(t0.Add(4*sc.AdvertInt + 3*time.Second))
	stall = meter.Stop()
	if ctx.Err() != nil {
		return m, stall, ctx.Err()
	}
	if m[metricMaster] < 0 {
		return m, stall, fmt.Errorf("lb2 never took the VIP:\n%s", lb2.LogTail(20))
	}
	return m, stall, nil
}

// errNotYet keeps waitFor polling.
var errNotYet = errors.New("not yet")

// vipOn checks that the VIP is (want) or is not (!want) on the host.
func (b *bench) vipOn(nh *netlink.Handle, name string, want bool) error {
	var h *host
	if name == "lb1" {
		h = b.topo.lb1
	} else {
		h = b.topo.lb2
	}
	has, err := h.HasAddr(nh, vipAddr)
	if err != nil {
		return err
	}
	if has != want {
		return fmt.Errorf("VIP on %s: %v, want %v", name, has, want)
	}
	return nil
}

func printHeader(w io.Writer, o options, t *topology) {
	var names []string
	for _, d := range o.daemons {
		names = append(names, d.Name)
	}
	fmt.Fprintf(w, "failoverbench: %d runs per scenario and daemon (%s), interleaved\n", o.runs, strings.Join(names, ", "))
	for _, d := range o.daemons {
		fmt.Fprintf(w, "  %-12s %s\n", d.Name, daemonVersion(o, d))
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		fmt.Fprintf(w, "  kernel %s, %d CPUs\n", utsString(u.Release[:]), runtime.NumCPU())
	}
	fmt.Fprintf(w, "  namespaces %s-*, VIP %s, TCP probe every %v (timeout %v)\n", t.Prefix(), vipPrefix, o.probeInterval, o.probeTimeout)
	fmt.Fprintln(w, "  t0 = SIGKILL of the MASTER's process group (crash; then its cable down) or SIGTERM (graceful)")
}

func daemonVersion(o options, d daemonSpec) string {
	var out []byte
	if d.Keepalived {
		out, _ = exec.Command(o.keepalived, "-v").CombinedOutput()
	} else {
		out, _ = exec.Command(o.xdpvip, "version").CombinedOutput()
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if len(d.Extra) > 0 {
		line += " " + strings.Join(d.Extra, " ")
	}
	return line
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// writeJSON writes every sample in milliseconds (null when a run never met
// the metric): {"crash-v2": {"xdpvip": {"new MASTER (VIP on lb2)": [..]}}}.
func writeJSON(path string, r results) error {
	out := map[string]map[string]map[string][]*float64{}
	for sc, ds := range r {
		out[sc] = map[string]map[string][]*float64{}
		for d, ms := range ds {
			out[sc][d] = map[string][]*float64{}
			for m := range numMetrics {
				var vals []*float64
				for _, v := range ms[m] {
					if v < 0 {
						vals = append(vals, nil)
						continue
					}
					f := float64(v) / float64(time.Millisecond)
					vals = append(vals, &f)
				}
				out[sc][d][m.String()] = vals
			}
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
