package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
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
	watch := fs.BoolP("watch", "w", false, "refresh the view every --interval until interrupted (states, priorities, transitions)")
	interval := fs.Duration("interval", time.Second, "with --watch: time between refreshes")
	count := fs.Int("count", 0, "with --watch: stop after this many refreshes (0: until interrupted)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *watch {
		return watchStatus(os.Stdout, *sock, *interval, *count)
	}
	st, err := fetchStatus(*sock)
	if err != nil {
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

func fetchStatus(sock string) (daemon.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st daemon.Status
	err := control.Call(ctx, sock, "status", &st)
	return st, err
}

// watchStatus redraws the status every interval, like watch(1): the screen
// is cleared, the time and the transitions seen since the watch began are
// on top, and a daemon that stops answering is shown, not fatal.
func watchStatus(w io.Writer, sock string, interval time.Duration, count int) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var events []string
	last := map[string]string{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		st, err := fetchStatus(sock)
		now := time.Now().Format("15:04:05.000")
		fmt.Fprint(w, "\x1b[H\x1b[2J")
		fmt.Fprintf(w, "xdpvip status --watch every %v, %s (Ctrl-C ends)\n\n", interval, now)
		if err != nil {
			fmt.Fprintf(w, "daemon not answering: %v\n", err)
		} else {
			for _, in := range st.Instances {
				if prev, ok := last[in.Name]; ok && prev != in.State {
					events = append(events, fmt.Sprintf("%s %s: %s -> %s", now, in.Name, prev, in.State))
				}
				last[in.Name] = in.State
			}
			writeStatus(w, &st)
		}
		if len(events) > 0 {
			fmt.Fprintf(w, "\ntransitions seen while watching:\n")
			for _, e := range events[max(0, len(events)-10):] {
				fmt.Fprintf(w, "  %s\n", e)
			}
		}
		if count > 0 && n >= count {
			return 0
		}
		select {
		case <-sig:
			return 0
		case <-tick.C:
		}
	}
}

func writeStatus(w io.Writer, st *daemon.Status) {
	fmt.Fprintf(w, "xdpvip pid %d, router_id %s, dataplane %s, config %s, up %s, reloads %d\n",
		st.PID, st.RouterID, st.Dataplane, st.Config, time.Since(st.Started).Round(time.Second), st.Reloads)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tIFACE\tVRID\tVER\tSTATE\tPRIO(cfg/eff)\tMASTER\tVIPS\tTRANS\tADV IN/OUT\tMAX GAP 1m (/DOWN)\tDROPPED")
	for _, in := range st.Instances {
		master := in.Master
		switch {
		case master == "":
			master = "-"
		case in.MasterIsSelf:
			master += " (this node)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d/%d\t%s\t%s\t%d\t%d/%d\t%s\t%s\n",
			in.Name, in.Interface, in.VRID, in.Version, in.State, in.ConfiguredPriority, in.EffectivePriority,
			master, strings.Join(in.VIPs, ","), in.Transitions, in.AdvertsIn, in.AdvertsOut, formatGap(&in), formatDrops(in.Drops))
	}
	tw.Flush()
	for _, sc := range st.Scripts {
		if sc.Disabled != "" {
			fmt.Fprintf(w, "vrrp_script %s disabled, not run or tracked: %s\n", sc.Name, sc.Disabled)
		}
	}
	writeConflicts(w, st) // status_conflict.go
	for iface, drops := range st.XDPDrops {
		if s := formatDrops(drops); s != "-" {
			fmt.Fprintf(w, "XDP drops on %s: %s\n", iface, s)
		}
	}
	writeBGPStatus(w, st.BGP) // drain.go
}

// formatGap is the largest gap between the MASTER's adverts of the last
// minute and its fraction of Master_Down_Interval, "-" when none was
// measured (MASTER, or no MASTER heard).
func formatGap(in *daemon.InstanceStatus) string {
	if in.LargestGapSeconds <= 0 {
		return "-"
	}
	gap := time.Duration(in.LargestGapSeconds * float64(time.Second)).Round(time.Millisecond)
	return fmt.Sprintf("%v (%.2f)", gap, in.LargestGapRatio)
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
