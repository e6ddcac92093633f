package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// TestTunnelOptions: the words after lb_kind / lvs_method, read as
// keepalived 2.2.7's svr_forwarding_handler reads them (checked against
// `keepalived -t` and its -d dump: tests/testdata/keepalived/*tun*.conf).
func TestTunnelOptions(t *testing.T) {
	gue := func(port uint16, csum string) Tunnel { return Tunnel{Type: lvs.TunnelGUE, Port: port, Csum: csum} }
	tests := []struct {
		line   string // after "lvs_method" in a real_server
		method string
		tunnel Tunnel
		sev    Severity // of the one diagnostic on the line, if want != ""
		want   string
	}{
		{"TUN", MethodTUN, DefaultTunnel, 0, ""},
		{"TUN type ipip", MethodTUN, DefaultTunnel, 0, ""},
		{"TUN type ipip nocsum", MethodTUN, DefaultTunnel, 0, ""},
		{"TUN type gue port 6080", MethodTUN, gue(6080, lvs.TunnelNoCsum), 0, ""},
		{"TUN type gue port 6080 nocsum", MethodTUN, gue(6080, lvs.TunnelNoCsum), 0, ""},
		{"TUN type gue port 6080 csum", MethodTUN, gue(6080, lvs.TunnelCsum), 0, ""},
		{"TUN type gue port 65535 remcsum", MethodTUN, gue(65535, lvs.TunnelRemCsum), 0, ""},
		{"TUN port 1 remcsum type gue", MethodTUN, gue(1, lvs.TunnelRemCsum), 0, ""},
		{"TUN type gre type gue port 5 port 6 csum nocsum", MethodTUN, gue(6, lvs.TunnelNoCsum), 0, ""},
		{"TUN type gre", MethodTUN, Tunnel{Type: lvs.TunnelGRE, Csum: lvs.TunnelNoCsum}, 0, ""},
		{"TUN type gre csum", MethodTUN, Tunnel{Type: lvs.TunnelGRE, Csum: lvs.TunnelCsum}, 0, ""},
		// keepalived reads (and keeps) the options after any method.
		{"DR type gue port 7000", MethodDR, gue(7000, lvs.TunnelNoCsum), 0, ""},
		{"NAT type gre csum", MethodNAT, Tunnel{Type: lvs.TunnelGRE, Csum: lvs.TunnelCsum}, 0, ""},

		// keepalived reports each of these, sets the method and keeps
		// the previous tunnel (here the virtual server's, the default).
		{"TUN type", MethodTUN, DefaultTunnel, Error, "missing tunnel type"},
		{"TUN type vxlan", MethodTUN, DefaultTunnel, Error, `unknown tunnel type "vxlan"`},
		{"TUN type GUE port 5", MethodTUN, DefaultTunnel, Error, `unknown tunnel type "GUE"`},
		{"TUN type gue port", MethodTUN, DefaultTunnel, Error, "missing gue tunnel port"},
		{"TUN type gue port 0", MethodTUN, DefaultTunnel, Error, `invalid gue tunnel port "0"`},
		{"TUN type gue port 65536", MethodTUN, DefaultTunnel, Error, `invalid gue tunnel port "65536"`},
		{"TUN type gue port http", MethodTUN, DefaultTunnel, Error, `invalid gue tunnel port "http"`},
		{"TUN type gue port 5 fast", MethodTUN, DefaultTunnel, Error, `invalid tunnel option "fast"`},
		{"TUN type gue", MethodTUN, DefaultTunnel, Error, "a gue tunnel needs a port"},
		{"TUN port 6080", MethodTUN, DefaultTunnel, Error, "only a gue tunnel has a port, not ipip"},
		{"TUN type gre port 6080", MethodTUN, DefaultTunnel, Error, "only a gue tunnel has a port, not gre"},
		{"TUN csum", MethodTUN, DefaultTunnel, Error, "an ipip tunnel has no checksum option: csum"},
		{"TUN type ipip remcsum", MethodTUN, DefaultTunnel, Error, "an ipip tunnel has no checksum option: remcsum"},
		{"TUN type gre remcsum", MethodTUN, DefaultTunnel, Error, "a gre tunnel has no remote checksum option"},
		// NAT and DR use no tunnel: the same report, a warning.
		{"DR type vxlan", MethodDR, DefaultTunnel, Warning, `unknown tunnel type "vxlan"`},
		{"NAT csum", MethodNAT, DefaultTunnel, Warning, "an ipip tunnel has no checksum option"},
		{"DR // direct", MethodDR, DefaultTunnel, Warning, `invalid tunnel option "//"`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			conf := "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 10.0.0.2 80 {\n  lvs_method " + tt.line + "\n }\n}\n"
			cfg, diags, _ := Parse("t.conf", []byte(conf))
			var onLine []Diagnostic
			for _, d := range diags {
				if d.Line == 6 {
					onLine = append(onLine, d)
				}
			}
			switch {
			case tt.want == "" && len(onLine) > 0:
				t.Errorf("unexpected diagnostics:\n%s", dumpDiags(diags))
			case tt.want != "":
				if len(onLine) != 1 || onLine[0].Severity != tt.sev || onLine[0].Keyword != "lvs_method" ||
					!strings.Contains(onLine[0].Message, tt.want) || onLine[0].File != "t.conf" {
					t.Errorf("want one %s at t.conf:6 lvs_method containing %q, got:\n%s", tt.sev, tt.want, dumpDiags(diags))
				}
			}
			rs := cfg.VirtualServers[0].RealServers[0]
			if rs.Method != tt.method || rs.Tunnel != tt.tunnel {
				t.Errorf("real server: %s %+v, want %s %+v", rs.Method, rs.Tunnel, tt.method, tt.tunnel)
			}
		})
	}
}

