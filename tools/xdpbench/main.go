// Command xdpbench measures how many packets per second the XDP DR path
// forwards against the kernel stack, on the same veth, in the same run.
//
// One veth pair between a generator namespace and a load-balancer
// namespace (see topo.go). trafgen sends 60-byte frames from one core,
// as fast as it can, for --duration after a --warmup; the rate counted is
// what the load-balancer side handled in that window:
//
//   - kernel: UDP to the load balancer's own address on a closed port,
//     no XDP program on lb0: the kernel stack receives, routes and drops
//     them (counted: Udp NoPorts of /proc/net/snmp in the namespace);
//   - xdp-tx: UDP to a virtual server VIP:9000 (pkg/dataplane, Maglev over
//     one real server, VIP active): the program rewrites the MACs and
//     sends the frame back out with XDP_TX (counted: fwd_tx);
//   - xdp-drop: VRRPv3 adverts for a VRID nobody configured, dropped in
//     XDP (counted: the "vrid" drop counter);
//   - and what xdp-tx is compared with (ceilings.go), with its frames:
//     xdp-ceiling (a trivial MAC-swap XDP_TX program), kernel-forward
//     (ip_forward and a route) and nft-fwd (nftables netdev fwd). The
//     report ends with xdp-tx's ratio to each;
//   - generator only: a counting XDP_DROP on lb0, the generator's own
//     rate. With the live generator, the sender, lb0's receive path and
//     the sink all run on one core, so a path's rate mixes its cost with
//     the generator's, and once a path takes all that is offered its rate
//     is the generator's. "net ns" takes the generator's share out
//     (netCost in ceilings.go) and the "cost ratio" lines compare paths
//     by it.
//
// The generator's own veth end carries an XDP_DROP program: XDP_TX into a
// veth needs a program on the other end (issue 4), and it is the cheapest
// sink for what comes back.
//
//	xdpbench --duration 5s --flows 64 [--json out.json]
//
// Needs root, iproute2, nft (nftables) and, with --generator trafgen,
// trafgen (netsniff-ng). Everything it creates
// (namespaces xbXXXXXX-*, pins under /sys/fs/bpf/xbXXXXXX) is removed on
// exit and on SIGINT/SIGTERM.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"github.com/spf13/pflag"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"

	"github.com/xdpvip/xdpvip/pkg/dataplane"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

const (
	vipPort      = 9000
	closedPort   = 9 // discard: nothing listens in the namespace
	foreignVRID  = 200
	firstSrcPort = 20000
)

// options are the command-line flags.
type options struct {
	duration  time.Duration
	warmup    time.Duration
	flows     int
	cpus      int
	mode      string
	generator string
	trafgen   string
	jsonOut   string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := pflag.NewFlagSet("xdpbench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per path")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time before each measurement")
	fs.IntVar(&o.flows, "flows", 64, "UDP flows (source ports) the generator cycles through")
	fs.IntVar(&o.cpus, "cpus", 1, "trafgen senders (one per CPU)")
	fs.StringVar(&o.mode, "mode", "native", "XDP attach mode of the program under test: native or generic")
	fs.StringVar(&o.generator, "generator", "live", "live (BPF_PROG_RUN live frames redirected into the veth, in the kernel) or trafgen (AF_PACKET from user space)")
	fs.StringVar(&o.trafgen, "trafgen", "trafgen", "trafgen binary (--generator trafgen)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.duration < 100*time.Millisecond:
		return o, fmt.Errorf("--duration %v: at least 100ms", o.duration)
	case o.warmup < 0:
		return o, fmt.Errorf("--warmup %v: negative", o.warmup)
	case o.flows < 1 || o.flows > 4096:
		return o, fmt.Errorf("--flows %d: between 1 and 4096", o.flows)
	case o.cpus < 1:
		return o, fmt.Errorf("--cpus %d: at least 1", o.cpus)
	case o.mode != "native" && o.mode != "generic":
		return o, fmt.Errorf("--mode %q: native or generic", o.mode)
	case o.generator != "live" && o.generator != "trafgen":
		return o, fmt.Errorf("--generator %q: live or trafgen", o.generator)
	}
	return o, nil
}

// result is one path's measurement.
type result struct {
	Path    string        `json:"path"`
	Counter string        `json:"counter"`
	Window  time.Duration `json:"window_ns"`
	// Offered is what the generator's veth end sent in the window,
	// Handled what the path counted, both per second.
	OfferedPPS float64 `json:"offered_pps"`
	HandledPPS float64 `json:"handled_pps"`
	// Sent is trafgen's own total for the whole run, warm-up included.
	Sent uint64 `json:"trafgen_sent"`
	// NetCost is the path's cost per frame less the generator's
	// (netCost); 0 when it cannot be derived (trafgen: the sender runs on
	// its own core).
	NetCost float64 `json:"net_cost_ns"`
}

