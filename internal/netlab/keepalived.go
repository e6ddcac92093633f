package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// KeepalivedBin is the interop peer: Debian's keepalived 2.2.7.
const KeepalivedBin = "/usr/sbin/keepalived"

// Keepalived is the setup of one keepalived (VRRP subsystem only) with
// its configuration and pid files in one directory, so several can run on
// one machine.
type Keepalived struct {
	Dir  string
	Conf string
}

// WriteKeepalived writes conf as keepalived.conf into dir (which must exist).
func WriteKeepalived(dir, conf string) (Keepalived, error) {
	k := Keepalived{Dir: dir, Conf: filepath.Join(dir, "keepalived.conf")}
	if err := os.WriteFile(k.Conf, []byte(conf), 0o644); err != nil {
		return k, fmt.Errorf("netlab: keepalived: %w", err)
	}
	return k, nil
}

// PIDFile is the pid file of keepalived's main process ("main"), VRRP
// child ("vrrp") or checker child ("checkers").
func (k Keepalived) PIDFile(kind string) string {
	return filepath.Join(k.Dir, "keepalived-"+kind+".pid")
}

// Args are keepalived's arguments: no fork (-n), VRRP only (-P), detailed
// log to the console (-l -D), not to syslog when quiet (-G), the
// configuration and the pid files.
func (k Keepalived) Args(quiet bool) []string {
	args := []string{"-n", "-l", "-D"}
	if quiet {
		args = append(args, "-G")
	}
	return append(args, "-P", "-f", k.Conf,
		"-p", k.PIDFile("main"), "-r", k.PIDFile("vrrp"), "-c", k.PIDFile("checkers"))
}

// RemovePIDFiles removes the pid files of an earlier run.
func (k Keepalived) RemovePIDFiles() {
	for _, kind := range []string{"main", "vrrp", "checkers"} {
		_ = os.Remove(k.PIDFile(kind))
	}
}

// VRRPPID is the VRRP child's pid, from its pid file (there once the
// child runs).
func (k Keepalived) VRRPPID() (int, error) {
	b, err := os.ReadFile(k.PIDFile("vrrp"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("keepalived vrrp pid file %q: %q", k.PIDFile("vrrp"), b)
	}
	return pid, nil
}
