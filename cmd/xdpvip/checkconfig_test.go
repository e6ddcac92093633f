package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigCLI builds xdpvip and runs check-config on the seed
// (valid) and on broken configurations (exit 1, file:line on stderr).
func TestCheckConfigCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "xdpvip")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("vrrp_instance V {\n interface eth0\n virtual_router_id 300\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unterminated := filepath.Join(dir, "open.conf")
	if err := os.WriteFile(unterminated, []byte("global_defs {\n router_id x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A tracked vrrp_script whose program is missing: keepalived's message
	// as a warning at the vrrp_script, still valid; a bare name found in
	// PATH gets keepalived's note.
	scripts := filepath.Join(dir, "scripts.conf")
	if err := os.WriteFile(scripts, []byte("vrrp_script chk {\n script \""+filepath.Join(dir, "missing.sh")+"\"\n}\n"+
		"vrrp_script bare {\n script \"sh -c true\"\n}\n"+
		"vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n  10.0.0.1\n }\n track_script {\n  chk\n  bare\n }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{"seed master", []string{"check-config", "-f", "../../examples/seed-master.conf"}, 0,
			[]string{"vrrp_instance VI_1: vrid 51", "priority 100", "vip 192.168.12.211/32",
				"virtual_server 192.168.12.211:80 TCP: wrr DR, persistent 50s",
				"real_server 192.168.28.103:80 weight 1 DR: TCP_CHECK 192.168.28.103:80 timeout 3s retry 1"},
			[]string{"seed-master.conf:18: authentication: warning:", "valid"}},
		{"seed backup", []string{"check-config", "--file", "../../examples/seed-backup.conf"}, 0,
			[]string{"vrid 51, BACKUP, priority 90"}, nil},
		{"vrid 300", []string{"check-config", "-f", bad}, 1, nil,
			[]string{bad + ":3: virtual_router_id:", "invalid: 1 error(s)"}},
		{"unterminated", []string{"check-config", "-f", unterminated}, 1, nil,
			[]string{unterminated + ":1: global_defs: block is never closed"}},
		{"missing file", []string{"check-config", "-f", filepath.Join(dir, "nope.conf")}, 1, nil,
			[]string{"nope.conf"}},
		{"help", []string{"check-config", "--help"}, 0, nil, []string{"usage: xdpvip check-config [-f FILE]"}},
		// --json: the model under keepalived's names, diagnostics included.
		{"json", []string{"check-config", "--json", "-f", "../../examples/seed-master.conf"}, 0,
			[]string{`"valid": true`, `"virtual_router_id": 51`, `"state": "BACKUP"`, `"configured_state": "MASTER"`,
				`"lb_kind": "DR"`, `"retry": 1`, `"keyword": "nb_get_retry"`}, nil},
		{"missing script", []string{"check-config", "-f", scripts}, 0, []string{"track_script chk"},
			[]string{scripts + ":1: vrrp_script: warning: Disabling track script chk since not found/accessible",
				scripts + ":4: vrrp_script: WARNING - script `sh` resolved by path search to", "valid"}},
		{"missing script json", []string{"check-config", "--json", "-f", scripts}, 0,
			[]string{`"valid": true`, `"message": "Disabling track script chk since not found/accessible"`}, nil},
		{"json invalid", []string{"check-config", "--json", "-f", bad}, 1, []string{`"valid": false`, `"severity": "error"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tt.wantCode, stderr.String())
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}
