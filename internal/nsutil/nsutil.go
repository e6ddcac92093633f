// Package nsutil runs code inside named network namespaces (the ones
// `ip netns add` creates) and attaches the pass-everything XDP program that
// veth labs need. It is shared by the test network, the end-to-end tests,
// the demo and the benchmark tools.
package nsutil

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
)

// Do runs f on a locked OS thread switched into the named network
// namespace, then switches the thread back and releases it. Sockets and
// handles f opens stay in that namespace and may be used from any
// goroutine afterwards; goroutines f starts do not run in it. If the
// thread cannot be switched back it is thrown away instead, so nothing
// else ever runs in the wrong namespace.
func Do(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("nsutil: current namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("nsutil: open namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("nsutil: enter namespace %s: %w", name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the thread dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("nsutil: leave namespace %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Handle opens a netlink handle bound to the named namespace; the caller
// closes it.
func Handle(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("nsutil: open namespace %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("nsutil: netlink handle in %s: %w", name, err)
	}
	return h, nil
}

// AttachXDPPass attaches, in native mode, an XDP program that passes every
// frame to the veth ifname in namespace ns. XDP_TX into a veth needs an
// XDP program on the peer end: labs put this one on the switch side of a
// load balancer's cable. The attachment stays until the link goes.
func AttachXDPPass(ns, ifname string) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("nsutil: lifting RLIMIT_MEMLOCK: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "pass", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("nsutil: loading the XDP pass program: %w", err)
	}
	defer prog.Close() // the attachment holds its own reference
	return Do(ns, func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("nsutil: %s in %s: %w", ifname, ns, err)
		}
		if link.Type() != "veth" {
			return fmt.Errorf("nsutil: %s in %s is a %s, not a veth", ifname, ns, link.Type())
		}
		if err := netlink.LinkSetXdpFdWithFlags(link, prog.FD(), nl.XDP_FLAGS_DRV_MODE); err != nil {
			return fmt.Errorf("nsutil: attaching XDP pass to %s in %s: %w", ifname, ns, err)
		}
		return nil
	})
}
