package main

import (
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

func TestWriteConflicts(t *testing.T) {
	at := time.Date(2026, 1, 1, 10, 1, 2, 0, time.UTC)
	st := &daemon.Status{Instances: []daemon.InstanceStatus{
		{Name: "quiet"},
		{Name: "VI_1", ConflictStatus: instance.ConflictStatus{Conflicts: 3, ConflictActive: true,
			LastConflict: &instance.Conflict{Time: at, Kind: "garp", VIP: "192.0.2.100", MAC: "02:00:00:00:00:02"}}},
		{Name: "VI_2", ConflictStatus: instance.ConflictStatus{Conflicts: 1, ConflictReannounced: 1,
			LastConflict: &instance.Conflict{Time: at, Kind: "advert", Source: "192.0.2.2", Priority: 150, Yielded: true}}},
	}}
	var b strings.Builder
	writeConflicts(&b, st)
	want := "split brain on VI_1: 3 conflicts (ONGOING), last 10:01:02 garp for 192.0.2.100 from 02:00:00:00:00:02, re-announced 0 times\n" +
		"split brain on VI_2: 1 conflicts (over), last 10:01:02 advert from 192.0.2.2 priority 150 (yielded), re-announced 1 times\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