// report is the JSON output.
type report struct {
	Flows   int      `json:"flows"`
	CPUs    int      `json:"cpus"`
	Mode    string   `json:"mode"`
	Results []result `json:"results"`
	// TXOverKernel is handled xdp-tx / handled kernel.
	TXOverKernel   float64 `json:"xdp_tx_over_kernel"`
	DropOverKernel float64 `json:"xdp_drop_over_kernel"`
	// The ratios of issue 13.1: xdp-tx over the MAC-swap ceiling, the
	// kernel forwarding path and nftables' netdev fwd.
	TXOverCeiling float64 `json:"xdp_tx_over_ceiling"`
	TXOverForward float64 `json:"xdp_tx_over_kernel_forward"`
	TXOverNft     float64 `json:"xdp_tx_over_nft_fwd"`
	// The same comparisons by net cost per frame (the generator's share
	// of the core taken out): kernel-forward's cost over xdp-tx's, etc.
	CostForwardOverTX float64 `json:"kernel_forward_cost_over_xdp_tx"`
	CostNftOverTX     float64 `json:"nft_fwd_cost_over_xdp_tx"`
	CostTXOverCeiling float64 `json:"xdp_tx_cost_over_ceiling"`
}

// ratio is a's handled rate over b's, 0 when b handled nothing.
func ratio(a, b result) float64 {
	if b.HandledPPS == 0 {
		return 0
	}
	return a.HandledPPS / b.HandledPPS
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdpbench:", err)
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "xdpbench:", err)
		os.Exit(1)
	}
}

