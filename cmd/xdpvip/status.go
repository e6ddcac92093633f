package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/daemon"
)

func init() {
	register("status", "show every VRRP instance of the running daemon", runStatus)
}

func runStatus(args []string) int {
	fs := pflag.NewFlagSet("status", pflag.ContinueOnError)
	sock := fs.String("control-socket", control.DefaultSocket, "the daemon's control socket")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st daemon.Status
	if err := control.Call(ctx, *sock, "status", &st); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return 1
		}
		return 0
	}
	writeStatus(os.Stdout, &st)
	return 0
}

func writeStatus(w io.Writer, st *daemon.Status) {
	fmt.Fprintf(w, "xdpvip pid %d, router_id %s, dataplane %s, config %s, up %s, reloads %d\n",
		st.PID, st.RouterID, st.Dataplane, st.Config, time.Since(st.Started).Round(time.Second), st.Reloads)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tIFACE\tVRID\tVER\tSTATE\tPRIO(cfg/eff)\tMASTER\tVIPS\tTRANS\tADV IN/OUT\tDROPPED")
	for _, in := range st.Instances {
		master := in.Master
		switch {
		case master == "":
			master = "-"
		case in.MasterIsSelf:
			master += " (this node)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d/%d\t%s\t%s\t%d\t%d/%d\t%s\n",
			in.Name, in.Interface, in.VRID, in.Version, in.State, in.ConfiguredPriority, in.EffectivePriority,
			master, strings.Join(in.VIPs, ","), in.Transitions, in.AdvertsIn, in.AdvertsOut, formatDrops(in.Drops))
	}
	tw.Flush()
	for iface, drops := range st.XDPDrops {
		if s := formatDrops(drops); s != "-" {
			fmt.Fprintf(w, "XDP drops on %s: %s\n", iface, s)
		}
	}
}

func formatDrops(m map[string]uint64) string {
	var parts []string
	for k, v := range m {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
