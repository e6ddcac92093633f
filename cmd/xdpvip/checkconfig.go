package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/pkg/config"
)

func init() {
	register("check-config", "parse and validate a keepalived.conf, print a summary", runCheckConfig)
}

func runCheckConfig(args []string) int {
	fs := pflag.NewFlagSet("check-config", pflag.ContinueOnError)
	file := fs.StringP("file", "f", "/etc/keepalived/keepalived.conf", "configuration file")
	configID := fs.StringP("config-id", "i", "", "config id selecting @ID lines (default: short host name)")
	quiet := fs.BoolP("quiet", "q", false, "print only problems, no summary")
	asJSON := fs.Bool("json", false, "print the whole parsed model and the diagnostics as JSON on stdout (keepalived's keyword names, times in seconds)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: xdpvip check-config [-f FILE] [--json]\n\n"+
			"Reads FILE and its includes as keepalived does, prints every warning and\n"+
			"error as file:line: keyword: reason on stderr and a summary on stdout.\n"+
			"With --json, stdout is instead one JSON document: valid, diagnostics\n"+
			"and the model as understood (config).\n"+
			"Exit status 0 when the configuration is valid, 1 when not.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "check-config: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, diags, err := config.LoadWith(*file, config.Options{ConfigID: *configID})
	nerr := 0
	for _, d := range diags {
		if d.Severity == config.Error {
			nerr++
			fmt.Fprintf(os.Stderr, "%s\n", d)
		} else {
			fmt.Fprintf(os.Stderr, "%s: %s: warning: %s\n", d.Pos, d.Keyword, d.Message)
		}
	}
	switch {
	case *asJSON:
		out, jerr := config.JSON(cfg, diags)
		if jerr != nil {
			fmt.Fprintf(os.Stderr, "check-config: %v\n", jerr)
			return 2
		}
		os.Stdout.Write(append(out, '\n'))
	case cfg != nil && !*quiet:
		writeSummary(os.Stdout, cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid: %d error(s), %d warning(s)\n", *file, nerr, len(diags)-nerr)
		return 1
	}
	fmt.Fprintf(os.Stderr, "%s: valid (%d warning(s))\n", *file, len(diags))
	return 0
}

// writeSummary prints the parsed model on one screen.
func writeSummary(w io.Writer, c *config.Config) {
	fmt.Fprintf(w, "files: %s\n", strings.Join(c.Files, ", "))
	if c.Global.RouterID != "" {
		fmt.Fprintf(w, "router_id: %s\n", c.Global.RouterID)
	}
	if c.Global.VRRPStrict {
		fmt.Fprintf(w, "vrrp_strict: on\n")
	}
	for _, s := range c.Scripts {
		fmt.Fprintf(w, "vrrp_script %s: %q every %s weight %d rise %d fall %d\n",
			s.Name, s.Script.Command, s.Interval, s.Weight, s.Rise, s.Fall)
	}
	for _, g := range c.SyncGroups {
		fmt.Fprintf(w, "vrrp_sync_group %s: %s\n", g.Name, strings.Join(g.Members, " "))
	}
	for _, in := range c.Instances {
		fmt.Fprintf(w, "vrrp_instance %s: vrid %d, %s, priority %d, advert_int %s, VRRPv%d on %s",
			in.Name, in.VRID, in.InitialState, in.Priority, in.AdvertInt, in.Version, in.Interface)
		if in.ConfiguredState != "" && in.ConfiguredState != in.InitialState {
			fmt.Fprintf(w, " (configured %s)", in.ConfiguredState)
		}
		if in.AuthType != "" {
			fmt.Fprintf(w, ", auth %s", in.AuthType)
		}
		if in.IgnoredAuthType != "" {
			fmt.Fprintf(w, ", auth %s ignored", in.IgnoredAuthType)
		}
		if !in.Preempt {
			fmt.Fprintf(w, ", nopreempt")
		}
		if len(in.UnicastPeers) > 0 {
			fmt.Fprintf(w, ", unicast to %v", in.UnicastPeers)
		}
		fmt.Fprintln(w)
		for _, v := range in.VIPs {
			fmt.Fprintf(w, "  vip %s%s\n", v.Prefix, devSuffix(v.Dev))
		}
		for _, v := range in.ExcludedVIPs {
			fmt.Fprintf(w, "  vip %s%s (excluded)\n", v.Prefix, devSuffix(v.Dev))
		}
		for _, t := range in.TrackScripts {
			fmt.Fprintf(w, "  track_script %s\n", t.Name)
		}
	}
	writeBGPSummary(w, c.BGP) // drain.go
	for _, vs := range c.VirtualServers {
		fmt.Fprintf(w, "virtual_server %s %s: %s %s", vs.Key(), vs.Protocol, vs.Scheduler, config.Forwarding(vs.Method, vs.Tunnel))
		writeAnnounce(w, vs.Announce) // drain.go
		if vs.PersistenceTimeout > 0 {
			fmt.Fprintf(w, ", persistent %s", vs.PersistenceTimeout)
		}
		fmt.Fprintf(w, ", delay_loop %s, quorum %d\n", vs.DelayLoop, vs.Quorum)
		for _, rs := range vs.RealServers {
			var checks []string
			for _, ch := range rs.Checkers {
				checks = append(checks, fmt.Sprintf("%s %s timeout %s retry %d",
					ch.Kind, checkTarget(ch), ch.ConnectTimeout, ch.Retry))
			}
			if len(checks) == 0 {
				checks = []string{"no checker"}
			}
			fmt.Fprintf(w, "  real_server %s weight %d %s: %s\n", addrPort(rs.Addr.String(), rs.Port), rs.Weight, config.Forwarding(rs.Method, rs.Tunnel), strings.Join(checks, "; "))
		}
		if vs.SorryServer != nil {
			ss := vs.SorryServer
			fmt.Fprintf(w, "  sorry_server %s %s\n", addrPort(ss.Addr.String(), ss.Port), config.Forwarding(ss.Method, ss.Tunnel))
		}
	}
}

func devSuffix(dev string) string {
	if dev == "" {
		return ""
	}
	return " dev " + dev
}

func addrPort(a string, p uint16) string {
	if strings.Contains(a, ":") {
		a = "[" + a + "]"
	}
	if p == 0 {
		return a
	}
	return fmt.Sprintf("%s:%d", a, p)
}

func checkTarget(ch *config.Checker) string {
	t := addrPort(ch.ConnectIP.String(), ch.ConnectPort)
	switch ch.Kind {
	case config.MiscCheck:
		return fmt.Sprintf("%q", ch.MiscPath.Command)
	case config.HTTPGet, config.SSLGet:
		var paths []string
		for _, u := range ch.URLs {
			paths = append(paths, u.Path)
		}
		return t + " " + strings.Join(paths, ",")
	}
	return t
}
