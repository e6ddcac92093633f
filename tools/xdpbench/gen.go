package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/netlab"
)

// Two generators send the frames into gen0:
//
//   - live (default): BPF_PROG_RUN in live-frames mode
//     (BPF_F_TEST_XDP_LIVE_FRAMES) runs a two-instruction XDP program
//     that redirects each frame into gen0, so the frames go out by
//     gen0's ndo_xdp_xmit straight into lb0's receive ring, from the
//     kernel, in batches, on the calling thread's core. This is the
//     fastest sender this machine has (no pktgen module here) and it
//     needs lb0 to run NAPI: its XDP program does, and for the kernel
//     path GRO is switched on (the "redirect works with GRO on the
//     receiving end" fact of issue 4). Frames the ring cannot take are
//     dropped by veth, so "offered" can exceed "handled".
//   - trafgen: netsniff-ng's trafgen through gen0's qdisc (--qdisc-path:
//     without it, veth's backpressure on a full ring is an EAGAIN that
//     makes trafgen give up). A user-space sender: on this machine it
//     tops out near 1 Mpps, below what XDP handles.

// generator runs one of the senders in the generator namespace.
type generator struct {
	o    options
	ns   string
	host *netlab.Host // the generator's end (ns)
	dir  string
	// start runs a function on a thread that outlives every trafgen:
	// Pdeathsig fires when the thread that forked the child exits, and
	// the Go runtime ends a thread whenever a goroutine exits locked to
	// it (as inNS does), which may be the thread that forked.
	start func(func() error) error
	// gen reads the generator interface's counters.
	gen *netlink.Handle
	// genIndex is gen0's ifindex in its namespace.
	genIndex int
}

// newStarter returns a function that runs f on one OS thread that is
// never used for anything else and lives until the program exits.
func newStarter() func(func() error) error {
	jobs := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked
		for f := range jobs {
			f()
		}
	}()
	return func(f func() error) error {
		errc := make(chan error, 1)
		jobs <- func() { errc <- f() }
		return <-errc
	}
}

// sender is one running generator.
type sender interface {
	// Offered is how many frames went out so far.
	Offered() (uint64, error)
	// Stop ends the sender and returns its own total.
	Stop() (uint64, error)
}

// measure sends frames round robin for warm-up + duration and returns
// the rate read counts during the measured window, and what the
// generator offered in it.
func (g generator) measure(path, counterName string, frames [][]byte, read func() (uint64, error)) (result, error) {
	r := result{Path: path, Counter: counterName}
	var s sender
	var err error
	if g.o.generator == "trafgen" {
		s, err = g.startTrafgen(frames)
	} else {
		s, err = g.startLive(frames)
	}
	if err != nil {
		return r, err
	}
	defer s.Stop()
	sample := func() (handled, offered uint64, at time.Time, err error) {
		if handled, err = read(); err != nil {
			return
		}
		offered, err = s.Offered()
		return handled, offered, time.Now(), err
	}
	time.Sleep(g.o.warmup) // load runs, nothing to wait for
	h0, o0, t0, err := sample()
	if err != nil {
		return r, err
	}
	time.Sleep(g.o.duration) // the measured window
	h1, o1, t1, err := sample()
	if err != nil {
		return r, err
	}
	if r.Sent, err = s.Stop(); err != nil {
		return r, err
	}
	r.Window = t1.Sub(t0)
	r.HandledPPS = float64(h1-h0) / r.Window.Seconds()
	r.OfferedPPS = float64(o1-o0) / r.Window.Seconds()
	return r, nil
}

// liveSender runs BPF_PROG_RUN live-frame batches until stopped.
type liveSender struct {
	prog *ebpf.Program
	sent atomic.Uint64
	stop atomic.Bool
	done chan error
}

// liveRepeat is how many frames one BPF_PROG_RUN call sends: large enough
// that the syscall costs nothing, small enough to rotate flows and stop
// promptly.
const liveRepeat = 1 << 16

// liveRewriteLen is how much of the frame the generator restores: up to
// the end of the IPv4 header checksum.
const liveRewriteLen = 26

