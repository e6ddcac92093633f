package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFaultManyVIPs: an instance with 300 VIPs, more than one advert can
// carry (its count field is one byte). xdpvip should refuse it at config
// time with a message naming virtual_ipaddress_excluded as the way out; if
// it accepts it, the two nodes must still elect one MASTER holding all 300
// and keep them there. keepalived's `-t` verdict is noted and it runs the
// same config.
func TestFaultManyVIPs(t *testing.T) {
	const name = "300 VIPs"
	vips := make([]string, 300)
	for i := range vips {
		vips[i] = fmt.Sprintf("198.18.%d.%d/32", i/250, i%250+1)
	}
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(faultConf("lvs1", 100, vips)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keepalivedBin); err == nil {
		out, err := exec.Command(keepalivedBin, "-t", "-f", path).CombinedOutput()
		msg, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		noteFault(name, implKeepalived, fmt.Sprintf("keepalived -t: exit %d: %s", exitOf(err), msg))
		t.Logf("keepalived -t -f (300 VIPs): %v\n%s", err, out)
	}
	out, err := exec.Command(xdpvipBin, "check-config", "-f", path).CombinedOutput()
	t.Logf("xdpvip check-config (300 VIPs): %v\n%s", err, out)
	if err != nil {
		msg, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		noteFault(name, implXdpvip, "refused at config time: "+msg)
		if !strings.Contains(string(out), "virtual_ipaddress_excluded") {
			t.Errorf("xdpvip refuses 300 VIPs without naming virtual_ipaddress_excluded:\n%s", out)
		}
		return
	}
	noteFault(name, implXdpvip, "accepted at config time")
	runFaultScenario(t, faultScenario{
		name: name, runs: 2, keepalived: true,
		opts: faultOpts{vips: vips},
		// Nothing injected: the run watches the election's result for
		// the settle time.
		inject: func(*faultRun) {},
	})
}

// exitOf is a command's exit code from its error (0 for nil).
func exitOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
