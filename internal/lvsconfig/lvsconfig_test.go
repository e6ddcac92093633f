package lvsconfig

import (
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/lvs/lvstest"
)

// TestSeedMapping: the seed's virtual server reaches the lvs model and the
// health monitors with keepalived's meaning.
func TestSeedMapping(t *testing.T) {
	cfg, _, err := config.Load("../../examples/seed-master.conf")
	if err != nil {
		t.Fatal(err)
	}
	vss, err := VirtualServers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(vss) != 1 {
		t.Fatalf("%d virtual servers, want 1", len(vss))
	}
	vs := vss[0]
	want := lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.MustParseAddr("192.168.12.211"), Port: 80}
	if vs.Key != want || vs.Scheduler != "wrr" || vs.Method != "DR" || vs.PersistenceTimeout != 50*time.Second {
		t.Errorf("virtual server %+v", vs)
	}
	if len(vs.RealServers) != 2 || vs.RealServers[0].Weight != 1 || vs.RealServers[1].Addr != netip.MustParseAddr("192.168.28.104") {
		t.Errorf("real servers %+v", vs.RealServers)
	}
	mons, err := Monitors(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(mons) != 2 {
		t.Fatalf("%d monitors, want 2", len(mons))
	}
	m := mons[0]
	if m.VS != want || m.RS != (lvs.RealServerKey{Addr: netip.MustParseAddr("192.168.28.103"), Port: 80}) {
		t.Errorf("monitor keys %v %v", m.VS, m.RS)
	}
	if len(m.Config.Checkers) != 1 {
		t.Fatalf("%d checkers", len(m.Config.Checkers))
	}
	tm := m.Config.Checkers[0].Timing
	// The seed's nb_get_retry 3 is not a TCP_CHECK keyword in keepalived
	// (only HTTP_GET/SSL_GET know it): retry keeps its default of 1.
	if tm.DelayLoop != time.Second || tm.Retry != 1 || tm.DelayBeforeRetry != 3*time.Second || tm.ConnectTimeout != 3*time.Second {
		t.Errorf("TCP_CHECK timing %+v, want delay_loop 1s, retry 1, delay_before_retry 3s, connect_timeout 3s", tm)
	}
}

