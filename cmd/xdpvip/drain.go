package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/pkg/config"
)

func init() {
	register("drain", "withdraw every BGP route of the running daemon, wait for the routers, report", runDrain)
}

// drainReport is what `xdpvip drain --json` prints.
type drainReport struct {
	Withdrawn []string          `json:"withdrawn"`
	Waited    string            `json:"waited"`
	BGP       *daemon.BGPStatus `json:"bgp"`
}

func runDrain(args []string) int {
	fs := pflag.NewFlagSet("drain", pflag.ContinueOnError)
	sock := fs.String("control-socket", control.DefaultSocket, "the daemon's control socket")
	wait := fs.Float64("wait", 5, "seconds to wait after the withdrawal, for the routers to move the flows")
	asJSON := fs.Bool("json", false, "print JSON")
	undo := fs.Bool("undo", false, "end a drain: announce the routes again as the node can serve them")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *undo {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := control.Call(ctx, *sock, "undrain", nil); err != nil {
			fmt.Fprintf(os.Stderr, "xdpvip drain --undo: %v\n", err)
			return 1
		}
		fmt.Println("drain ended")
		return 0
	}
	if *wait < 0 {
		fmt.Fprintln(os.Stderr, "xdpvip drain: --wait must not be negative")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var res daemon.DrainResult
	if err := control.Call(ctx, *sock, "drain", &res); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip drain: %v\n", err)
		return 1
	}
	if !*asJSON {
		fmt.Printf("withdrawn: %s\n", orDash(strings.Join(res.Withdrawn, " ")))
	}
	d := time.Duration(*wait * float64(time.Second))
	time.Sleep(d)
	st, err := fetchStatus(*sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip drain: after waiting: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(drainReport{Withdrawn: res.Withdrawn, Waited: d.String(), BGP: st.BGP}); err != nil {
			return 1
		}
		return 0
	}
	fmt.Printf("waited %s\n", d)
	writeBGPStatus(os.Stdout, st.BGP)
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeBGPStatus prints the BGP sessions and routes of `xdpvip status`.
func writeBGPStatus(w io.Writer, b *daemon.BGPStatus) {
	if b == nil {
		return
	}
	drain := ""
	if b.Draining {
		drain = ", DRAINING"
	}
	fmt.Fprintf(w, "\nBGP router_id %s, AS %d, interface %s%s\n", b.RouterID, b.LocalAS, orDash(b.Interface), drain)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NEIGHBOR\tAS\tSTATE\tUP SINCE\tHOLD\tBFD\tFLOPS\tLAST ERROR")
	for _, s := range b.Sessions {
		up := "-"
		if !s.Uptime.IsZero() {
			up = s.Uptime.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%d\t%s\n", s.Neighbor, s.RemoteAS, s.State, up, s.HoldTime,
			orDash(s.BFD), s.Flops, orDash(s.LastError))
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tMODE\tANNOUNCED\tFORWARDED\tWHY NOT\tVIRTUAL SERVERS")
	for _, r := range b.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%s\t%s\n", r.Prefix, r.Mode, r.Announced, r.Forwarded, orDash(r.Reason),
			strings.Join(r.VirtualServers, ","))
	}
	tw.Flush()
}

// writeBGPSummary is check-config's line for the bgp extension block.
func writeBGPSummary(w io.Writer, b *config.BGP) {
	if b == nil {
		return
	}
	rid := "default"
	if b.RouterID.IsValid() {
		rid = b.RouterID.String()
	}
	fmt.Fprintf(w, "bgp: local_as %d, router_id %s, interface %s\n", b.LocalAS, rid, orDash(b.Interface))
	for _, nb := range b.Neighbors {
		fmt.Fprintf(w, "  neighbor %s remote_as %d hold_time %s", nb.Addr, nb.RemoteAS, nb.HoldTime)
		if nb.BFD {
			fmt.Fprint(w, ", bfd")
		}
		if nb.Password != "" {
			fmt.Fprint(w, ", md5")
		}
		if nb.GracefulRestart > 0 {
			fmt.Fprintf(w, ", graceful_restart %s", nb.GracefulRestart)
		}
		fmt.Fprintln(w)
	}
}

// writeAnnounce adds a virtual server's announce mode to its summary line.
func writeAnnounce(w io.Writer, a config.Announce) {
	switch a.Mode {
	case config.AnnounceECMP:
		fmt.Fprint(w, ", announce ecmp")
	case config.AnnounceVRRP:
		fmt.Fprintf(w, ", announce while %s is MASTER", a.Instance)
	}
}
