package instance

import (
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
)

func loadSeed(t *testing.T) *config.Config {
	t.Helper()
	cfg, _, err := config.Load("../../../examples/seed-master.conf")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestReloadComparisons(t *testing.T) {
	a, b := loadSeed(t), loadSeed(t)
	x, y := a.Instances[0], b.Instances[0]
	y.Pos.Line += 10
	y.VIPs[0].Pos.Line += 10
	if !sameInstance(x, y) {
		t.Error("instances differing only in positions are not the same")
	}
	if y.VIPs[0].Pos.Line == 0 || x.VIPs[0].Pos.Line == 0 {
		t.Error("sameInstance cleared the configuration's positions")
	}
	if onlyPriorityChanged(x, y) {
		t.Error("onlyPriorityChanged with equal priorities")
	}
	y.Priority = 50
	if sameInstance(x, y) || !onlyPriorityChanged(x, y) {
		t.Error("a priority change is not recognised as one")
	}
	y.AdvertInt = 2 * time.Second
	if onlyPriorityChanged(x, y) {
		t.Error("priority and advert_int changed, reported as priority only")
	}
	y.AdvertInt, y.Priority = x.AdvertInt, 255
	if onlyPriorityChanged(x, y) {
		t.Error("becoming address owner is not a plain priority change")
	}
}

// What an instance tracks is part of it: a changed vrrp_script or sync
// group membership restarts it (fresh tracking state), the same ones keep
// it running.
func TestUnchangedIncludesTracking(t *testing.T) {
	conf := func(weight, group string) *config.Config {
		return parse(t, `vrrp_script chk {
    script "/bin/true"
    weight `+weight+`
}
vrrp_sync_group G {
    group {
        VI
`+group+`    }
}
`+instanceConf("VI", 7, "    track_script {\n        chk\n    }\n")+instanceConf("VJ", 8, ""))
	}
	a := conf("-10", "")
	for _, tc := range []struct {
		name string
		b    *config.Config
		want bool
	}{
		{"same", conf("-10", ""), true},
		{"script weight changed", conf("-20", ""), false},
		{"sync group grew", conf("-10", "        VJ\n"), false},
	} {
		b := tc.b
		if got := Unchanged(a, b, a.Instance("VI"), b.Instance("VI")); got != tc.want {
			t.Errorf("%s: Unchanged = %v, want %v", tc.name, got, tc.want)
		}
		if OnlyPriorityChanged(a, b, a.Instance("VI"), b.Instance("VI")) {
			t.Errorf("%s: OnlyPriorityChanged with equal priorities", tc.name)
		}
	}
}
