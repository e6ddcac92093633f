package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xdpvip/xdpvip/internal/daemon"
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
