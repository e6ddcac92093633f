package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// The paths xdpvip's DR forwarding is compared with (issue 13.1), each
// fed the same VIP frames as xdp-tx on the same veth:
//
//   - xdp-ceiling: a trivial XDP program that swaps the MACs, counts the
//     frame in a per-CPU array and returns XDP_TX: the most any XDP_TX
//     program can do here;
//   - kernel-forward: no XDP program; ip_forward on and a /32 route for
//     the VIP via the real server: the kernel routes the frame back out of
//     lb0 to the real server's MAC, as IPVS DR does after its lookup
//     (counted: Ip ForwDatagrams);
//   - nft-fwd: an nftables netdev ingress rule on lb0 that sends frames
//     for the VIP straight to the real server (`fwd ip to … device lb0`),
//     the fastest non-XDP path (counted: the rule's counter).

// Names of the rates in the report.
const (
	pathCeiling       = "xdp-ceiling (MAC swap + XDP_TX, trivial)"
	pathKernelForward = "kernel-forward (ip_forward, route to the real server)"
	pathNftFwd        = "nft-fwd (netdev ingress, fwd to the real server)"
	pathSink          = "generator only (counting XDP_DROP on lb0)"
)

// nftTable is the nftables table nft-fwd creates in the LB namespace
// (deleted with it).
const nftTable = "xdpbench"

// macSwapProgram is the ceiling: swap the Ethernet addresses, count, XDP_TX.
// Frames shorter than an Ethernet header pass.
func macSwapProgram(count *ebpf.Map) (*ebpf.Program, error) {
	return countingProgram("xdpbench_swap", count, true)
}

// sinkProgram is the generator-only baseline: count and XDP_DROP, the
// least any path can do with a frame.
func sinkProgram(count *ebpf.Map) (*ebpf.Program, error) {
	return countingProgram("xdpbench_drop", count, false)
}

// countingProgram counts each frame in count's slot 0 and returns XDP_TX
// with the MACs swapped (swap) or XDP_DROP. Frames shorter than an
// Ethernet header pass.
func countingProgram(name string, count *ebpf.Map, swap bool) (*ebpf.Program, error) {
	action := int32(1) // XDP_DROP
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // xdp_md.data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // xdp_md.data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 12),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
	}
	if swap {
		action = 3 // XDP_TX
		insns = append(insns,
			asm.LoadMem(asm.R4, asm.R2, 0, asm.Word), // destination MAC
			asm.LoadMem(asm.R5, asm.R2, 4, asm.Half),
			asm.LoadMem(asm.R6, asm.R2, 6, asm.Word), // source MAC
			asm.LoadMem(asm.R7, asm.R2, 10, asm.Half),
			asm.StoreMem(asm.R2, 0, asm.R6, asm.Word),
			asm.StoreMem(asm.R2, 4, asm.R7, asm.Half),
			asm.StoreMem(asm.R2, 6, asm.R4, asm.Word),
			asm.StoreMem(asm.R2, 10, asm.R5, asm.Half),
		)
	}
	insns = append(insns,
		asm.StoreImm(asm.R10, -4, 0, asm.Word), // key 0
		asm.LoadMapPtr(asm.R1, count.FD()),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, action).WithSymbol("out"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS
		asm.Return(),
	)
	return ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: ebpf.XDP, License: "GPL", Instructions: insns})
}

// ceiling is a counting program (the MAC-swap ceiling or the sink)
// attached to an interface.
type ceiling struct {
	count *ebpf.Map
	prog  *ebpf.Program
	ns    string
	iface string
}

