package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/internal/version"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
)

func init() {
	register("version", "print version, commit and BPF object hash", runVersion)
}

func runVersion(args []string) int {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	fmt.Fprintf(os.Stdout, "xdpvip %s (commit %s, bpf object %s)\n", version.Version, version.Commit, dataplane.ObjectHash())
	return 0
}
