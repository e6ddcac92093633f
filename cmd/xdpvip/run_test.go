package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRejectsBadConfig: `xdpvip run` on an invalid configuration exits
// non-zero before touching anything and names file, line and keyword.
func TestRunRejectsBadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "xdpvip")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	conf := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(conf, []byte("vrrp_instance V {\n  interface eth0\n  virtual_router_id 300\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "x.sock")
	out, err := exec.Command(bin, "run", "-f", conf, "--control-socket", sock, "--bpf-dir", filepath.Join(dir, "bpf"), "--dataplane", "none").CombinedOutput()
	if err == nil {
		t.Fatalf("run accepted a bad config:\n%s", out)
	}
	if !strings.Contains(string(out), conf+":3: virtual_router_id:") {
		t.Errorf("output does not name file:line: keyword:\n%s", out)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("the control socket was created for a config that does not load")
	}
}
