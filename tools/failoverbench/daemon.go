package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
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
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// startProcess runs name in h's namespace through nsenter (which execs, so
// the pid is the daemon's own), logging to logPath.
func startProcess(h *host, logPath, name string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + h.ns, "--", name}, args...)...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s in %s: %w", name, h.ns, err)
	}
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// crash kills the whole process group with SIGKILL: no goodbye advert, no
// VIP removal, as when the machine dies.
func (p *process) crash() error {
	return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// term asks the daemon to leave gracefully.
func (p *process) term() error { return p.cmd.Process.Signal(syscall.SIGTERM) }

// stop sends SIGTERM and waits up to timeout, then kills the group.
func (p *process) stop(timeout time.Duration) {
	if p.exited() {
		return
	}
	_ = p.term()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.crash()
		<-p.done
	}
	// Children that outlived their parent (keepalived's VRRP child).
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// logTail returns the last lines the daemon wrote, for error messages.
func (p *process) logTail(lines int) string {
	b, _ := os.ReadFile(p.logPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
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
	dir := filepath.Join(r.workDir, fmt.Sprintf("%03d-%s-%s", r.seq, d.Name, h.name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(renderConf(sc, n)), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "log")
	if d.Keepalived {
		return startProcess(h, logPath, r.keepalived, "-n", "-l", "-D", "-P", "-f", conf,
			"-p", filepath.Join(dir, "keepalived.pid"),
			"-r", filepath.Join(dir, "vrrp.pid"),
			"-c", filepath.Join(dir, "checkers.pid"))
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
	return filepath.Join(r.bpfRoot, r.prefix+"-"+h.name)
}

// removePins deletes h's pins; with the daemon gone that detaches its XDP
// program.
func (r *daemonRunner) removePins(h *host) error {
	return os.RemoveAll(r.bpfDir(h))
}