// TestTunnelInheritance: keepalived 2.2.7 gives a real or sorry server the
// virtual server's method and tunnel as they are when its block starts
// (alloc_rs, alloc_ssvr), and one written before any lb_kind the final
// ones (validate_check_config); a later lb_kind starts from the defaults,
// not from the previous line's options.
func TestTunnelInheritance(t *testing.T) {
	conf := `virtual_server 10.0.0.1 80 {
 lb_algo rr
 protocol TCP
 real_server 10.0.0.2 80 {
 }
 sorry_server 10.0.0.9 80
 lb_kind TUN type gue port 5555 csum
 real_server 10.0.0.3 80 {
 }
 real_server 10.0.0.4 80 {
  lvs_method TUN type gre
 }
 real_server 10.0.0.5 80 {
  lvs_method TUN
 }
 real_server 2001:db8::6 80 {
  lvs_method TUN type gue port 6666
 }
 lb_kind TUN type gre csum
 real_server 10.0.0.7 80 {
 }
 lb_kind DR
}
virtual_server 10.0.0.1 81 {
 lb_algo rr
 protocol TCP
 lb_kind TUN type gue port 7777
 sorry_server 10.0.0.9 81
 sorry_server_lvs_method TUN type gre csum
 real_server 10.0.0.2 81 {
 }
}
`
	cfg, diags, err := Parse("t.conf", []byte(conf))
	if err != nil {
		t.Fatalf("%v\n%s", err, dumpDiags(diags))
	}
	str := func(m string, tn Tunnel) string { return fmt.Sprintf("%s %s/%d/%s", m, tn.Type, tn.Port, tn.Csum) }
	vs := cfg.VirtualServers[0]
	got := []string{str(vs.Method, vs.Tunnel), str(vs.SorryServer.Method, vs.SorryServer.Tunnel)}
	for _, rs := range vs.RealServers {
		got = append(got, rs.Addr.String()+" "+str(rs.Method, rs.Tunnel))
	}
	vs2 := cfg.VirtualServers[1]
	got = append(got, str(vs2.SorryServer.Method, vs2.SorryServer.Tunnel), "10.0.0.2 "+str(vs2.RealServers[0].Method, vs2.RealServers[0].Tunnel))
	want := []string{
		"DR ipip/0/nocsum", // the last lb_kind, with its own (default) tunnel
		"DR ipip/0/nocsum", // written before any lb_kind: the final one
		"10.0.0.2 DR ipip/0/nocsum",
		"10.0.0.3 TUN gue/5555/csum",
		"10.0.0.4 TUN gre/0/nocsum",
		"10.0.0.5 TUN ipip/0/nocsum",
		"2001:db8::6 TUN gue/6666/nocsum", // TUN may mix families
		"10.0.0.7 TUN gre/0/csum",
		"TUN gre/0/csum",
		"10.0.0.2 TUN gue/7777/nocsum",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTunnelErrorKeepsPrevious: on a bad option keepalived keeps the
// server's previous tunnel (for a real server, the virtual server's as it
// was when the block started).
func TestTunnelErrorKeepsPrevious(t *testing.T) {
	conf := "virtual_server 10.0.0.1 80 {\n lb_algo rr\n protocol TCP\n lb_kind TUN type gre csum\n real_server 10.0.0.3 80 {\n  lvs_method TUN type gue\n }\n lb_kind TUN type gue port 1 vxlan\n}\n"
	cfg, diags, err := Parse("t.conf", []byte(conf))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{"t.conf:6: lvs_method: a gue tunnel needs a port", `t.conf:8: lb_kind: invalid tunnel option "vxlan"`} {
		if _, ok := findDiag(diags, Error, w); !ok {
			t.Errorf("no error %q in\n%s", w, dumpDiags(diags))
		}
	}
	vs := cfg.VirtualServers[0]
	want := Tunnel{Type: lvs.TunnelGRE, Csum: lvs.TunnelCsum}
	if vs.Tunnel != want || vs.RealServers[0].Tunnel != want || vs.RealServers[0].Method != MethodTUN {
		t.Errorf("vs %+v, rs %s %+v; want both %+v", vs.Tunnel, vs.RealServers[0].Method, vs.RealServers[0].Tunnel, want)
	}
}

// TestSorryMethodWithoutSorryServer: keepalived reports
// sorry_server_lvs_method before (or without) sorry_server and ignores it.
func TestSorryMethodWithoutSorryServer(t *testing.T) {
	conf := "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n sorry_server_lvs_method TUN type bogus\n sorry_server 10.0.0.9 80\n real_server 10.0.0.3 80 {\n }\n}\n"
	cfg, diags, err := Parse("t.conf", []byte(conf))
	if err != nil {
		t.Fatalf("%v\n%s", err, dumpDiags(diags))
	}
	if _, ok := findDiag(diags, Warning, "t.conf:5: sorry_server_lvs_method: used before or without sorry_server"); !ok {
		t.Errorf("no warning in\n%s", dumpDiags(diags))
	}
	if ss := cfg.VirtualServers[0].SorryServer; ss.Method != MethodDR || ss.Tunnel != DefaultTunnel {
		t.Errorf("sorry server %s %+v, want DR with the default tunnel", ss.Method, ss.Tunnel)
	}
}
