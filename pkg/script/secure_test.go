package script

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/config"
)

const nobody = 65534

var root = Identity{}

// secureDir is a root-owned 0755 directory under a private root-owned
// temporary directory (t.TempDir's parents are root's /tmp, sticky).
func secureDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the checks are about root-owned files")
	}
	d := t.TempDir()
	// Both the directory and the per-test one above it, so that other
	// users can reach what is inside.
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// file writes a shell script with mode (chmod, so no umask) and owner.
func file(t *testing.T, dir, name string, mode os.FileMode, uid, gid int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chmodOwn(t, p, mode, uid, gid)
	return p
}

func subdir(t *testing.T, dir, name string, mode os.FileMode, uid, gid int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	chmodOwn(t, p, mode, uid, gid)
	return p
}

func chmodOwn(t *testing.T, p string, mode os.FileMode, uid, gid int) {
	t.Helper()
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
	// syscall.Chmod takes the set-uid and sticky bits as written (os.Chmod
	// wants os.ModeSetuid / os.ModeSticky).
	if err := syscall.Chmod(p, uint32(mode)); err != nil {
		t.Fatal(err)
	}
}

func hasNote(s Security, sub string) bool {
	for _, n := range s.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

func TestCheckSecurityModesAndOwners(t *testing.T) {
	d := secureDir(t)
	worldDir := subdir(t, d, "world", 0o777, 0, 0)
	stickyDir := subdir(t, d, "sticky", 0o1777, 0, 0)
	groupDir := subdir(t, d, "group", 0o775, 0, 1234)
	rootGroupDir := subdir(t, d, "rootgroup", 0o775, 0, 0)
	userDir := subdir(t, d, "user", 0o755, nobody, nobody)
	privDir := subdir(t, d, "priv", 0o700, 0, 0)
	tests := []struct {
		name    string
		line    string
		id      Identity
		enforce bool
		want    Flags
		note    string
	}{
		{name: "root-owned 0755 in root dirs", line: file(t, d, "ok.sh", 0o755, 0, 0), want: FlagIsScript | FlagExecutable},
		{name: "arguments do not matter", line: file(t, d, "args.sh", 0o755, 0, 0) + " 'a b' c", want: FlagIsScript | FlagExecutable},
		{name: "only the group x bit, run by root", line: file(t, d, "gx.sh", 0o610, 0, 0), want: FlagIsScript | FlagExecutable},
		{name: "not executable", line: file(t, d, "noexec.sh", 0o644, 0, 0), want: FlagIsScript, note: "is not executable for uid:gid 0:0 - disabling."},
		{name: "missing", line: filepath.Join(d, "nope.sh"), want: FlagNotFound, note: "cannot be accessed - No such file or directory"},
		{name: "a file in the path", line: filepath.Join(d, "ok.sh", "x"), want: FlagNotFound, note: "Not a directory"},
		{name: "group writable, non-root group", line: file(t, d, "gw.sh", 0o775, 0, 1234), want: FlagIsScript | FlagExecutable | FlagInsecure, note: "Unsafe permissions found for script"},
		{name: "group writable, non-root group, enforced", line: file(t, d, "gwe.sh", 0o775, 0, 1234), enforce: true, want: FlagIsScript | FlagExecutable | FlagInsecure | FlagInhibit, note: "- disabling."},
		{name: "group writable, root group", line: file(t, d, "rgw.sh", 0o775, 0, 0), enforce: true, want: FlagIsScript | FlagExecutable},
		{name: "world writable", line: file(t, d, "ww.sh", 0o757, 0, 0), enforce: true, want: FlagIsScript | FlagExecutable | FlagInsecure | FlagInhibit},
		{name: "owned by nobody", line: file(t, d, "nb.sh", 0o755, nobody, 0), enforce: true, want: FlagIsScript | FlagExecutable | FlagInsecure | FlagInhibit},
		{name: "in a world-writable directory", line: file(t, worldDir, "x.sh", 0o755, 0, 0), enforce: true, want: FlagIsScript | FlagExecutable | FlagInsecure | FlagInhibit},
		{name: "in a sticky world-writable directory", line: file(t, stickyDir, "x.sh", 0o755, 0, 0), enforce: true, want: FlagIsScript | FlagExecutable},
		{name: "in a directory writable by a non-root group", line: file(t, groupDir, "x.sh", 0o755, 0, 0), enforce: true, want: FlagIsScript | FlagExecutable | FlagInsecure | FlagInhibit},
		{name: "in a directory writable by the root group", line: file(t, rootGroupDir, "x.sh", 0o755, 0, 0), enforce: true, want: FlagIsScript | FlagExecutable},
		{name: "in a directory owned by nobody", line: file(t, userDir, "x.sh", 0o755, 0, 0), enforce: true, want: FlagIsScript | FlagExecutable | FlagInsecure | FlagInhibit},
		{name: "insecure without enforce: noted, not inhibited", line: file(t, userDir, "y.sh", 0o755, 0, 0), want: FlagIsScript | FlagExecutable | FlagInsecure, note: "Unsafe permissions found for script '" + filepath.Join(userDir, "y.sh") + "'."},
		// A script run as nobody is not checked for writable paths (it
		// cannot gain root), but must be reachable and executable.
		{name: "nobody: world-executable in an insecure dir", line: file(t, worldDir, "n.sh", 0o755, 0, 0), id: Identity{nobody, nobody}, enforce: true, want: FlagIsScript | FlagExecutable},
		{name: "nobody: owner-only executable", line: file(t, d, "ro.sh", 0o700, 0, 0), id: Identity{nobody, nobody}, enforce: true, want: FlagIsScript, note: "is not executable for uid:gid 65534:65534"},
		{name: "nobody: group executable, its group", line: file(t, d, "gn.sh", 0o750, 0, nobody), id: Identity{nobody, nobody}, want: FlagIsScript | FlagExecutable},
		{name: "nobody: a directory it cannot search", line: file(t, privDir, "p.sh", 0o755, 0, 0), id: Identity{nobody, nobody}, want: FlagNotFound, note: "cannot be accessed - Permission denied"},
		{name: "nobody: set-uid root is checked as root", line: file(t, userDir, "suid.sh", 0o4755, 0, 0), id: Identity{nobody, nobody}, enforce: true, want: FlagIsScript | FlagExecutable | FlagInsecure | FlagInhibit},
		{name: "file-open check", line: "</dev/tcp/127.0.0.1/80", want: FlagSystem},
		{name: "file-open check with blanks", line: " <  " + filepath.Join(d, "missing"), want: FlagSystem},
		{name: "unparsable", line: file(t, d, "q.sh", 0o755, 0, 0) + " 'open", want: FlagNotFound, note: "Unable to parse script"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := CheckSecurity(tt.line, tt.id, SecurityOptions{Enforce: tt.enforce, PATH: "/nonexistent", Groups: []uint32{}})
			if s.Flags != tt.want {
				t.Errorf("flags %#x, want %#x; notes %q", s.Flags, tt.want, s.Notes)
			}
			if tt.note != "" && !hasNote(s, tt.note) {
				t.Errorf("notes %q lack %q", s.Notes, tt.note)
			}
			wantOff := tt.want&(FlagInhibit|FlagNotFound) != 0 || tt.want&(FlagExecutable|FlagSystem) == 0
			if s.Disabled() != wantOff {
				t.Errorf("Disabled() = %v, want %v", s.Disabled(), wantOff)
			}
		})
	}
}