// TestMonitorKeys: one real server in two virtual servers with different
// checkers gets two monitors whose keys come from their own blocks, and a
// key changes only when that monitor's configuration does.
func TestMonitorKeys(t *testing.T) {
	conf := func(timeout string) string {
		return `virtual_server 192.0.2.1 80 {
    delay_loop 1
    real_server 192.0.2.10 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 192.0.2.2 80 {
    delay_loop 1
    real_server 192.0.2.10 80 {
        TCP_CHECK {
            connect_timeout ` + timeout + `
        }
    }
}
`
	}
	keysOf := func(src string) []string {
		t.Helper()
		cfg, _, err := config.Parse("k.conf", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		mons, err := Monitors(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, m := range mons {
			keys = append(keys, m.Key)
		}
		return keys
	}
	a, b := keysOf(conf("2")), keysOf(conf("3"))
	if len(a) != 2 || len(b) != 2 || a[0] == a[1] {
		t.Fatalf("keys %q", a)
	}
	if a[0] != b[0] {
		t.Error("the first virtual server's monitor key changed although only the second's checker did")
	}
	if a[1] == b[1] {
		t.Error("the second virtual server's monitor key did not change with its connect_timeout")
	}
}

// TestGroupCheckedOnce: a real server of a virtual_server_group is checked
// once, as keepalived does, and the result applies to every address of the
// group.
func TestGroupCheckedOnce(t *testing.T) {
	cfg, _, err := config.Parse("group.conf", []byte(`
virtual_server_group WEB {
    192.0.2.100 80
    192.0.2.101 80
    192.0.2.102 80
    192.0.2.103 8080
}
virtual_server group WEB {
    delay_loop 3
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.21 80 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`))
	if err != nil {
		t.Fatal(err)
	}
	mons, err := Monitors(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(mons) != 1 {
		t.Fatalf("%d monitors for one real server of a 4-address group, want 1", len(mons))
	}
	if got := len(mons[0].Services()); got != 4 || mons[0].RS.Port != 80 {
		t.Errorf("the monitor covers %d services, real-server port %d; want 4 and 80", got, mons[0].RS.Port)
	}
}

// TestQuorumScripts: a quorum change runs the up or down script of the
// virtual servers the service belongs to, also through a group.
func TestQuorumScripts(t *testing.T) {
	src := `global_defs {
 enable_script_security
}
virtual_server_group G {
 10.0.0.2 80
 10.0.0.3 80
}
virtual_server 10.0.0.1 80 {
 lb_algo rr
 lb_kind DR
 protocol TCP
 quorum_up "/bin/up one"
 quorum_down "/bin/down one"
 real_server 10.0.1.1 80 {
 }
}
virtual_server group G {
 lb_algo rr
 lb_kind DR
 protocol TCP
 quorum_up "/bin/up group"
 real_server 10.0.1.1 80 {
 }
}
`
	cfg, diags, err := config.Parse("q.conf", []byte(src))
	if err != nil || len(diags) > 0 {
		t.Fatal(err, diags)
	}
	key := func(a string) lvs.ServiceKey {
		return lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.MustParseAddr(a), Port: 80}
	}
	lines := func(k lvs.ServiceKey, up bool) []string {
		var out []string
		for _, c := range QuorumScripts(cfg, k, up) {
			out = append(out, c.Line)
		}
		return out
	}
	for _, tc := range []struct {
		key  lvs.ServiceKey
		up   bool
		want []string
	}{
		{key("10.0.0.1"), true, []string{"/bin/up one"}},
		{key("10.0.0.1"), false, []string{"/bin/down one"}},
		{key("10.0.0.3"), true, []string{"/bin/up group"}},
		{key("10.0.0.3"), false, nil},
		{key("10.0.0.9"), true, nil},
	} {
		if got := lines(tc.key, tc.up); !slices.Equal(got, tc.want) {
			t.Errorf("%s up=%v: %q, want %q", tc.key, tc.up, got, tc.want)
		}
	}
}

// TestTunnelMapping: the tunnel options parsed for TUN servers reach the
// lvs model (and, through the Manager, the Dests the backends program);
// DR and NAT servers have none, even where keepalived read options.
func TestTunnelMapping(t *testing.T) {
	src := `virtual_server 10.0.0.1 80 {
 lb_algo rr
 protocol TCP
 lb_kind TUN type gue port 6080 csum
 sorry_server 10.0.0.9 80
 real_server 10.0.0.2 80 {
 }
 real_server 10.0.0.3 80 {
  lvs_method TUN type gre
 }
 real_server 2001:db8::4 80 {
  lvs_method TUN
 }
 real_server 10.0.0.5 80 {
  lvs_method DR type gue port 7
 }
}
`
	cfg, diags, err := config.Parse("t.conf", []byte(src))
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	vss, err := VirtualServers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gue := lvs.Tunnel{Type: "gue", Port: 6080, Csum: "csum"}
	vs := vss[0]
	if vs.Method != "TUN" || vs.Tunnel != gue || vs.Sorry.Method != "TUN" || vs.Sorry.Tunnel != gue {
		t.Errorf("virtual server %s %+v, sorry server %+v", vs.Method, vs.Tunnel, vs.Sorry)
	}
	want := []lvs.RealServer{
		{Addr: netip.MustParseAddr("10.0.0.2"), Method: "TUN", Tunnel: gue},
		{Addr: netip.MustParseAddr("10.0.0.3"), Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre", Csum: "nocsum"}},
		{Addr: netip.MustParseAddr("2001:db8::4"), Method: "TUN", Tunnel: lvs.Tunnel{Type: "ipip", Csum: "nocsum"}},
		{Addr: netip.MustParseAddr("10.0.0.5"), Method: "DR"},
	}
	for i, w := range want {
		r := vs.RealServers[i]
		if r.Addr != w.Addr || r.Method != w.Method || r.Tunnel != w.Tunnel {
			t.Errorf("real server %d: %s %s %+v, want %s %s %+v", i, r.Addr, r.Method, r.Tunnel, w.Addr, w.Method, w.Tunnel)
		}
	}
	// The Manager takes the model as is and hands the backend normalised
	// tunnels.
	b := &lvstest.Backend{}
	m := lvs.NewManager(b, lvs.ManagerOptions{})
	if err := m.Configure(vss); err != nil {
		t.Fatal(err)
	}
	last, _ := b.Last()
	got := map[string]lvs.Tunnel{}
	for _, d := range last[0].Dests {
		got[d.Addr.String()] = d.Tunnel
	}
	wantDests := map[string]lvs.Tunnel{"10.0.0.2": gue, "10.0.0.3": {Type: "gre"}, "2001:db8::4": {}, "10.0.0.5": {}}
	if !maps.Equal(got, wantDests) {
		t.Errorf("dests' tunnels %v, want %v", got, wantDests)
	}
}
