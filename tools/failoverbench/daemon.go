package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdpvip/xdpvip/internal/netlab"
)

// daemonSpec is one VRRP implementation under test.
type daemonSpec struct {
	Name       string   // column name in the table: "xdpvip", "xdpvip-none", "keepalived"
	Keepalived bool     // run keepalived instead of xdpvip
	Extra      []string // extra `xdpvip run` flags
}

// knownDaemons are the implementations --daemons can name.
var knownDaemons = map[string]daemonSpec{
	"xdpvip":      {Name: "xdpvip"},
	"xdpvip-none": {Name: "xdpvip-none", Extra: []string{"--dataplane", "none"}},
	"keepalived":  {Name: "keepalived", Keepalived: true},
}

// parseDaemons parses a comma-separated --daemons list.
func parseDaemons(s string) ([]daemonSpec, error) {
	var out []daemonSpec
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, ok := knownDaemons[f]
		if !ok {
			return nil, fmt.Errorf("%w: daemon %q (known: xdpvip, xdpvip-none, keepalived)", errBadFlag, f)
		}
		if seen[f] {
			return nil, fmt.Errorf("%w: daemon %q named twice", errBadFlag, f)
		}
		seen[f] = true
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no daemon to run", errBadFlag)
	}
	return out, nil
}

// nodeConf is what differs between the two load balancers' configs.
type nodeConf struct {
	RouterID string
	State    string // MASTER or BACKUP
	Priority int
}

// renderConf renders the keepalived.conf that both daemons run: one
// instance, VRID 51, VIP 192.0.2.100/24 on eth0. VRRPv2 uses PASS
// authentication (v3 has none).
func renderConf(sc scenario, n nodeConf) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n", n.RouterID)
	if sc.Version == 3 {
		b.WriteString("    vrrp_version 3\n")
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "vrrp_instance VI_1 {\n    state %s\n    interface %s\n    virtual_router_id %d\n    priority %d\n    advert_int %s\n",
		n.State, hostIface, vrid, n.Priority, formatSeconds(sc.AdvertInt))
	if sc.Version == 2 {
		b.WriteString("    authentication {\n        auth_type PASS\n        auth_pass 123456\n    }\n")
	}
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s\n    }\n}\n", vipPrefix)
	return b.String()
}

// formatSeconds renders d the way keepalived.conf writes advert_int: "1", "0.1".
func formatSeconds(d time.Duration) string {
	s := fmt.Sprintf("%.3f", d.Seconds())
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// process is one daemon started in a host's namespace. It runs in its own
// process group, so a crash can kill keepalived's children with it.
type process = netlab.Process

// startProcess runs name in h's namespace (netlab's nsenter command, so
// the pid is the daemon's own), logging to logPath; it dies with this
// program.
func startProcess(h *host, logPath, name string, args ...string) (*process, error) {
	cmd := h.Command(name, args...)
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return netlab.StartCommand(cmd, logPath)
}

// daemonRunner starts the daemons of one run in a work directory.
type daemonRunner struct {
	xdpvip     string // path of the xdpvip binary
	keepalived string // path of the keepalived binary
	workDir    string
	bpfRoot    string // bpffs directory; each xdpvip start gets a fresh subdirectory
	prefix     string
	seq        int
}

// errDaemonExited is returned when a daemon dies while it should be running.
var errDaemonExited = errors.New("daemon exited")

// start writes the config for h and starts d there.
func (r *daemonRunner) start(d daemonSpec, h *host, sc scenario, n nodeConf) (*process, error) {
	r.seq++
	dir := filepath.Join(r.workDir, fmt.Sprintf("%03d-%s-%s", r.seq, d.Name, h.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(renderConf(sc, n)), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "log")
	if d.Keepalived {
		k := netlab.Keepalived{Dir: dir, Conf: conf}
		return startProcess(h, logPath, r.keepalived, k.Args(false)...)
	}
	args := []string{"run", "-f", conf,
		"--control-socket", filepath.Join(dir, "xdpvip.sock"),
		"--pid-file", filepath.Join(dir, "xdpvip.pid"),
		"--bpf-dir", r.bpfDir(h),
		"--log-level", "debug"}
	return startProcess(h, logPath, r.xdpvip, append(args, d.Extra...)...)
}

// bpfDir is h's pin directory. It is removed after every run so that no
// XDP program stays attached to an interface where keepalived runs next.
func (r *daemonRunner) bpfDir(h *host) string {
	return filepath.Join(r.bpfRoot, r.prefix+"-"+h.Name())
}

// removePins deletes h's pins; with the daemon gone that detaches its XDP
// program.
func (r *daemonRunner) removePins(h *host) error {
	return os.RemoveAll(r.bpfDir(h))
}
