package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// The text status shows the largest advert gap of the last minute with its
// fraction of Master_Down_Interval, "-" where none was measured.
func TestWriteStatusGapColumn(t *testing.T) {
	st := daemon.Status{Instances: []daemon.InstanceStatus{
		{Name: "VI_B", State: "BACKUP", LargestGapSeconds: 2.3456, LargestGapRatio: 0.6421},
		{Name: "VI_M", State: "MASTER"},
	}}
	var b bytes.Buffer
	writeStatus(&b, &st)
	lines := strings.Split(b.String(), "\n")
	if len(lines) < 4 || !strings.Contains(lines[1], "MAX GAP 1m (/DOWN)") {
		t.Fatalf("no gap column:\n%s", b.String())
	}
	if !strings.Contains(lines[2], "2.346s (0.64)") {
		t.Fatalf("BACKUP line without its gap: %q", lines[2])
	}
	if f := strings.Fields(lines[3]); len(f) < 2 || f[len(f)-2] != "-" {
		t.Fatalf("MASTER line: %q, want - for the gap", lines[3])
	}
}

// A vrrp_script the start-up check disabled is named with keepalived's
// reason; one that runs is not listed.
func TestWriteStatusDisabledScript(t *testing.T) {
	st := daemon.Status{Scripts: []daemon.ScriptStatus{
		{ScriptStatus: instance.ScriptStatus{Name: "chk"}, Disabled: "Disabling track script chk since not found/accessible"},
		{ScriptStatus: instance.ScriptStatus{Name: "ok", OK: true, Running: true}},
	}}
	var b bytes.Buffer
	writeStatus(&b, &st)
	want := "vrrp_script chk disabled, not run or tracked: Disabling track script chk since not found/accessible\n"
	if !strings.Contains(b.String(), want) || strings.Contains(b.String(), "vrrp_script ok") {
		t.Fatalf("status text:\n%s\nwant the line %q and no line for ok", b.String(), want)
	}
}
