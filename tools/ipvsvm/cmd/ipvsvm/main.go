// Command ipvsvm boots Debian's stock kernel (which has IPVS) under qemu
// with a small initramfs and runs one command inside; it exits with the
// command's status.
//
//	ipvsvm [--file HOST:GUEST]... [--bin HOSTPATH]... [--module NAME]... -- COMMAND
//
// --file copies a file (a static binary, a config); --bin copies a
// dynamically linked host program with its libraries to the same path.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
)

func main() {
	files := pflag.StringArray("file", nil, "HOST:GUEST file to copy into the guest (repeatable)")
	bins := pflag.StringArray("bin", nil, "dynamically linked host program to copy with its libraries (repeatable)")
	mods := pflag.StringArray("module", nil, "extra kernel module to load at boot (repeatable)")
	cache := pflag.String("cache", ipvsvm.DefaultCacheDir(), "kernel cache directory")
	accel := pflag.String("accel", "auto", "qemu accelerator: auto, kvm or tcg")
	mem := pflag.Int("mem", 512, "guest memory in MiB")
	timeout := pflag.Duration("timeout", 0, "whole run timeout (default 3m)")
	pflag.Parse()
	if pflag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ipvsvm [flags] -- COMMAND")
		pflag.PrintDefaults()
		os.Exit(2)
	}
	o := ipvsvm.Options{
		CacheDir:     *cache,
		Modules:      append(append([]string{}, ipvsvm.DefaultModules...), *mods...),
		HostBinaries: append(append([]string{}, ipvsvm.DefaultHostBinaries...), *bins...),
		Command:      strings.Join(pflag.Args(), " "),
		Accel:        *accel,
		MemoryMB:     *mem,
		Timeout:      *timeout,
		Console:      os.Stdout,
		Logf:         func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
	}
	for _, f := range *files {
		src, dst, ok := strings.Cut(f, ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "ipvsvm: --file %q: want HOST:GUEST\n", f)
			os.Exit(2)
		}
		o.Files = append(o.Files, ipvsvm.File{Src: src, Dst: dst})
	}
	res, err := ipvsvm.Run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, ipvsvm.ErrQEMUUnavailable) {
			os.Exit(77)
		}
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "ipvsvm: guest exit %d under %s in %v\n", res.ExitCode, res.Accel, res.Elapsed.Round(1e6))
	os.Exit(res.ExitCode)
}