func TestCheckSecurityWrongFileType(t *testing.T) {
	d := secureDir(t)
	fifo := filepath.Join(d, "fifo")
	if err := syscall.Mkfifo(fifo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fifo, 0o755); err != nil {
		t.Fatal(err)
	}
	s := CheckSecurity(fifo, root, SecurityOptions{Groups: []uint32{}})
	if s.Flags&FlagInhibit == 0 || !hasNote(s, "Wrong file type found in script path") || !s.Disabled() {
		t.Errorf("a fifo: flags %#x notes %q; want inhibited, wrong file type", s.Flags, s.Notes)
	}
}

func TestCheckSecurityPathSearch(t *testing.T) {
	d := secureDir(t)
	noexec := subdir(t, d, "noexec", 0o755, 0, 0)
	bin := subdir(t, d, "bin", 0o755, 0, 0)
	file(t, noexec, "prog", 0o644, 0, 0)
	file(t, noexec, "onlyhere", 0o644, 0, 0)
	subdir(t, noexec, "adir", 0o755, 0, 0)
	want := file(t, bin, "prog", 0o755, 0, 0)
	path := noexec + "::" + bin // an empty entry is the current directory
	t.Chdir(d)

	s := CheckSecurity("prog arg", root, SecurityOptions{PATH: path, Groups: []uint32{}})
	if s.Flags != FlagIsScript|FlagExecutable || s.Program != want {
		t.Errorf("prog: flags %#x program %q, want executable %q; notes %q", s.Flags, s.Program, want, s.Notes)
	}
	if !hasNote(s, "WARNING - script `prog` resolved by path search to `"+want+"`. Please specify full path.") {
		t.Errorf("no path search note: %q", s.Notes)
	}
	s = CheckSecurity("onlyhere", root, SecurityOptions{PATH: path, Groups: []uint32{}})
	if s.Flags != FlagNotFound || !hasNote(s, "Permissions failure for script onlyhere in path - disabling") {
		t.Errorf("onlyhere (not executable): flags %#x notes %q", s.Flags, s.Notes)
	}
	s = CheckSecurity("adir", root, SecurityOptions{PATH: path, Groups: []uint32{}})
	if s.Flags != FlagNotFound || !hasNote(s, "Permissions failure for script adir in path") {
		t.Errorf("adir (a directory): flags %#x notes %q", s.Flags, s.Notes)
	}
	s = CheckSecurity("nosuch", root, SecurityOptions{PATH: path, Groups: []uint32{}})
	if s.Flags != FlagNotFound || !hasNote(s, "Cannot find script nosuch in path - disabling") {
		t.Errorf("nosuch: flags %#x notes %q", s.Flags, s.Notes)
	}
	// The current directory (the empty PATH entry) is searched in order.
	here := file(t, d, "local", 0o755, 0, 0)
	s = CheckSecurity("local", root, SecurityOptions{PATH: path, Groups: []uint32{}})
	if s.Flags != FlagIsScript|FlagExecutable || s.Program != here {
		t.Errorf("local: flags %#x program %q, want %q", s.Flags, s.Program, here)
	}
	// A program nobody cannot execute is skipped for the next one.
	file(t, noexec, "mine", 0o700, 0, 0)
	other := file(t, bin, "mine", 0o755, 0, 0)
	s = CheckSecurity("mine", Identity{nobody, nobody}, SecurityOptions{PATH: noexec + ":" + bin, Groups: []uint32{}})
	if s.Program != other || s.Flags&FlagExecutable == 0 {
		t.Errorf("mine as nobody: flags %#x program %q, want %q", s.Flags, s.Program, other)
	}
}

