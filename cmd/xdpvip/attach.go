package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/pkg/dataplane"
)

func init() {
	register("attach", "load the XDP program and its pinned maps on one interface", runAttach)
	register("detach", "remove the XDP program and its pins from one interface", runDetach)
}

func runAttach(args []string) int {
	fs := pflag.NewFlagSet("attach", pflag.ContinueOnError)
	iface := fs.String("iface", "", "interface to attach to (required)")
	mode := fs.String("mode", "auto", "XDP mode: native, generic, or auto (native, falling back to generic)")
	bpfDir := fs.String("bpf-dir", dataplane.DefaultBPFDir, "bpffs directory for pins (<bpf-dir>/<iface>/)")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if *iface == "" {
		fmt.Fprintln(os.Stderr, "xdpvip attach: --iface is required")
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	d, err := dataplane.Open(dataplane.Options{Iface: *iface, BPFDir: *bpfDir, Mode: *mode, Logger: log})
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip attach: %v\n", err)
		return 1
	}
	// Close keeps the program attached and the maps pinned.
	if err := d.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip attach: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stdout, "attached xdp_vip (object %s) to %s; pins in %s/%s\n", dataplane.ObjectHash(), *iface, *bpfDir, *iface)
	return 0
}

func runDetach(args []string) int {
	fs := pflag.NewFlagSet("detach", pflag.ContinueOnError)
	iface := fs.String("iface", "", "interface to detach from (required)")
	bpfDir := fs.String("bpf-dir", dataplane.DefaultBPFDir, "bpffs directory the pins are in")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if *iface == "" {
		fmt.Fprintln(os.Stderr, "xdpvip detach: --iface is required")
		return 2
	}
	if err := dataplane.Detach(*bpfDir, *iface); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip detach: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stdout, "detached xdp_vip from %s\n", *iface)
	return 0
}
