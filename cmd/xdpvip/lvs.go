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
	rate := fs.Bool("rate", false, "show rates (like ipvsadm -Ln --rate): CPS, InPPS, OutPPS, InBPS, OutBPS")
	interval := fs.Duration("rate-interval", time.Second, "with --rate: how long to measure")
	tunInfo := fs.Bool("tun-info", false, "show each TUN real server's tunnel (like ipvsadm -Ln --tun-info): ipip, gue:PORT:-c|+c|r+c, gre:-c|+c")
	asJSON := fs.Bool("json", false, "print JSON (with each TUN real server's tunnel)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	list, err := lvsList(*sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip lvs: %v\n", err)
		return 1
	}
	if *rate {
		// Two samples *interval apart: the rates are the difference (the
		// XDP counters have no kernel estimator as IPVS's do).
		start := time.Now()
		time.Sleep(*interval)
		later, err := lvsList(*sock)
		if err != nil {
			fmt.Fprintf(os.Stderr, "xdpvip lvs: %v\n", err)
			return 1
		}
		later.Services = lvs.Rates(list.Services, later.Services, time.Since(start))
		list = later
	}
	if err := lvs.WriteList(os.Stdout, list.Services, lvs.ListOptions{Stats: *stats, Rate: *rate, TunInfo: *tunInfo, JSON: *asJSON, Dataplane: list.Dataplane}); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip lvs: %v\n", err)
		return 1
	}
	return 0
}

func lvsList(sock string) (daemon.LVSList, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list daemon.LVSList
	err := control.Call(ctx, sock, "lvs", &list)
	return list, err
}