func TestCheckSecuritySymlinks(t *testing.T) {
	d := secureDir(t)
	real := file(t, d, "real.sh", 0o755, 0, 0)
	link := filepath.Join(d, "chk")
	if err := os.Symlink("real.sh", link); err != nil {
		t.Fatal(err)
	}
	// The name called is kept when it is the same file: chk, not real.sh.
	s := CheckSecurity(link, root, SecurityOptions{Enforce: true, Groups: []uint32{}})
	if s.Flags != FlagIsScript|FlagExecutable || s.Program != link {
		t.Errorf("link: flags %#x program %q, want %q; notes %q", s.Flags, s.Program, link, s.Notes)
	}
	// A link through a directory: the target's directory is checked too.
	userDir := subdir(t, d, "user", 0o755, nobody, nobody)
	target := file(t, userDir, "t.sh", 0o755, 0, 0)
	link2 := filepath.Join(d, "via")
	if err := os.Symlink(target, link2); err != nil {
		t.Fatal(err)
	}
	s = CheckSecurity(link2, root, SecurityOptions{Enforce: true, Groups: []uint32{}})
	if s.Flags&FlagInhibit == 0 || !hasNote(s, "Unsafe permissions found for script '"+target+"' - disabling.") {
		t.Errorf("link into an insecure dir: flags %#x notes %q", s.Flags, s.Notes)
	}
	// "/./", "/../" are resolved.
	s = CheckSecurity(filepath.Join(d, "user", "..", ".", "real.sh"), root, SecurityOptions{Enforce: true, Groups: []uint32{}})
	if s.Program != real || s.Flags != FlagIsScript|FlagExecutable {
		t.Errorf("dotted path: flags %#x program %q, want %q", s.Flags, s.Program, real)
	}
	loop := filepath.Join(d, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	if s := CheckSecurity(loop, root, SecurityOptions{Groups: []uint32{}}); s.Flags != FlagNotFound {
		t.Errorf("link loop: flags %#x notes %q", s.Flags, s.Notes)
	}
	dangling := filepath.Join(d, "dangling")
	if err := os.Symlink("gone.sh", dangling); err != nil {
		t.Fatal(err)
	}
	if s := CheckSecurity(dangling, root, SecurityOptions{Groups: []uint32{}}); s.Flags != FlagNotFound {
		t.Errorf("dangling link: flags %#x notes %q", s.Flags, s.Notes)
	}
}

func TestNotifyDisabled(t *testing.T) {
	if !(Security{Flags: FlagSystem}).NotifyDisabled() || (Security{Flags: FlagSystem}).Disabled() {
		t.Error("a file-open check runs as a vrrp_script / MISC_CHECK, not as a notify script")
	}
	if (Security{Flags: FlagIsScript | FlagExecutable | FlagInsecure}).NotifyDisabled() {
		t.Error("insecure without enforce still runs")
	}
}

// fakeUsers is a user database for CheckConfig.
func fakeUsers(users map[string][2]uint32) Host {
	return Host{
		LookupUser: func(name string) (uint32, uint32, error) {
			if u, ok := users[name]; ok {
				return u[0], u[1], nil
			}
			return 0, 0, errors.New("no such user")
		},
		LookupGroup: func(name string) (uint32, error) {
			if name == "nogroup" {
				return nobody, nil
			}
			return 0, errors.New("no such group")
		},
		Self:     &Identity{},
		Security: SecurityOptions{PATH: "/nonexistent", Groups: []uint32{}},
	}
}

// instanceHead opens a vrrp_instance VI_1 on eth0 (its track_script and
// notify lines follow).
const instanceHead = `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress {
    10.0.0.1
  }
`

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags, err := config.Parse("test.conf", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v %v", err, diags)
	}
	return cfg
}

