package reloadplan

import (
	"strings"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/config"
)

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse("test.conf", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return cfg
}

const base = `
vrrp_script chk {
    script "/bin/true"
    interval 2
}
vrrp_instance KEEP {
    state BACKUP
    interface lo
    virtual_router_id 1
    priority 100
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_instance PRIO {
    state BACKUP
    interface lo
    virtual_router_id 2
    priority 100
    virtual_ipaddress {
        192.0.2.2/24
    }
}
vrrp_instance VIPS {
    state BACKUP
    interface lo
    virtual_router_id 3
    priority 100
    track_script {
        chk
    }
    virtual_ipaddress {
        192.0.2.3/24
    }
}
vrrp_instance GONE {
    state BACKUP
    interface lo
    virtual_router_id 4
    priority 100
    virtual_ipaddress {
        192.0.2.4/24
    }
}
virtual_server 192.0.2.1 80 {
    delay_loop 3
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.21 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 192.0.2.22 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`

// changed: PRIO's priority, VIPS's address list, GONE removed, NEW added
// (on an interface that does not exist), rs .22's weight and checker, rs
// .23 added, .21 untouched.
var changed = strings.NewReplacer(
	"virtual_router_id 2\n    priority 100", "virtual_router_id 2\n    priority 90",
	"192.0.2.3/24", "192.0.2.3/24\n        192.0.2.33/24",
	`vrrp_instance GONE {
    state BACKUP
    interface lo
    virtual_router_id 4`, `vrrp_instance NEW {
    state BACKUP
    interface xdpvip-nosuch0
    virtual_router_id 5`,
	"192.0.2.4/24", "192.0.2.5/24",
	`    real_server 192.0.2.22 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }`, `    real_server 192.0.2.22 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 192.0.2.23 80 {
        weight 1
    }`,
).Replace(base)

func find(p Plan, kind, name string) *Change {
	for i := range p.Changes {
		if p.Changes[i].Kind == kind && p.Changes[i].Name == name {
			return &p.Changes[i]
		}
	}
	return nil
}

func TestCompute(t *testing.T) {
	p := Compute(parse(t, base), parse(t, changed))
	for _, want := range []struct{ kind, name, action, detail string }{
		{"vrrp_instance", "KEEP", "untouched", ""},
		{"vrrp_instance", "PRIO", "priority", "priority: 100 -> 90"},
		{"vrrp_instance", "VIPS", "restarted", "192.0.2.33/24"},
		{"vrrp_instance", "GONE", "removed", ""},
		{"vrrp_instance", "NEW", "added", ""},
		{"virtual_server", "TCP 192.0.2.1:80", "untouched", ""},
		{"real_server", "TCP 192.0.2.1:80 -> 192.0.2.21:80", "untouched", ""},
		{"real_server", "TCP 192.0.2.1:80 -> 192.0.2.22:80", "changed", "1 -> 3"},
		{"real_server", "TCP 192.0.2.1:80 -> 192.0.2.23:80", "added", ""},
		{"checker", "TCP 192.0.2.1:80 -> 192.0.2.21:80", "untouched", ""},
		{"checker", "TCP 192.0.2.1:80 -> 192.0.2.22:80", "restarted", "3s"},
	} {
		c := find(p, want.kind, want.name)
		if c == nil {
			t.Errorf("no %s %s in the plan:\n%s", want.kind, want.name, p)
			continue
		}
		if c.Action != want.action || want.detail != "" && !strings.Contains(strings.Join(c.Details, "\n"), want.detail) {
			t.Errorf("%s %s: %s %q, want %s with %q", want.kind, want.name, c.Action, c.Details, want.action, want.detail)
		}
	}
	if !strings.Contains(p.Refused, "xdpvip-nosuch0") {
		t.Errorf("a new instance on a missing interface must make the plan refused, got %q", p.Refused)
	}
	text := p.String()
	for _, s := range []string{"priority   vrrp_instance PRIO", "removed    vrrp_instance GONE", "REFUSED:", "untouched: "} {
		if !strings.Contains(text, s) {
			t.Errorf("plan text lacks %q:\n%s", s, text)
		}
	}
}

func TestComputeSameConfig(t *testing.T) {
	p := Compute(parse(t, base), parse(t, base))
	for _, c := range p.Changes {
		if c.Action != "untouched" {
			t.Errorf("%s %s: %s on an unchanged file", c.Kind, c.Name, c.Action)
		}
	}
	if p.Refused != "" || !strings.HasPrefix(p.String(), "untouched: ") {
		t.Errorf("plan of an unchanged file:\n%s", p)
	}
}
