package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/reloadplan"
)

func init() {
	register("reload", "reload the daemon's configuration; --dry-run shows what would change", runReload)
}

func runReload(args []string) int {
	fs := pflag.NewFlagSet("reload", pflag.ContinueOnError)
	sock := fs.String("control-socket", control.DefaultSocket, "the daemon's control socket")
	dry := fs.Bool("dry-run", false, "print what a reload (SIGHUP) would change, change nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the daemon")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	method := "reload"
	if *dry {
		method = "reload-dry-run"
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var res reloadplan.Result
	if err := control.Call(ctx, *sock, method, &res); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip reload: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return 1
		}
	} else {
		if res.DryRun {
			fmt.Println("dry run: nothing applied; a reload would do:")
		}
		fmt.Print(res.Plan.String())
		if res.Applied != "" {
			fmt.Printf("applied: %s\n", res.Applied)
		}
		if res.Error != "" && res.Error != res.Plan.Refused {
			fmt.Fprintf(os.Stderr, "xdpvip reload: %s\n", res.Error)
		}
	}
	if res.Error != "" || res.Plan.Refused != "" {
		return 1
	}
	return 0
}