// liveProgram is the generator's XDP program: it writes the Ethernet
// addresses of hdr (the first 12 bytes of the frames) and the IPv4 TTL,
// protocol and header checksum (bytes 22-25) over the frame and
// redirects it into ifindex. Live-frame mode recycles its pages without
// copying the data in again, and the path under test rewrites the MACs
// in place (XDP_TX) or decrements the TTL (forwarding), so without the
// first step a recycled frame would come back addressed to the real
// server, or expire.
func liveProgram(ifindex int, hdr []byte) (*ebpf.Program, error) {
	if len(hdr) < liveRewriteLen {
		return nil, fmt.Errorf("frame of %d bytes: no Ethernet and IPv4 header to restore", len(hdr))
	}
	w := func(off int) int64 { return int64(binary.LittleEndian.Uint32(hdr[off : off+4])) }
	h := func(off int) int64 { return int64(binary.LittleEndian.Uint16(hdr[off : off+2])) }
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xdpbench_gen", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // xdp_md.data
			asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // xdp_md.data_end
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, liveRewriteLen),
			asm.JGT.Reg(asm.R4, asm.R3, "redirect"),
			asm.StoreImm(asm.R2, 0, w(0), asm.Word), // destination MAC
			asm.StoreImm(asm.R2, 4, h(4), asm.Half),
			asm.StoreImm(asm.R2, 6, w(6), asm.Word), // source MAC
			asm.StoreImm(asm.R2, 10, h(10), asm.Half),
			asm.StoreImm(asm.R2, 22, h(22), asm.Half), // IPv4 TTL, protocol
			asm.StoreImm(asm.R2, 24, h(24), asm.Half), // IPv4 header checksum
			asm.Mov.Imm(asm.R1, int32(ifindex)).WithSymbol("redirect"),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(),
			asm.Return(),
		},
	})
}

func (g generator) startLive(frames [][]byte) (sender, error) {
	prog, err := liveProgram(g.genIndex, frames[0])
	if err != nil {
		return nil, fmt.Errorf("loading the generator program: %w", err)
	}
	s := &liveSender{prog: prog, done: make(chan error, 1)}
	ready := make(chan error, 1)
	go func() {
		// bpf_redirect resolves the ifindex in the namespace of the
		// thread that runs the program: run it from gen0's.
		err := inNS(g.ns, func() error {
			ready <- nil
			for i := 0; !s.stop.Load(); i++ {
				_, err := prog.Run(&ebpf.RunOptions{
					Data:   frames[i%len(frames)],
					Repeat: liveRepeat,
					Flags:  unix.BPF_F_TEST_XDP_LIVE_FRAMES,
				})
				if err != nil {
					return fmt.Errorf("BPF_PROG_RUN live frames: %w", err)
				}
				s.sent.Add(liveRepeat)
			}
			return nil
		})
		if err != nil {
			select {
			case ready <- err:
			default:
			}
		}
		s.done <- err
	}()
	if err := <-ready; err != nil {
		prog.Close()
		return nil, err
	}
	// A kernel that refuses live frames fails on the first call.
	select {
	case err := <-s.done:
		prog.Close()
		if err == nil {
			err = errors.New("the live-frame generator stopped at once")
		}
		return nil, err
	case <-time.After(50 * time.Millisecond):
	}
	return s, nil
}

func (s *liveSender) Offered() (uint64, error) { return s.sent.Load(), nil }

func (s *liveSender) Stop() (uint64, error) {
	if s.stop.Swap(true) {
		return s.sent.Load(), nil
	}
	err := <-s.done
	s.prog.Close()
	return s.sent.Load(), err
}

// trafgenSender is trafgen running in the generator namespace.
type trafgenSender struct {
	g       generator
	proc    *netlab.Process
	stopped bool
	total   uint64
	err     error
}

func (g generator) startTrafgen(frames [][]byte) (sender, error) {
	cfg := filepath.Join(g.dir, "frames.trafgen")
	if err := os.WriteFile(cfg, []byte(netlab.TrafgenConfig(frames)), 0o644); err != nil {
		return nil, err
	}
	cmd := g.host.Command(g.o.trafgen, netlab.TrafgenArgs(genIface, cfg, g.o.cpus, "--qdisc-path")...)
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	s := &trafgenSender{g: g}
	if err := g.start(func() (err error) {
		s.proc, err = netlab.StartCommand(cmd, filepath.Join(g.dir, "trafgen.log"))
		return err
	}); err != nil {
		return nil, fmt.Errorf("starting trafgen: %w", err)
	}
	select {
	case <-s.proc.Done():
		return nil, fmt.Errorf("trafgen exited at start: %v: %s", s.proc.Wait(), s.proc.Log())
	case <-time.After(50 * time.Millisecond):
	}
	return s, nil
}

// Offered is gen0's transmitted-packets counter.
func (s *trafgenSender) Offered() (uint64, error) {
	l, err := s.g.gen.LinkByName(genIface)
	if err != nil {
		return 0, err
	}
	if l.Attrs().Statistics == nil {
		return 0, fmt.Errorf("%s: no statistics", genIface)
	}
	return l.Attrs().Statistics.TxPackets, nil
}

func (s *trafgenSender) Stop() (uint64, error) {
	if !s.stopped {
		s.stopped = true
		s.total, s.err = netlab.StopTrafgen(s.proc, 10*time.Second)
	}
	return s.total, s.err
}