// attachCeiling loads the program load makes (macSwapProgram or
// sinkProgram) and attaches it to iface in ns in driver mode.
func attachCeiling(ns, iface string, load func(*ebpf.Map) (*ebpf.Program, error)) (*ceiling, error) {
	count, err := ebpf.NewMap(&ebpf.MapSpec{Name: "xdpbench_count", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("the baseline program's counter: %w", err)
	}
	prog, err := load(count)
	if err != nil {
		count.Close()
		return nil, fmt.Errorf("loading the baseline program: %w", err)
	}
	c := &ceiling{count: count, prog: prog, ns: ns, iface: iface}
	if err := c.setXDP(prog.FD()); err != nil {
		c.close()
		return nil, fmt.Errorf("attaching the baseline program to %s: %w", iface, err)
	}
	return c, nil
}

func (c *ceiling) setXDP(fd int) error {
	return inNS(c.ns, func() error {
		l, err := netlink.LinkByName(c.iface)
		if err != nil {
			return err
		}
		return netlink.LinkSetXdpFdWithFlags(l, fd, nl.XDP_FLAGS_DRV_MODE)
	})
}

// handled sums the per-CPU counter.
func (c *ceiling) handled() (uint64, error) {
	var per []uint64
	if err := c.count.Lookup(uint32(0), &per); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// detach removes the program from the interface and frees it.
func (c *ceiling) detach() error {
	err := c.setXDP(-1)
	c.close()
	return err
}

func (c *ceiling) close() {
	c.prog.Close()
	c.count.Close()
}

// enableForwarding turns lb's namespace into a router for the VIP: IPv4
// forwarding, a /32 route via the real server, and no ICMP redirects for
// frames that leave by the interface they came in on.
func enableForwarding(ns, iface string, vip, real net.IP) error {
	for _, s := range []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
		"net.ipv4.conf." + iface + ".send_redirects=0"} {
		if _, err := nsOutput(ns, "sysctl", "-qw", s); err != nil {
			return err
		}
	}
	_, err := nsOutput(ns, "ip", "route", "replace", vip.String()+"/32", "via", real.String(), "dev", iface)
	return err
}

// disableForwarding undoes enableForwarding.
func disableForwarding(ns string, vip net.IP) error {
	if _, err := nsOutput(ns, "ip", "route", "del", vip.String()+"/32"); err != nil {
		return err
	}
	_, err := nsOutput(ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	return err
}

// nftFwdRuleset is the netdev table of nft-fwd: frames for vip go to real
// through iface's neighbour entry (the MAC rewrite of DR), counted.
func nftFwdRuleset(iface string, vip, real net.IP) string {
	return fmt.Sprintf(`table netdev %[1]s {
	chain ingress {
		type filter hook ingress device %[2]s priority 0; policy accept;
		ip daddr %[3]s counter fwd ip to %[4]s device %[2]s
	}
}
`, nftTable, iface, vip, real)
}

// nftCounter matches the counter statement of `nft list table`.
var nftCounter = regexp.MustCompile(`counter packets (\d+) bytes \d+`)

// parseNftCounter returns the packets of the one counter in the listing.
func parseNftCounter(listing string) (uint64, error) {
	m := nftCounter.FindAllStringSubmatch(listing, -1)
	if len(m) != 1 {
		return 0, fmt.Errorf("nft listing has %d counters, want 1: %q", len(m), strings.TrimSpace(listing))
	}
	return strconv.ParseUint(m[0][1], 10, 64)
}

// addNftFwd loads the ruleset into ns (through a file in dir).
func addNftFwd(ns, dir, iface string, vip, real net.IP) error {
	path := filepath.Join(dir, "fwd.nft")
	if err := os.WriteFile(path, []byte(nftFwdRuleset(iface, vip, real)), 0o644); err != nil {
		return err
	}
	_, err := nsOutput(ns, "nft", "-f", path)
	return err
}

func nftFwdHandled(ns string) (uint64, error) {
	b, err := nsOutput(ns, "nft", "list", "table", "netdev", nftTable)
	if err != nil {
		return 0, err
	}
	return parseNftCounter(string(b))
}

func deleteNftFwd(ns string) error {
	_, err := nsOutput(ns, "nft", "delete", "table", "netdev", nftTable)
	return err
}

// baselines are the comparison paths' measurements, and the generator's
// own rate (sink).
type baselines struct {
	sink, forward, nft, ceiling result
}

// measureBaselines measures the three comparison paths with the VIP
// frames, on lb0 in namespace ns with no xdpvip program attached, and
// leaves lb0 as it found it. dir holds the nft ruleset.
func (g generator) measureBaselines(ns, dir string, frames [][]byte) (out baselines, err error) {
	vip, real := net.IP(vipAddr.AsSlice()), net.IP(realAddr.AsSlice())

	if err := enableForwarding(ns, lbIface, vip, real); err != nil {
		return out, fmt.Errorf("kernel-forward set-up: %w", err)
	}
	out.forward, err = g.measure(pathKernelForward, "Ip ForwDatagrams", frames, func() (uint64, error) {
		b, err := nsOutput(ns, "cat", "/proc/net/snmp")
		if err != nil {
			return 0, err
		}
		return parseSNMP(string(b), "Ip", "ForwDatagrams")
	})
	if derr := disableForwarding(ns, vip); err == nil {
		err = derr
	}
	if err != nil {
		return out, err
	}

	if err := addNftFwd(ns, dir, lbIface, vip, real); err != nil {
		return out, fmt.Errorf("nft-fwd set-up (is nftables installed?): %w", err)
	}
	out.nft, err = g.measure(pathNftFwd, "nft rule counter", frames, func() (uint64, error) { return nftFwdHandled(ns) })
	if derr := deleteNftFwd(ns); err == nil {
		err = derr
	}
	if err != nil {
		return out, err
	}

	c, err := attachCeiling(ns, lbIface, macSwapProgram)
	if err != nil {
		return out, err
	}
	out.ceiling, err = g.measure(pathCeiling, "its own per-CPU counter", frames, c.handled)
	if derr := c.detach(); err == nil {
		err = derr
	}
	if err != nil {
		return out, err
	}

	c, err = attachCeiling(ns, lbIface, sinkProgram)
	if err != nil {
		return out, err
	}
	out.sink, err = g.measure(pathSink, "its own per-CPU counter", frames, c.handled)
	if derr := c.detach(); err == nil {
		err = derr
	}
	return out, err
}

// netCost is a path's cost per frame on the core it shares with the
// generator, less the generator's own: the live-frame generator, lb0's
// receive path and the sink on gen0 all run on the generator's core, so
// in one second offered·g + handled·p = 1, where g is the generator's
// cost per frame, measured as 1/(the sink's rate: frames generated and
// dropped at once in XDP on lb0). Then p = (1 − offered·g) / handled.
// It is 0 when nothing was handled or the sink's rate is unknown, and it
// counts the sink's drop as the generator's (so it is the cost beyond an
// XDP_DROP).
func netCost(r, sink result) (ns float64) {
	if r.HandledPPS <= 0 || sink.HandledPPS <= 0 {
		return 0
	}
	g := 1 / sink.HandledPPS
	p := (1 - r.OfferedPPS*g) / r.HandledPPS
	if p <= 0 {
		return 0
	}
	return p * 1e9
}

// costRatio is b's net cost over a's: how many frames of path a the
// core forwards in the time one of path b takes, generator aside.
func costRatio(a, b, sink result) float64 {
	ca, cb := netCost(a, sink), netCost(b, sink)
	if ca <= 0 || cb <= 0 {
		return 0
	}
	return cb / ca
}

// generatorBound says whether a path handled (nearly) all the generator
// offered: then its rate is the generator's, not the path's, and a ratio
// against it is a lower bound.
func generatorBound(r result) bool {
	return r.OfferedPPS > 0 && r.HandledPPS >= 0.97*r.OfferedPPS
}
