package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/xdpvip/xdpvip/internal/control"
	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/metrics"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
)

const defaultConfig = "/etc/keepalived/keepalived.conf"

func init() {
	register("run", "run the daemon in the foreground", runDaemon)
}

// parseFlags parses a command's flags; ok is false when the command must
// exit with code (after --help, or on a bad flag).
func parseFlags(fs *pflag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0, false
		}
		fmt.Fprintf(os.Stderr, "xdpvip %s: %v\n", fs.Name(), err)
		return 2, false
	}
	return 0, true
}

func runDaemon(args []string) int {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	cfgPath := fs.StringP("config", "f", defaultConfig, "keepalived.conf to read")
	fs.StringVar(cfgPath, "use-file", defaultConfig, "keepalived's name for --config")
	pidFile := fs.String("pid-file", "", "write the daemon's PID here")
	fs.StringVarP(pidFile, "pid", "p", "", "keepalived's name for --pid-file")
	vrrpPID := fs.StringP("vrrp_pid", "r", "", "keepalived's VRRP child pid file: written with xdpvip's PID (one process)")
	checkersPID := fs.StringP("checkers_pid", "c", "", "keepalived's checker child pid file: written with xdpvip's PID (one process)")
	dontReleaseIPVS := fs.BoolP("dont-release-ipvs", "I", false, "keep the IPVS services on stop (keepalived -I)")
	dontReleaseVRRP := fs.BoolP("dont-release-vrrp", "V", false, "leave VIPs and forwarding in place on stop, no priority-0 advert (keepalived -V)")
	// keepalived habits that mean nothing different here: xdpvip always
	// runs in the foreground and logs to stderr (journald under systemd).
	fs.BoolP("dont-fork", "n", false, "accepted for keepalived compatibility: xdpvip never forks")
	fs.BoolP("log-console", "l", false, "accepted for keepalived compatibility: logs always go to stderr")
	logDetail := fs.BoolP("log-detail", "D", false, "detailed log messages (keepalived -D): --log-level debug")
	sock := fs.String("control-socket", control.DefaultSocket, "control socket for status and lvs")
	bpfDir := fs.String("bpf-dir", dataplane.DefaultBPFDir, "bpffs directory for pinned maps and links")
	plane := fs.String("dataplane", "auto", "auto, xdp, ipvs or none")
	mode := fs.String("xdp-mode", "auto", "XDP attach mode: native, generic or auto (native, else generic)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	metricsAddr := fs.String("metrics-address", metrics.DefaultAddress, "HOST:PORT for Prometheus /metrics and /healthz (empty: off)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *logDetail && !fs.Changed("log-level") {
		*logLevel = "debug"
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "xdpvip run: --log-level: %v\n", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if *logJSON {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(h)
	slog.SetDefault(log)
	log.Debug("detailed logging on", "level", level.String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	err := daemon.Run(ctx, daemon.Options{
		ConfigPath: *cfgPath, PIDFile: *pidFile, ControlSocket: *sock, BPFDir: *bpfDir,
		Dataplane: *plane, XDPMode: *mode, Logger: log, Reload: reload, MetricsAddress: *metricsAddr,
		DontReleaseIPVS: *dontReleaseIPVS, DontReleaseVRRP: *dontReleaseVRRP, ExtraPIDFiles: nonEmpty(*vrrpPID, *checkersPID),
	})
	if err != nil {
		// Plain lines, so a configuration error reads as check-config's
		// "file:line: keyword: reason" list.
		fmt.Fprintf(os.Stderr, "xdpvip run: %v\n", err)
		return 1
	}
	return 0
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}