func TestCheckConfig(t *testing.T) {
	d := secureDir(t)
	ok := file(t, d, "ok.sh", 0o755, 0, 0)
	userDir := subdir(t, d, "user", 0o755, nobody, nobody)
	insecure := file(t, userDir, "bad.sh", 0o755, 0, 0)
	noexec := file(t, d, "noexec.sh", 0o644, 0, 0)
	src := `global_defs {
  enable_script_security
  script_user root
}
vrrp_script missing {
  script "` + d + `/nope.sh"
}
vrrp_script insecure {
  script "` + insecure + `"
}
vrrp_script good {
  script "` + ok + ` arg"
}
vrrp_script noexec {
  script "` + noexec + `"
}
vrrp_script open {
  script "</dev/null"
}
vrrp_script baduser {
  script "` + ok + `"
  user nosuchuser
}
vrrp_sync_group G {
  group {
    VI_1
  }
  track_script {
    missing
    good
  }
}
` + instanceHead + `  track_script {
    missing
    insecure
    good
    noexec
    open
    baduser
  }
  notify_master "` + d + `/nope.sh"
  notify_backup "` + ok + `"
  notify_fault "</dev/null"
  notify "` + insecure + `"
  notify_stop "` + ok + `" nosuchuser
}
virtual_server 10.0.0.1 80 {
  quorum_up "` + d + `/nope.sh"
  real_server 10.0.0.2 80 {
    notify_up "` + ok + `"
    MISC_CHECK {
      misc_path "` + d + `/nope.sh x"
    }
    MISC_CHECK {
      misc_path "` + ok + `"
    }
    MISC_CHECK {
      misc_path "` + insecure + `"
    }
  }
}
`
	cfg := parse(t, src)
	rep := CheckConfig(cfg, fakeUsers(map[string][2]uint32{"root": {0, 0}}))
	want := map[string]string{
		"missing":  "Disabling track script missing since not found/accessible",
		"insecure": "Disabling track script insecure due to insecure",
		"noexec":   "WARNING - script '" + noexec + "' is not executable for uid:gid 0:0 - disabling." + quietNote,
		"baduser":  "Unable to set uid/gid for script " + ok,
	}
	if len(rep.Scripts) != len(want) {
		t.Errorf("disabled vrrp_scripts %q, want %q", rep.Scripts, want)
	}
	for k, v := range want {
		if rep.Scripts[k] != v {
			t.Errorf("vrrp_script %s: %q, want %q", k, rep.Scripts[k], v)
		}
	}
	msgs := map[string]bool{}
	for _, dg := range rep.Diagnostics {
		if dg.Severity != config.Warning || dg.File != "test.conf" || dg.Line == 0 {
			t.Errorf("diagnostic %v: want a warning at a line of test.conf", dg)
		}
		msgs[dg.String()] = true
	}
	for _, m := range []string{
		"test.conf:5: vrrp_script: Disabling track script missing since not found/accessible",
		"test.conf:8: vrrp_script: Disabling track script insecure due to insecure",
		"test.conf:20: vrrp_script: Unable to set uid/gid for script " + ok,
		"test.conf:58: MISC_CHECK: Disabling misc script " + d + "/nope.sh x since not found/accessible" + quietNote,
		"test.conf:64: MISC_CHECK: Disabling misc script " + insecure + " due to insecure" + quietNote,
	} {
		if !msgs[m] {
			t.Errorf("missing diagnostic %q in %v", m, msgs)
		}
	}
	kinds := map[string]int{}
	for _, x := range rep.Disabled {
		kinds[x.Keyword]++
	}
	// notify_master (missing), notify_fault (open check), notify (insecure),
	// notify_stop (bad user); quorum_up (missing).
	for k, n := range map[string]int{"vrrp_script": 4, "notify_master": 1, "notify_fault": 1, "notify": 1, "notify_stop": 1, "quorum_up": 1, "MISC_CHECK": 2} {
		if kinds[k] != n {
			t.Errorf("%d disabled %s, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
	if len(rep.Disabled) != 11 {
		t.Errorf("%d disabled, want 11: %+v", len(rep.Disabled), rep.Disabled)
	}

	// Nothing changes before Apply.
	in := cfg.Instance("VI_1")
	if len(in.TrackScripts) != 6 || in.Notify.Master.IsZero() || len(cfg.VirtualServers[0].RealServers[0].Checkers) != 3 {
		t.Fatal("CheckConfig changed the configuration")
	}
	rep.Apply()
	var tracked []string
	for _, ts := range in.TrackScripts {
		tracked = append(tracked, ts.Name)
	}
	if strings.Join(tracked, ",") != "good,open" {
		t.Errorf("tracked after Apply: %v, want good,open", tracked)
	}
	if g := cfg.SyncGroup("G"); len(g.TrackScripts) != 1 || g.TrackScripts[0].Name != "good" {
		t.Errorf("sync group tracks %+v, want good", g.TrackScripts)
	}
	if len(cfg.Scripts) != 6 {
		t.Errorf("the vrrp_script blocks stay (for status): %d", len(cfg.Scripts))
	}
	n := in.Notify
	if !n.Master.IsZero() || n.Backup.IsZero() || !n.Fault.IsZero() || !n.Any.IsZero() || !n.Stop.IsZero() {
		t.Errorf("notify after Apply: %+v", n)
	}
	vs := cfg.VirtualServers[0]
	rs := vs.RealServers[0]
	if !vs.QuorumUp.IsZero() || rs.NotifyUp.IsZero() {
		t.Errorf("quorum_up %q notify_up %q after Apply", vs.QuorumUp.Command, rs.NotifyUp.Command)
	}
	if len(rs.Checkers) != 1 || rs.Checkers[0].MiscPath.Command != ok {
		t.Errorf("checkers after Apply: %d", len(rs.Checkers))
	}
}

func TestCheckConfigDefaultUser(t *testing.T) {
	d := secureDir(t)
	ok := file(t, d, "ok.sh", 0o700, 0, 0)
	src := func(global string) string {
		return `global_defs {
` + global + `
}
vrrp_script chk {
  script "` + ok + `"
}
vrrp_script mine {
  script "` + ok + `"
  user nobody
}
` + instanceHead + `  track_script {
    chk
    mine
  }
}
`
	}
	users := map[string][2]uint32{"root": {0, 0}, "nobody": {nobody, nobody}}
	// No keepalived_script user, enable_script_security, no script_user:
	// keepalived has no default user and removes the scripts without one.
	rep := CheckConfig(parse(t, src("enable_script_security")), fakeUsers(users))
	if rep.Scripts["chk"] != "Unable to set default user for vrrp script chk - removing" {
		t.Errorf("chk: %q", rep.Scripts["chk"])
	}
	if len(rep.Diagnostics) == 0 || rep.Diagnostics[0].Message != "Unable to set default user keepalived_script for script" {
		t.Errorf("diagnostics %v", rep.Diagnostics)
	}
	// mine runs as nobody: ok.sh (0700 root) is not executable for it.
	if !strings.Contains(rep.Scripts["mine"], "is not executable for uid:gid 65534:65534") {
		t.Errorf("mine: %q", rep.Scripts["mine"])
	}
	// Without enable_script_security the default is ourselves (root).
	rep = CheckConfig(parse(t, src("")), fakeUsers(users))
	if _, off := rep.Scripts["chk"]; off {
		t.Errorf("chk disabled without enable_script_security: %q", rep.Scripts["chk"])
	}
	// keepalived_script exists: it is the default user.
	users["keepalived_script"] = [2]uint32{nobody, nobody}
	rep = CheckConfig(parse(t, src("enable_script_security")), fakeUsers(users))
	if !strings.Contains(rep.Scripts["chk"], "not executable for uid:gid 65534:65534") {
		t.Errorf("chk as keepalived_script: %q", rep.Scripts["chk"])
	}
	// script_user names a user that does not exist.
	rep = CheckConfig(parse(t, src("script_user nosuch")), fakeUsers(users))
	if rep.Scripts["chk"] != "Unable to set default user for vrrp script chk - removing" ||
		len(rep.Diagnostics) == 0 || rep.Diagnostics[0].Message != "Error setting global script uid/gid" {
		t.Errorf("bad script_user: %q %v", rep.Scripts["chk"], rep.Diagnostics)
	}
	// script_user with a group.
	rep = CheckConfig(parse(t, src("script_user root nogroup")), fakeUsers(users))
	if len(rep.Scripts) != 1 || rep.Scripts["mine"] == "" {
		t.Errorf("script_user root nogroup: %q", rep.Scripts)
	}
}

// TestCheckConfigNoInstances: like keepalived, vrrp scripts are checked
// only when there is a vrrp_instance, checker scripts only when there is
// a virtual_server.
func TestCheckConfigNoInstances(t *testing.T) {
	cfg := parse(t, `vrrp_script chk {
  script "/nonexistent/x.sh"
}
`)
	if rep := CheckConfig(cfg, fakeUsers(nil)); len(rep.Diagnostics) != 0 || len(rep.Disabled) != 0 {
		t.Errorf("checked without an instance: %v", rep.Diagnostics)
	}
}

// FuzzCheckSecurity: any command line gets an answer, never a panic, and
// the answer is consistent.
func FuzzCheckSecurity(f *testing.F) {
	for _, s := range []string{"/bin/true", "true", "sh -c 'exit 1'", "</dev/null", " < /x", "/tmp/../bin/sh", "/bin/true/",
		"'", `a\`, "/proc/self/exe", "/dev/null", "./x.sh", "..", "/", "//bin//./true", "/nonexistent/x.sh arg"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, line string, enforce bool) {
		if strings.ContainsRune(line, 0) {
			return // not a C string: keepalived cannot hold it
		}
		s := CheckSecurity(line, Identity{}, SecurityOptions{Enforce: enforce, PATH: DefaultPATH, Groups: []uint32{}})
		switch {
		case s.Flags&FlagSystem != 0 && s.Flags != FlagSystem:
			t.Fatalf("%q: a file-open check with more flags %#x", line, s.Flags)
		case s.Flags&FlagExecutable != 0 && s.Flags&FlagIsScript == 0:
			t.Fatalf("%q: executable but not a script: %#x", line, s.Flags)
		case s.Flags&FlagInhibit != 0 && !s.Disabled():
			t.Fatalf("%q: inhibited but not disabled", line)
		case s.Flags&FlagInsecure != 0 && enforce && s.Flags&FlagInhibit == 0:
			t.Fatalf("%q: insecure under enable_script_security but not inhibited", line)
		case s.Program != "" && !filepath.IsAbs(s.Program):
			t.Fatalf("%q: program %q is not absolute", line, s.Program)
		case s.Disabled() && s.Flags&FlagNotFound != 0 && len(s.Notes) == 0:
			t.Fatalf("%q: not found without a note", line)
		}
	})
}

// TestCheckConfigSecurityViolation: scripts found while
// enable_script_security is off are keepalived's SECURITY VIOLATION (with
// script_user set; pkg/config warns when it is not).
func TestCheckConfigSecurityViolation(t *testing.T) {
	d := secureDir(t)
	ok := file(t, d, "ok.sh", 0o755, 0, 0)
	userDir := subdir(t, d, "user", 0o755, nobody, nobody)
	bad := file(t, userDir, "bad.sh", 0o755, 0, 0)
	conf := func(global, prog string) string {
		return "global_defs {\n" + global + "\n}\nvrrp_script chk {\n  script \"" + prog + "\"\n}\n" + instanceHead + "  track_script {\n    chk\n  }\n}\n"
	}
	users := fakeUsers(map[string][2]uint32{"root": {0, 0}})
	for _, tt := range []struct {
		global, prog, want string
	}{
		{"script_user root", ok, "SECURITY VIOLATION - scripts are being executed but script_security not enabled."},
		{"script_user root", bad, "SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts."},
		{"script_user root", "/nonexistent/x", ""}, // nothing found, nothing executed
		{"script_user root\nenable_script_security", ok, ""},
	} {
		rep := CheckConfig(parse(t, conf(tt.global, tt.prog)), users)
		var got string
		for _, dg := range rep.Diagnostics {
			if strings.HasPrefix(dg.Message, "SECURITY VIOLATION") {
				got = dg.Message
				if dg.Line != 4 {
					t.Errorf("%s: at line %d, want the vrrp_script's (4)", tt.prog, dg.Line)
				}
			}
		}
		if got != tt.want {
			t.Errorf("%q %s: %q, want %q", tt.global, tt.prog, got, tt.want)
		}
	}
}
