package config

import (
	"strings"
	"testing"
)

// An IPv6 VIP's preferred_lft as keepalived 2.2.7 sets it: 0 (deprecated:
// never this host's source address) for a /128 by default, forever for a
// shorter prefix, the written value or "forever" when given; IPv4 VIPs
// keep forever whatever is written. An invalid value is an error naming
// the line.
func TestVIPPreferredLifetime(t *testing.T) {
	src := `vrrp_instance V {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        2001:db8::100
        2001:db8::101/128 preferred_lft forever
        2001:db8:1::1/64
        2001:db8:2::1/64 preferred_lft 0
        2001:db8:3::1/64 preferred_lft 30
    }
    virtual_ipaddress_excluded {
        192.0.2.100 preferred_lft 0
    }
}
`
	cfg, _, err := Parse("t.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint32{0, LifetimeForever, LifetimeForever, 0, 30, LifetimeForever}
	vips := append(cfg.Instances[0].VIPs, cfg.Instances[0].ExcludedVIPs...)
	if len(vips) != len(want) {
		t.Fatalf("%d VIPs, want %d", len(vips), len(want))
	}
	for i, v := range vips {
		if v.PreferredLft != want[i] {
			t.Errorf("%s: preferred_lft %d, want %d", v.Prefix, v.PreferredLft, want[i])
		}
	}

	bad := strings.Replace(src, "preferred_lft 30", "preferred_lft soon", 1)
	if _, _, err := Parse("t.conf", []byte(bad)); err == nil || !strings.Contains(err.Error(), "t.conf:9") || !strings.Contains(err.Error(), "preferred_lft") {
		t.Errorf("preferred_lft soon: %v, want an error at t.conf:9 naming preferred_lft", err)
	}
}
