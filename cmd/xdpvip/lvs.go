package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

func init() {
	register("lvs", "list virtual and real servers like ipvsadm -Ln", runLVS)
}

func runLVS(args []string) int {
	fs := pflag.NewFlagSet("lvs", pflag.ContinueOnError)
	sock := fs.String("control-socket", control.DefaultSocket, "the daemon's control socket")
	stats := fs.Bool("stats", false, "show packet and byte counters (like ipvsadm -Ln --stats)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list daemon.LVSList
	if err := control.Call(ctx, *sock, "lvs", &list); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip lvs: %v\n", err)
		return 1
	}
	if err := lvs.WriteList(os.Stdout, list.Services, lvs.ListOptions{Stats: *stats, JSON: *asJSON, Dataplane: list.Dataplane}); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip lvs: %v\n", err)
		return 1
	}
	return 0
}