func run(o options, out io.Writer) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, XDP)")
	}
	if o.generator == "trafgen" {
		if _, err := exec.LookPath(o.trafgen); err != nil {
			return fmt.Errorf("%s not found (apt-get install netsniff-ng): %w", o.trafgen, err)
		}
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("lifting RLIMIT_MEMLOCK: %w", err)
	}
	topo, err := newTopology()
	if err != nil {
		return err
	}
	bpfDir := filepath.Join("/sys/fs/bpf", topo.prefix)
	work, err := os.MkdirTemp("", topo.prefix+"-")
	if err != nil {
		topo.Close()
		return err
	}
	var dp *dataplane.Dataplane
	cleanup := func() {
		if dp != nil {
			dp.Close()
			_ = inNS(topo.lbNS, func() error { return dataplane.Detach(bpfDir, lbIface) })
		}
		topo.Close()
		os.RemoveAll(bpfDir)
		os.RemoveAll(work)
	}
	defer cleanup()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; ok {
			cleanup()
			os.Exit(130)
		}
	}()

	if err := attachSink(topo.genNS, genIface); err != nil {
		return err
	}
	genNS, err := netns.GetFromName(topo.genNS)
	if err != nil {
		return err
	}
	genHandle, err := netlink.NewHandleAt(genNS)
	genNS.Close()
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", topo.genNS, err)
	}
	defer genHandle.Close()
	genLink, err := genHandle.LinkByName(genIface)
	if err != nil {
		return err
	}
	gen := generator{o: o, ns: topo.genNS, host: topo.A, dir: work, start: newStarter(), gen: genHandle, genIndex: genLink.Attrs().Index}
	if o.generator == "live" {
		// lb0 must run NAPI to take redirected frames: its XDP program
		// does; without one (the kernel path), GRO does.
		if _, err := nsOutput(topo.lbNS, "ethtool", "-K", lbIface, "gro", "on"); err != nil {
			return fmt.Errorf("GRO on %s (ethtool): %w", lbIface, err)
		}
	}

	// kernel: no XDP program on lb0.
	kernelFrames := udpFrames(o.flows, topo.lbMAC, topo.genMAC, genAddr.Addr(), firstSrcPort, netip.AddrPortFrom(lbAddr.Addr(), closedPort))
	kernel, err := gen.measure("kernel (UDP to a closed port)", "Udp NoPorts", kernelFrames, func() (uint64, error) {
		b, err := nsOutput(topo.lbNS, "cat", "/proc/net/snmp")
		if err != nil {
			return 0, err
		}
		return parseSNMP(string(b), "Udp", "NoPorts")
	})
	if err != nil {
		return err
	}

	txFrames := udpFrames(o.flows, topo.lbMAC, topo.genMAC, genAddr.Addr(), firstSrcPort, netip.AddrPortFrom(vipAddr, vipPort))
	base, err := gen.measureBaselines(topo.lbNS, work, txFrames)
	if err != nil {
		return err
	}

	// The XDP program on lb0 with one virtual server.
	if err := inNS(topo.lbNS, func() error {
		var err error
		dp, err = dataplane.Open(dataplane.Options{Iface: lbIface, BPFDir: bpfDir, Mode: o.mode})
		return err
	}); err != nil {
		return fmt.Errorf("loading the XDP program on %s: %w", lbIface, err)
	}
	svc := lvs.Service{
		Key:       lvs.ServiceKey{Proto: lvs.ProtoUDP, Addr: vipAddr, Port: vipPort},
		Scheduler: "wrr",
		Dests:     []lvs.Dest{{Addr: realAddr, Port: vipPort, Weight: 1, Method: "DR"}},
	}
	if err := dp.Apply([]lvs.Service{svc}); err != nil {
		return fmt.Errorf("programming the virtual server: %w", err)
	}
	if err := dp.SetVIPActive(vipAddr, true); err != nil {
		return err
	}
	counter := func(name string) func() (uint64, error) {
		return func() (uint64, error) {
			c, err := dp.Counters()
			if err != nil {
				return 0, err
			}
			v, ok := c[name]
			if !ok {
				return 0, fmt.Errorf("the program has no counter %q", name)
			}
			return v, nil
		}
	}
	tx, err := gen.measure("xdp-tx (VIP -> real server, MACs rewritten)", "fwd_tx", txFrames, counter("fwd_tx"))
	if err != nil {
		return err
	}
	if tx.HandledPPS == 0 {
		c, _ := dp.Counters()
		return fmt.Errorf("the XDP program forwarded nothing (counters %v)", c)
	}
	advert, err := foreignAdvertFrame(foreignVRID, topo.genMAC, genAddr.Addr())
	if err != nil {
		return err
	}
	drop, err := gen.measure("xdp-drop (VRRP, foreign VRID)", "vrid", [][]byte{advert}, counter("vrid"))
	if err != nil {
		return err
	}

	rep := report{Flows: o.flows, CPUs: o.cpus, Mode: o.mode, Results: []result{base.sink, kernel, base.forward, base.nft, base.ceiling, tx, drop}}
	if o.generator == "live" {
		for i := range rep.Results {
			if rep.Results[i].Path != pathSink {
				rep.Results[i].NetCost = netCost(rep.Results[i], base.sink)
			}
		}
		rep.CostForwardOverTX = costRatio(tx, base.forward, base.sink)
		rep.CostNftOverTX = costRatio(tx, base.nft, base.sink)
		rep.CostTXOverCeiling = costRatio(base.ceiling, tx, base.sink)
	}
	rep.TXOverKernel = ratio(tx, kernel)
	rep.DropOverKernel = ratio(drop, kernel)
	rep.TXOverCeiling = ratio(tx, base.ceiling)
	rep.TXOverForward = ratio(tx, base.forward)
	rep.TXOverNft = ratio(tx, base.nft)
	printReport(out, o, rep)
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func printReport(w io.Writer, o options, rep report) {
	gen := "BPF_PROG_RUN live frames redirected into the veth, one core"
	if o.generator == "trafgen" {
		gen = fmt.Sprintf("trafgen on %d CPU(s)", o.cpus)
	}
	fmt.Fprintf(w, "xdpbench: veth %s -> %s, generator: %s, %d flow(s), 60-byte frames, %v measured per path after %v warm-up, XDP %s\n",
		genIface, lbIface, gen, o.flows, o.duration, o.warmup, o.mode)
	fmt.Fprintf(w, "%-54s %12s %12s %9s  %s\n", "path", "offered Mpps", "handled Mpps", "net ns", "counted as")
	for _, r := range rep.Results {
		cost := "-"
		if r.NetCost > 0 {
			cost = fmt.Sprintf("%.1f", r.NetCost)
		}
		fmt.Fprintf(w, "%-54s %12.3f %12.3f %9s  %s\n", r.Path, r.OfferedPPS/1e6, r.HandledPPS/1e6, cost, r.Counter)
	}
	fmt.Fprintf(w, "ratio xdp-tx / kernel:   %.2fx\n", rep.TXOverKernel)
	fmt.Fprintf(w, "ratio xdp-drop / kernel: %.2fx\n", rep.DropOverKernel)
	fmt.Fprintf(w, "ratio xdp-tx / ceiling: %.2f\n", rep.TXOverCeiling)
	fmt.Fprintf(w, "ratio xdp-tx / kernel-forward: %.2f\n", rep.TXOverForward)
	fmt.Fprintf(w, "ratio xdp-tx / nft-fwd: %.2f\n", rep.TXOverNft)
	if rep.CostForwardOverTX > 0 {
		fmt.Fprintln(w, "net ns: a path's core time per frame less the generator's (1/the generator-only rate); the generator shares the path's core")
		fmt.Fprintf(w, "cost ratio kernel-forward / xdp-tx: %.2f\n", rep.CostForwardOverTX)
		fmt.Fprintf(w, "cost ratio nft-fwd / xdp-tx: %.2f\n", rep.CostNftOverTX)
		fmt.Fprintf(w, "cost ratio xdp-tx / ceiling: %.2f\n", rep.CostTXOverCeiling)
	}
	for _, r := range rep.Results {
		if generatorBound(r) && (r.Path == pathCeiling || r.Counter == "fwd_tx") {
			fmt.Fprintf(w, "note: %s handled all the generator offered: its rate is the generator's (a lower bound)\n", r.Path)
		}
	}
}

// attachSink puts an XDP program that drops every frame on iface in ns
// (native mode).
func attachSink(ns, iface string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xdpbench_sink", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1 /* XDP_DROP */), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("loading the XDP sink: %w", err)
	}
	defer prog.Close() // the attachment keeps its own reference
	return inNS(ns, func() error {
		l, err := netlink.LinkByName(iface)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetXdpFdWithFlags(l, prog.FD(), nl.XDP_FLAGS_DRV_MODE); err != nil {
			return fmt.Errorf("attaching the XDP sink to %s: %w", iface, err)
		}
		return nil
	})
}
