package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// A configuration read through the gate no longer tracks a vrrp_script
// whose program is missing, runs no missing notify script, and says so
// with keepalived's message at the vrrp_script's line.
func TestScriptGateDisablesMissingScripts(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	src := `vrrp_script chk {
    script "` + filepath.Join(dir, "missing.sh") + `"
    weight 0
}
vrrp_script ok {
    script "/bin/true"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority 100
    virtual_ipaddress {
        10.0.0.1
    }
    track_script {
        chk
        ok
    }
    notify_master "` + filepath.Join(dir, "missing-notify.sh") + `"
}
`
	if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g := newScriptGate(slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg, diags, err := g.read(config.Load)(conf)
	if err != nil {
		t.Fatal(err)
	}
	want := conf + ":1: vrrp_script: Disabling track script chk since not found/accessible"
	found := false
	for _, d := range diags {
		found = found || d.String() == want && d.Severity == config.Warning
	}
	if !found {
		t.Errorf("diagnostics %v lack the warning %q", diags, want)
	}
	ic := cfg.Instance("VI_1")
	var tracked []string
	for _, o := range instance.Tracking(ic, cfg) {
		if o.Kind == instance.TrackScript {
			tracked = append(tracked, o.Name)
		}
	}
	if strings.Join(tracked, ",") != "ok" {
		t.Errorf("tracked scripts %v, want only ok", tracked)
	}
	if !ic.Notify.Master.IsZero() {
		t.Errorf("notify_master %q kept", ic.Notify.Master.Command)
	}
	if got := g.disabledScripts(cfg); len(got) != 1 || got["chk"] == "" {
		t.Errorf("disabled %v, want chk", got)
	}
	// Later loads do not grow the gate without bound.
	for range 2 * keepReports {
		if _, _, err := g.read(config.Load)(conf); err != nil {
			t.Fatal(err)
		}
	}
	if len(g.disabled) != keepReports || len(g.order) != keepReports {
		t.Errorf("the gate keeps %d reports, want %d", len(g.disabled), keepReports)
	}
}
