package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/testnet"
)

// keepalived 2.2.7 checks every script before it runs anything
// (check_script_secure): a vrrp_script whose program is not there is
// disabled ("Disabling track script chk since not found/accessible") and
// taken out of the instances that track it, so they run as if it were not
// tracked. xdpvip does the same: a pair tracking a missing weight-0 script
// elects a MASTER that holds the VIP (before, xdpvip counted the script as
// failing and stayed in FAULT forever), with keepalived in the same pair.

// missingScriptConf is VI_1 of VRRPConf tracking vrrp_script chk (weight 0:
// a failing chk means FAULT) whose program is prog, with script security
// on (scripts run as root).
func missingScriptConf(name string, prio int, prog string) string {
	return fmt.Sprintf(`global_defs {
    router_id %s
    enable_script_security
    script_user root
}
vrrp_script chk {
    script "%s"
    interval 1
    weight 0
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk
    }
}
`, name, prog, prio)
}

const disabledChk = "Disabling track script chk since not found/accessible"

// scriptState is chk as `xdpvip status --json` shows it.
func scriptState(t *testing.T, n *Node) daemon.ScriptStatus {
	t.Helper()
	out, err := n.CLI("status", "--json")
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var st struct {
		Scripts []daemon.ScriptStatus `json:"scripts"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	for _, s := range st.Scripts {
		if s.Name == "chk" {
			return s
		}
	}
	t.Fatalf("status --json lists no script chk:\n%s", out)
	return daemon.ScriptStatus{}
}

func TestScriptSecurityMissingTrackedScript(t *testing.T) {
	testnet.Require(t)
	missing := filepath.Join(t.TempDir(), "nonexistent", "chk.sh")

	t.Run("check-config", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(conf, []byte(missingScriptConf("lvs1", 100, missing)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xdpvipBin, "check-config", "-q", "-f", conf).CombinedOutput()
		if err != nil {
			t.Fatalf("check-config refuses: %v\n%s", err, out)
		}
		// The vrrp_script block starts on line 6.
		want := conf + ":6: vrrp_script: warning: " + disabledChk
		if !strings.Contains(string(out), want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
		if _, err := os.Stat(keepalivedBin); err == nil {
			// keepalived -t exits 5 for any message; the text matters.
			ka, _ := exec.Command(keepalivedBin, "-t", "-f", conf).CombinedOutput()
			if !strings.Contains(string(ka), disabledChk) {
				t.Errorf("keepalived -t does not say %q (the reference moved?):\n%s", disabledChk, ka)
			}
		}
	})

	t.Run("xdpvip-pair", func(t *testing.T) {
		n := testnet.New(t)
		a := n.AddHost("lvs1", "192.0.2.11/24")
		b := n.AddHost("lvs2", "192.0.2.12/24")
		const ma = "192.0.2.11:9165"
		na := StartXdpvip(t, a, missingScriptConf("lvs1", 100, missing), "--dataplane", "none", "--metrics-address", ma)
		nb := StartXdpvip(t, b, missingScriptConf("lvs2", 90, missing), "--dataplane", "none")
		na.WaitState("VI_1", "MASTER", 8*time.Second)
		nb.WaitState("VI_1", "BACKUP", 3*time.Second)
		if !HasAddr(t, a, "192.0.2.100") || HasAddr(t, b, "192.0.2.100") {
			t.Fatal("the VIP is not on lvs1 alone")
		}
		for _, nd := range []*Node{na, nb} {
			s := scriptState(t, nd)
			if s.Disabled != disabledChk || s.Running || s.OK {
				t.Errorf("%s: chk in status %+v, want disabled %q, not running", nd.Host.Name(), s, disabledChk)
			}
			if !strings.Contains(nd.Proc.Log(), disabledChk) {
				t.Errorf("%s: the daemon did not log %q", nd.Host.Name(), disabledChk)
			}
		}
		// The instance holds MASTER: nothing tracks chk, nothing fails.
		time.Sleep(3 * time.Second)
		if st, err := na.Instance("VI_1"); err != nil || st.State != "MASTER" {
			t.Fatalf("lvs1 left MASTER: %+v %v", st, err)
		}
		// keepalived frees a disabled script: no metric reads as failing.
		if m := scrapeMetric(t, a, ma, "keepalived_script_status"); len(m) != 0 {
			t.Errorf("keepalived_script_status for a disabled script: %v", m)
		}

		// Every reload checks again: the program appears and fails, so
		// chk is tracked and its failure (weight 0) is a FAULT; lvs2
		// takes over. It disappears again: lvs1 recovers.
		if err := os.MkdirAll(filepath.Dir(missing), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(missing, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(missing)) })
		if out, err := na.CLI("reload"); err != nil {
			t.Fatalf("reload: %v\n%s", err, out)
		}
		na.WaitState("VI_1", "FAULT", 8*time.Second)
		nb.WaitState("VI_1", "MASTER", 8*time.Second)
		if s := scriptState(t, na); s.Disabled != "" || !s.Running {
			t.Errorf("after the program appeared: chk %+v, want tracked and running", s)
		}
		if m := scrapeMetric(t, a, ma, "keepalived_script_status"); m[`{name="chk"}`] != 0 || len(m) != 1 {
			t.Errorf("keepalived_script_status of the failing chk: %v, want one series, 0", m)
		}
		if err := os.Remove(missing); err != nil {
			t.Fatal(err)
		}
		if out, err := na.CLI("reload"); err != nil {
			t.Fatalf("reload: %v\n%s", err, out)
		}
		na.WaitState("VI_1", "MASTER", 8*time.Second)
		nb.WaitState("VI_1", "BACKUP", 3*time.Second)
		if s := scriptState(t, na); s.Disabled != disabledChk {
			t.Errorf("after the program went: chk %+v, want disabled again", s)
		}
	})

	t.Run("with-keepalived", func(t *testing.T) {
		RequireKeepalived(t)
		n := testnet.New(t)
		xh := n.AddHost("xdpvip", "192.0.2.11/24")
		kh := n.AddHost("ka", "192.0.2.12/24")
		// keepalived has the higher priority: it must become MASTER
		// (it disables chk too) while xdpvip waits as BACKUP, not FAULT.
		k := StartKeepalived(t, kh, missingScriptConf("ka", 100, missing))
		x := StartXdpvip(t, xh, missingScriptConf("xdpvip", 90, missing), "--dataplane", "none")
		k.WaitState("VI_1", "MASTER", 10*time.Second)
		x.WaitState("VI_1", "BACKUP", 5*time.Second)
		if !HasAddr(t, kh, "192.0.2.100") || HasAddr(t, xh, "192.0.2.100") {
			t.Fatal("the VIP is not on keepalived alone")
		}
		if k.LogCount(disabledChk) == 0 {
			t.Errorf("keepalived did not log %q:\n%s", disabledChk, k.Proc.Log())
		}
		// keepalived leaves: xdpvip takes over and holds the VIP.
		k.Stop()
		x.WaitState("VI_1", "MASTER", 6*time.Second)
		testnet.Eventually(t, 3*time.Second, func() error {
			if !HasAddr(t, xh, "192.0.2.100") {
				return fmt.Errorf("VIP not on xdpvip")
			}
			return nil
		})
		// And keepalived, back, preempts it as a running peer would.
		k.Restart()
		k.WaitState("VI_1", "MASTER", 10*time.Second)
		x.WaitState("VI_1", "BACKUP", 5*time.Second)
		x.Stop(syscall.SIGTERM)
	})
}

// TestScriptSecurityMiscCheck: a MISC_CHECK whose program is missing is
// removed from its real server, as keepalived does ("Disabling misc
// script ... since not found/accessible"): the real server has no checker
// left and stays up, and takes traffic; a MISC_CHECK that runs and fails
// still takes its real server down.
func TestScriptSecurityMiscCheck(t *testing.T) {
	l := newLVSLab(t)
	l.StartNginx(l.RS1)
	l.StartNginx(l.RS2)
	missing := filepath.Join(t.TempDir(), "nonexistent", "check.sh")
	real := func(addr, prog string) string {
		return fmt.Sprintf("    real_server %s 80 {\n        weight 1\n        MISC_CHECK {\n            misc_path \"%s\"\n        }\n    }\n",
			strings.Split(addr, "/")[0], prog)
	}
	n1, _ := l.StartLBs(labVS(0, "", real(labRS1, missing), real(labRS2, "/bin/false")))
	testnet.Eventually(t, 10*time.Second, func() error {
		d, _, err := cliDest(n1, labRS2)
		if err != nil {
			return err
		}
		if d.Up {
			return fmt.Errorf("rs2 (MISC_CHECK /bin/false) still up")
		}
		return nil
	})
	// Three delay_loops: a checker counting the missing program as failing
	// would have taken rs1 down by now.
	time.Sleep(3 * time.Second)
	waitCLIWeight(t, n1, labRS1, 1, time.Second)
	want := "Disabling misc script " + missing + " since not found/accessible"
	if !strings.Contains(n1.Proc.Log(), want) {
		t.Errorf("the daemon did not log %q", want)
	}
	if share := measureShare(t, l, 50, "rs1"); share != 1 {
		t.Errorf("rs1 answered %.0f%% of the requests, want all (rs2 is down)", 100*share)
	}
}

// scriptCase is one program file for TestScriptSecurityMatchesKeepalived.
type scriptCase struct {
	path string // relative to the case directory
	mode uint32 // with set-uid / sticky bits as in chmod
	uid  int
	gid  int
	kind string // "file" (default), "dir", "fifo", "link:TARGET"
}

// TestScriptSecurityMatchesKeepalived: for programs of every mode and
// owner (group/world writable, owned by nobody, in writable, sticky,
// non-root directories, links, a fifo, missing, a loop, not executable,
// set-uid) run as root and as nobody, with and without
// enable_script_security, xdpvip disables exactly the vrrp_scripts
// keepalived 2.2.7 disables, for the same reason.
func TestScriptSecurityMatchesKeepalived(t *testing.T) {
	testnet.Require(t)
	RequireKeepalived(t)
	base := t.TempDir()
	for _, p := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	layout := []scriptCase{
		{path: "world", mode: 0o777, kind: "dir"}, {path: "sticky", mode: 0o1777, kind: "dir"},
		{path: "grp", mode: 0o775, gid: 1234, kind: "dir"}, {path: "usr", mode: 0o755, uid: 65534, gid: 65534, kind: "dir"},
		{path: "priv", mode: 0o700, kind: "dir"},
		{path: "ok.sh", mode: 0o755}, {path: "gw.sh", mode: 0o775, gid: 1234}, {path: "rgw.sh", mode: 0o775},
		{path: "ww.sh", mode: 0o757}, {path: "nb.sh", mode: 0o755, uid: 65534}, {path: "world/x.sh", mode: 0o755},
		{path: "sticky/x.sh", mode: 0o755}, {path: "grp/x.sh", mode: 0o755}, {path: "usr/x.sh", mode: 0o755},
		{path: "noexec.sh", mode: 0o644}, {path: "gx.sh", mode: 0o610}, {path: "ox.sh", mode: 0o701},
		{path: "priv/p.sh", mode: 0o755}, {path: "usr/suid.sh", mode: 0o4755}, {path: "ro.sh", mode: 0o700},
		{path: "link", kind: "link:ok.sh"}, {path: "via", kind: "link:usr/x.sh"}, {path: "loop", kind: "link:loop"},
		{path: "fifo", mode: 0o755, kind: "fifo"},
	}
	for _, c := range layout {
		p := filepath.Join(base, c.path)
		var err error
		switch {
		case c.kind == "dir":
			err = os.Mkdir(p, 0o700)
		case c.kind == "fifo":
			err = syscall.Mkfifo(p, 0o600)
		case strings.HasPrefix(c.kind, "link:"):
			if err := os.Symlink(strings.TrimPrefix(c.kind, "link:"), p); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			err = os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o600)
		}
		if err == nil {
			err = os.Chown(p, c.uid, c.gid)
		}
		if err == nil {
			err = syscall.Chmod(p, c.mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	progs := []string{"ok.sh", "gw.sh", "rgw.sh", "ww.sh", "nb.sh", "world/x.sh", "sticky/x.sh", "grp/x.sh", "usr/x.sh",
		"noexec.sh", "gx.sh", "ox.sh", "priv/p.sh", "usr/suid.sh", "ro.sh", "link", "via", "loop", "fifo", "missing.sh", "ok.sh/x"}
	conf := func(global, user string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "global_defs {\n    router_id ka\n%s\n}\n", global)
		for i, p := range progs {
			fmt.Fprintf(&b, "vrrp_script s%d {\n    script \"%s\"\n    interval 1\n%s}\n", i, filepath.Join(base, p), user)
		}
		b.WriteString("vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 100\n" +
			"    virtual_ipaddress {\n        192.0.2.100/24\n    }\n    track_script {\n")
		for i := range progs {
			fmt.Fprintf(&b, "        s%d\n", i)
		}
		b.WriteString("    }\n}\n")
		return b.String()
	}
	// What keepalived disables with a message, and what it only logs
	// ("is not executable ... - disabling"): name -> reason.
	disabledRE := regexp.MustCompile(`(?:Disabling track script (s\d+) (due to insecure|since not found/accessible))|(?:WARNING - script '([^']+)' is not executable for uid:gid \d+:\d+ - disabling)`)
	byProg := map[string]string{}
	for i, p := range progs {
		byProg[filepath.Join(base, p)] = fmt.Sprintf("s%d", i)
	}
	collect := func(text string) map[string]string {
		out := map[string]string{}
		for _, m := range disabledRE.FindAllStringSubmatch(text, -1) {
			if m[1] != "" {
				out[m[1]] = m[2]
			} else {
				out[byProg[m[3]]] = "not executable"
			}
		}
		return out
	}
	xdpvipDisabled := func(t *testing.T, path string) map[string]string {
		out, err := exec.Command(xdpvipBin, "check-config", "-f", path).CombinedOutput()
		if err != nil {
			t.Fatalf("check-config: %v\n%s", err, out)
		}
		return collect(string(out))
	}
	compare := func(t *testing.T, ka, xd map[string]string) {
		t.Helper()
		for i, p := range progs {
			s := fmt.Sprintf("s%d", i)
			if ka[s] != xd[s] {
				t.Errorf("%s (%s): keepalived %q, xdpvip %q", s, p, ka[s], xd[s])
			}
		}
		t.Logf("keepalived disables %d of %d: %v", len(ka), len(progs), ka)
	}
	for _, tc := range []struct{ name, global string }{
		{"root-enforced", "    enable_script_security\n    script_user root"},
		{"root-not-enforced", "    script_user root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keepalived.conf")
			if err := os.WriteFile(path, []byte(conf(tc.global, "")), 0o644); err != nil {
				t.Fatal(err)
			}
			// keepalived -t reports "Disabling ..." (exit 5) but logs the
			// not-executable ones only: run it as a daemon for those.
			kaT, _ := exec.Command(keepalivedBin, "-t", "-f", path).CombinedOutput()
			h := testnet.New(t).AddHost("ka", "192.0.2.12/24")
			k := StartKeepalived(t, h, conf(tc.global, ""))
			testnet.Eventually(t, 5*time.Second, func() error {
				if k.LogCount("VRRP_Script(s0)") == 0 {
					return fmt.Errorf("keepalived has not run its scripts yet")
				}
				return nil
			})
			ka := collect(k.Proc.Log())
			for s, why := range collect(string(kaT)) {
				if ka[s] != why {
					t.Errorf("keepalived -t and the daemon disagree on %s: %q, %q", s, why, ka[s])
				}
			}
			compare(t, ka, xdpvipDisabled(t, path))
		})
	}
	// As nobody (keepalived -t kills itself after a check as another user:
	// the daemon's log is the reference).
	t.Run("nobody-enforced", func(t *testing.T) {
		c := conf("    enable_script_security\n    script_user root", "    user nobody\n")
		path := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		h := testnet.New(t).AddHost("ka", "192.0.2.12/24")
		k := StartKeepalived(t, h, c)
		testnet.Eventually(t, 5*time.Second, func() error {
			if k.LogCount("VRRP_Script(s0)") == 0 {
				return fmt.Errorf("keepalived has not run its scripts yet")
			}
			return nil
		})
		compare(t, collect(k.Proc.Log()), xdpvipDisabled(t, path))
	})
}
