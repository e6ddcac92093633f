package config

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFiles creates files (name → content) in a fresh directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// findDiag returns the first diagnostic with the severity whose String()
// contains all of parts.
func findDiag(diags []Diagnostic, sev Severity, parts ...string) (Diagnostic, bool) {
next:
	for _, d := range diags {
		if d.Severity != sev {
			continue
		}
		s := d.String()
		for _, p := range parts {
			if !strings.Contains(s, p) {
				continue next
			}
		}
		return d, true
	}
	return Diagnostic{}, false
}

func TestSeed(t *testing.T) {
	tests := []struct {
		file         string
		wantState    string
		wantPriority int
	}{
		{"../../examples/seed-master.conf", StateMaster, 100},
		{"../../examples/seed-backup.conf", StateBackup, 90},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			cfg, diags, err := Load(tt.file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(cfg.Instances) != 1 || len(cfg.VirtualServers) != 1 {
				t.Fatalf("got %d instances, %d virtual servers; want 1, 1", len(cfg.Instances), len(cfg.VirtualServers))
			}
			in := cfg.Instances[0]
			if in.Name != "VI_1" || in.VRID != 51 || in.Priority != tt.wantPriority || in.AdvertInt != time.Second ||
				in.ConfiguredState != tt.wantState || in.Interface != "eth0" || in.Version != 2 {
				t.Errorf("instance = %s vrid %d prio %d advert %s state %s if %s v%d", in.Name, in.VRID, in.Priority,
					in.AdvertInt, in.ConfiguredState, in.Interface, in.Version)
			}
			// vrrp_strict: PASS auth is parsed but ignored, with a warning.
			if in.IgnoredAuthType != AuthPass || in.IgnoredAuthPass != "123456" || in.AuthType != AuthNone || !in.StrictMode {
				t.Errorf("auth: type %q pass %q ignored %q/%q strict %v", in.AuthType, in.AuthPass, in.IgnoredAuthType, in.IgnoredAuthPass, in.StrictMode)
			}
			for _, line := range []string{":39: nb_get_retry:", ":50: nb_get_retry:"} {
				if _, ok := findDiag(diags, Warning, line, "unknown keyword in TCP_CHECK"); !ok {
					t.Errorf("no warning %q (nb_get_retry is not a TCP_CHECK keyword) in %v", line, diags)
				}
			}
			if _, ok := findDiag(diags, Warning, ":18: authentication:", "vrrp_strict"); !ok {
				t.Errorf("no strict authentication warning at line 18 in %v", diags)
			}
			if len(in.VIPs) != 1 || in.VIPs[0].Prefix != netip.MustParsePrefix("192.168.12.211/32") {
				t.Errorf("VIPs = %v", in.VIPs)
			}
			if !cfg.Global.VRRPStrict || !cfg.Global.VRRPSkipCheckAdvAddr || cfg.Global.RouterID != "LVS_DEVEL" {
				t.Errorf("global = %+v", cfg.Global)
			}
			vs := cfg.VirtualServers[0]
			if vs.Addr != netip.MustParseAddr("192.168.12.211") || vs.Port != 80 || vs.DelayLoop != time.Second ||
				vs.Scheduler != "wrr" || vs.Method != MethodDR || vs.Protocol != "TCP" || vs.PersistenceTimeout != 50*time.Second {
				t.Errorf("virtual server = %s delay %s %s %s %s persist %s", vs.Key(), vs.DelayLoop, vs.Scheduler, vs.Method, vs.Protocol, vs.PersistenceTimeout)
			}
			if len(vs.RealServers) != 2 {
				t.Fatalf("%d real servers, want 2", len(vs.RealServers))
			}
			for i, want := range []string{"192.168.28.103", "192.168.28.104"} {
				rs := vs.RealServers[i]
				if rs.Addr != netip.MustParseAddr(want) || rs.Port != 80 || rs.Weight != 1 || len(rs.Checkers) != 1 {
					t.Errorf("real server %d = %s:%d weight %d, %d checkers", i, rs.Addr, rs.Port, rs.Weight, len(rs.Checkers))
					continue
				}
				c := rs.Checkers[0]
				// nb_get_retry is not a TCP_CHECK keyword: keepalived reports
				// it unknown and retry keeps its default 1 (issue 11).
				if c.Kind != TCPCheck || c.ConnectTimeout != 3*time.Second || c.Retry != 1 ||
					c.DelayBeforeRetry != 3*time.Second || c.ConnectPort != 80 || c.ConnectIP != rs.Addr || c.DelayLoop != time.Second {
					t.Errorf("checker %d = %s timeout %s retry %d dbr %s port %d ip %s", i, c.Kind, c.ConnectTimeout, c.Retry, c.DelayBeforeRetry, c.ConnectPort, c.ConnectIP)
				}
			}
			for _, d := range diags {
				if d.Severity == Error {
					t.Errorf("unexpected error %s", d)
				}
			}
		})
	}
}

// TestDiagnostics checks each error and warning case against keepalived's
// rules: the severity, the file:line and the keyword.
func TestDiagnostics(t *testing.T) {
	const vi = "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n"
	tests := []struct {
		name string
		conf string
		sev  Severity
		want []string // substrings of Diagnostic.String()
	}{
		{"misspelled keyword", "global_defs {\n  router_id x\n  vrrp_strictt\n}\n", Warning, []string{"main.conf:3: vrrp_strictt: unknown keyword"}},
		{"vrid 300", "vrrp_instance V {\n interface eth0\n virtual_router_id 300\n}\n", Error, []string{"main.conf:3: virtual_router_id:", "1..255"}},
		{"vrid missing", "vrrp_instance V {\n interface eth0\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n", Error, []string{"main.conf:1: virtual_router_id:", "no virtual_router_id"}},
		{"vrid zero", "vrrp_instance V {\n virtual_router_id 0\n}\n", Error, []string{"main.conf:2: virtual_router_id:"}},
		{"unterminated block", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n", Error, []string{"main.conf:1: vrrp_instance: block is never closed"}},
		{"stray brace", vi + "}\n}\n", Error, []string{"main.conf:8: }: stray"}},
		{"brace without keyword", "{\n}\n", Error, []string{"main.conf:1: {:"}},
		{"priority 0", vi + " priority 0\n}\n", Error, []string{"main.conf:7: priority:"}},
		{"priority 256", vi + " priority 256\n}\n", Error, []string{"main.conf:7: priority:"}},
		{"duplicate vrid", vi + "}\n" + strings.Replace(vi, "V {", "W {", 1) + "}\n", Error, []string{"main.conf:8: virtual_router_id:", "also used by instance \"V\""}},
		{"v3 advert_int too long", vi + " version 3\n advert_int 41\n}\n", Error, []string{"main.conf:8: advert_int:", "0.01..40.95"}},
		{"v3 advert_int too short", vi + " version 3\n advert_int 0.001\n}\n", Error, []string{"main.conf:8: advert_int:"}},
		{"v2 fractional advert_int", vi + " advert_int 1.6\n}\n", Warning, []string{"main.conf:7: advert_int:", "rounded to 2s"}},
		{"bad VIP", "vrrp_instance V {\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.300\n }\n}\n", Error, []string{"main.conf:4: 10.0.0.300: not an IP address"}},
		{"bad unicast_src_ip", vi + " unicast_src_ip 1.2.3\n}\n", Error, []string{"main.conf:7: unicast_src_ip:"}},
		{"unicast peer other family", vi + " unicast_peer {\n  2001:db8::1\n }\n}\n", Error, []string{"main.conf:7: unicast_peer:", "not IPv4"}},
		{"script weight", "vrrp_script s {\n script /bin/true\n weight 300\n}\n", Error, []string{"main.conf:3: weight:", "-253..253"}},
		{"track weight", vi + " track_interface {\n  eth1 weight -254\n }\n}\n", Error, []string{"main.conf:8: eth1:"}},
		{"lb_algo", "virtual_server 10.0.0.1 80 {\n lb_algo fastest\n real_server 10.0.0.2 80 {\n }\n}\n", Error, []string{"main.conf:2: lb_algo:", "\"fastest\""}},
		{"lb_kind", "virtual_server 10.0.0.1 80 {\n lb_kind BRIDGE\n}\n", Error, []string{"main.conf:2: lb_kind:"}},
		// keepalived accepts port 0 (all ports) and makes a non-persistent
		// service persistent, with a message.
		{"vs port 0", "virtual_server 10.0.0.1 0 {\n protocol TCP\n real_server 10.0.0.2 0 {\n }\n}\n", Warning, []string{"main.conf:1: virtual_server:", "persistence_timeout set to 360"}},
		{"rs port 70000", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 70000 {\n }\n}\n", Error, []string{"main.conf:2: real_server: port"}},
		{"connect_port 0", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   connect_port 0\n  }\n }\n}\n", Error, []string{"main.conf:4: connect_port:"}},
		{"weight too big", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  weight 70000\n }\n}\n", Error, []string{"main.conf:3: weight:"}},
		{"auth_pass truncated", vi + " authentication {\n  auth_type PASS\n  auth_pass 0123456789\n }\n}\n", Warning, []string{"main.conf:9: auth_pass:", "\"01234567\""}},
		{"VIP in two instances", vi + "}\n" + strings.Replace(strings.Replace(vi, "V {", "W {", 1), "router_id 1", "router_id 2", 1) + "}\n", Warning, []string{"main.conf:12: 10.0.0.1: VIP is also in instance \"V\""}},
		{"strict preempt_delay", "global_defs {\n vrrp_strict\n}\n" + vi + " preempt_delay 10\n}\n", Warning, []string{"main.conf:10: preempt_delay:", "vrrp_strict"}},
		{"unquoted string", "global_defs {\n router_id \"abc\n}\n", Error, []string{"main.conf:2: router_id: unterminated quoted string"}},
		{"bad timer", "virtual_server 10.0.0.1 80 {\n delay_loop 1.x\n}\n", Error, []string{"main.conf:2: delay_loop:"}},
		{"http without url", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n  }\n }\n}\n", Error, []string{"main.conf:3: HTTP_GET: needs at least one url"}},
		{"bad status code", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    status_code 2000\n   }\n  }\n }\n}\n", Error, []string{"main.conf:6: status_code:"}},
		{"unknown group", "virtual_server group G {\n}\n", Error, []string{"main.conf:1: virtual_server: no virtual_server_group"}},
		{"nb_get_retry", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   nb_get_retry 2\n  }\n }\n}\n", Warning, []string{"main.conf:4: nb_get_retry:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"main.conf": tt.conf})
			_, diags, err := Load(filepath.Join(dir, "main.conf"))
			d, ok := findDiag(diags, tt.sev, tt.want...)
			if !ok {
				t.Fatalf("no %s containing %q in:\n%s", tt.sev, tt.want, dumpDiags(diags))
			}
			if !strings.HasPrefix(d.String(), filepath.Join(dir, "main.conf")+":") {
				t.Errorf("%q does not start with the file name", d)
			}
			if tt.sev == Error && (err == nil || !errors.Is(err, ErrInvalid)) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			if tt.sev == Warning && err != nil {
				t.Errorf("err = %v, want nil for a warning", err)
			}
		})
	}
}

func dumpDiags(diags []Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString(d.Severity.String() + " " + d.String() + "\n")
	}
	return b.String()
}

func TestIncludes(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		sev     Severity
		want    []string
		wantErr bool
	}{
		{"cycle", map[string]string{
			"main.conf":  "include a.conf\n",
			"a.conf":     "include sub/b.conf\n",
			"sub/b.conf": "global_defs {\n}\ninclude ../a.conf\n",
		}, Error, []string{"b.conf:3: include: include cycle:", "a.conf -> ", "b.conf -> "}, true},
		{"self", map[string]string{"main.conf": "include main.conf\n"}, Error, []string{"main.conf:1: include: include cycle"}, true},
		{"no match", map[string]string{"main.conf": "include conf.d/*.conf\n"}, Warning, []string{"main.conf:1: include:", "conf.d/*.conf", "matches no file"}, false},
		{"includea no match", map[string]string{"main.conf": "includea nothing.conf\n"}, Error, []string{"main.conf:1: includea:", "matches no file"}, true},
		{"error in included file", map[string]string{
			"main.conf":      "include conf.d/*.conf\n",
			"conf.d/10.conf": "vrrp_instance X {\n virtual_router_id 300\n}\n",
		}, Error, []string{"conf.d/10.conf:2: virtual_router_id:"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			_, diags, err := Load(filepath.Join(dir, "main.conf"))
			if _, ok := findDiag(diags, tt.sev, tt.want...); !ok {
				t.Errorf("no %s containing %q in:\n%s", tt.sev, tt.want, dumpDiags(diags))
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestIncludeGlobOrderAndPaths(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.conf":          "include conf.d/*.conf\ninclude other/{x,y}.conf\n",
		"conf.d/20.conf":     "vrrp_script b {\n script /bin/b\n}\n",
		"conf.d/10.conf":     "vrrp_script a {\n script \"${_PWD}/a.sh\"\n}\n",
		"conf.d/sub/00.conf": "vrrp_script never {\n script x\n}\n",
		"other/y.conf":       "vrrp_script y {\n script y\n}\n",
		"other/x.conf":       "vrrp_script x {\n script x\n}\n",
	})
	cfg, diags, err := Load(filepath.Join(dir, "main.conf"))
	if err != nil {
		t.Fatalf("Load: %v\n%s", err, dumpDiags(diags))
	}
	var names []string
	for _, s := range cfg.Scripts {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "a b x y" {
		t.Errorf("scripts in order %q, want \"a b x y\"", got)
	}
	if got, want := cfg.Script("a").Script.Command, filepath.Join(dir, "conf.d")+"/a.sh"; got != want {
		t.Errorf("${_PWD} gave %q, want %q", got, want)
	}
	if len(cfg.Files) != 5 {
		t.Errorf("Files = %v, want 5", cfg.Files)
	}
}

// TestGarbage feeds 10 MB of garbage: it must end quickly with a clear
// error, never a panic or a hang.
func TestGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const size = 10 << 20
	binary := make([]byte, size)
	for i := range binary {
		binary[i] = byte(rng.IntN(256))
	}
	printable := make([]byte, size)
	const alphabet = "abcdefghij klmnop_qrstuvwxyz0123456789 {}\"'#!$@~\n\t"
	for i := range printable {
		printable[i] = alphabet[rng.IntN(len(alphabet))]
	}
	braces := []byte(strings.Repeat("a {\n", size/4))
	closes := []byte(strings.Repeat("}\n", size/2))
	longLine := []byte(strings.Repeat("x", size))
	tests := []struct {
		name string
		src  []byte
		want string
	}{
		{"random bytes", binary, "NUL byte"},
		{"random text", printable, ""},
		{"deep nesting", braces, "nested more than"},
		{"stray braces", closes, "stray"},
		{"one long line", longLine, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, diags, err := Parse("garbage.conf", tt.src)
			if err == nil {
				t.Fatal("garbage accepted")
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("took %s", el)
			}
			if len(diags) > maxDiagnostics+1 {
				t.Errorf("%d diagnostics, want at most %d", len(diags), maxDiagnostics+1)
			}
			if _, ok := findDiag(diags, Error, "garbage.conf:", tt.want); !ok {
				t.Errorf("no error containing %q in %d diagnostics, first %v", tt.want, len(diags), diags[:min(3, len(diags))])
			}
		})
	}
}

func TestLexer(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // one entry per emitted line, tokens joined with |
	}{
		{"comments", "a b # c\n! whole\nd ! e\n", []string{"a|b", "d"}},
		{"quotes", `a "b c" 'd "e"' f"g h"i` + "\n", []string{`a|b c|d "e"|fg hi`}},
		{"comment char in quotes", `notify "/bin/x.sh #1 !2"` + "\n", []string{"notify|/bin/x.sh #1 !2"}},
		{"escapes", `a "t\tn\x41\101\"q"` + "\n", []string{"a|t\tnAA\"q"}},
		{"braces", "a{b}\nc {\n}\n", []string{"a|{|b|}", "c|{", "}"}},
		{"definition", "$X=10.0.0\n$Y=${X}.1\nvip $Y\n$X=9\nvip ${Y}/24\n", []string{"vip|10.0.0.1", "vip|9.1/24"}},
		{"undefined kept", "script \"/bin/echo ${NOPE} $NOPE\"\n", []string{"script|/bin/echo ${NOPE} $NOPE"}},
		{"predefined", "a ${_HASH}${_BANG}\n", []string{"a|#!"}},
		{"multiline definition", "$B= \\\nx 1 \\\ny 2\n$B\n", []string{"x|1", "y|2"}},
		{"conditional", "@host1 a 1\n@host2 b 2\n@^host1 c 3\n@^host2 d 4\n", []string{"a|1", "d|4"}},
		{"conditional via definition", "$IF=@host1\n$IF priority 240\n", []string{"priority|240"}},
		{"seq", "~SEQ(N, 0, 2, 4) ip 10.0.${N}.1\n", []string{"ip|10.0.0.1", "ip|10.0.2.1", "ip|10.0.4.1"}},
		{"seqx", "~SEQx(N, 0x9, 0xb) a ${N}\n", []string{"a|9", "a|a", "a|b"}},
		{"lst", "~LST({A, B}, {1,2},{3,4}) x ${A}.${B}\n", []string{"x|1.2", "x|3.4"}},
		{"crlf", "a b\r\nc\r\n", []string{"a|b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			d := &diagSink{}
			lx := newLexer(Options{ConfigID: "host1"}, d, func(toks []token) {
				var s []string
				for _, tk := range toks {
					s = append(s, tk.text)
				}
				got = append(got, strings.Join(s, "|"))
			})
			lx.file("t.conf", []byte(tt.src), Pos{})
			if len(d.list) > 0 {
				t.Errorf("diagnostics: %v", d.list)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestBracesOnOwnLine(t *testing.T) {
	src := "vrrp_instance V\n{\n  interface eth0\n  virtual_router_id 7\n  virtual_ipaddress\n  {\n    10.1.1.1/24 dev eth1 label eth1:1\n  }\n  authentication { auth_type PASS\n auth_pass x }\n}\n"
	cfg, diags, err := Parse("b.conf", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, dumpDiags(diags))
	}
	in := cfg.Instance("V")
	if in == nil || in.VRID != 7 || len(in.VIPs) != 1 || in.VIPs[0].Dev != "eth1" || in.VIPs[0].Label != "eth1:1" ||
		in.VIPs[0].Prefix.Bits() != 24 || in.AuthType != AuthPass || in.AuthPass != "x" {
		t.Errorf("instance = %+v", in)
	}
}

func TestDefaults(t *testing.T) {
	src := `
vrrp_instance V {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress {
    10.0.0.1
  }
}
vrrp_instance V6 {
  interface eth0
  virtual_router_id 1
  advert_int 0.5
  virtual_ipaddress {
    fe80::1
  }
}
virtual_server 10.0.0.1 80 {
  real_server 10.0.0.2 8080 {
    HTTP_GET {
      url {
        path /
      }
    }
    DNS_CHECK {
    }
    MISC_CHECK {
      misc_path /bin/true
    }
  }
}
`
	cfg, diags, err := Parse("d.conf", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, dumpDiags(diags))
	}
	in := cfg.Instance("V")
	if in.Priority != 100 || in.AdvertInt != time.Second || in.Version != 2 || !in.Preempt || !in.Accept ||
		in.GarpMasterDelay != 5*time.Second || in.GarpMasterRepeat != 5 || in.DownTimerAdverts != 3 ||
		in.InitialState != StateBackup || in.Family() != 4 {
		t.Errorf("v4 defaults: %+v", in)
	}
	in6 := cfg.Instance("V6")
	if in6.Version != 3 || in6.Family() != 6 || in6.AdvertInt != 500*time.Millisecond {
		t.Errorf("v6: version %d family %d advert %s", in6.Version, in6.Family(), in6.AdvertInt)
	}
	vs := cfg.VirtualServers[0]
	// No protocol: keepalived 2.2.7 defaults an address service to UDP,
	// with a message.
	if vs.Scheduler != "wlc" || vs.Method != MethodNAT || vs.Protocol != "UDP" || vs.DelayLoop != 60*time.Second || vs.Quorum != 1 {
		t.Errorf("vs defaults: %s %s %s %s %d", vs.Scheduler, vs.Method, vs.Protocol, vs.DelayLoop, vs.Quorum)
	}
	checks := vs.RealServers[0].Checkers
	want := []struct {
		kind  CheckerKind
		retry int
		dbr   time.Duration
	}{{HTTPGet, 1, 3 * time.Second}, {DNSCheck, 3, 60 * time.Second}, {MiscCheck, 0, time.Second}}
	for i, w := range want {
		c := checks[i]
		if c.Kind != w.kind || c.Retry != w.retry || c.DelayBeforeRetry != w.dbr || c.ConnectTimeout != 5*time.Second ||
			c.ConnectPort != 8080 || c.Warmup != 60*time.Second {
			t.Errorf("checker %d: %s retry %d dbr %s timeout %s port %d warmup %s", i, c.Kind, c.Retry, c.DelayBeforeRetry, c.ConnectTimeout, c.ConnectPort, c.Warmup)
		}
	}
	if u := checks[0].URLs[0]; !u.StatusOK(204) || u.StatusOK(301) {
		t.Errorf("default status codes %v", u.StatusCodes)
	}
	if checks[1].DNSType != "SOA" || checks[1].DNSName != "." || checks[2].MiscTimeout != 60*time.Second {
		t.Errorf("dns %s %s misc timeout %s", checks[1].DNSType, checks[1].DNSName, checks[2].MiscTimeout)
	}
}

func TestScriptArgv(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string
	}{
		{"/bin/x.sh", []string{"/bin/x.sh"}},
		{"/bin/x.sh a  b", []string{"/bin/x.sh", "a", "b"}},
		{"/bin/x.sh 'a b' c", []string{"/bin/x.sh", "a b", "c"}},
		{"", nil},
	}
	for _, tt := range tests {
		got := ScriptCmd{Command: tt.cmd}.Argv()
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("Argv(%q) = %q, want %q", tt.cmd, got, tt.want)
		}
	}
}

func TestParseTimer(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{"0.01", 10 * time.Millisecond, true},
		{"2.71828", 2718280 * time.Microsecond, true},
		{".5", 500 * time.Millisecond, true},
		{"1.0000001", time.Second, true},
		{"-1", 0, false},
		{"1e3", 0, false},
		{"", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := parseTimer(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseTimer(%q) = %s, %v; want %s ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestVirtualServerGroupRanges(t *testing.T) {
	tests := []struct {
		in          string
		first, last string
		ok          bool
	}{
		{"192.168.200.1-10", "192.168.200.1", "192.168.200.10", true},
		{"192.168.200.250-192.168.201.10", "192.168.200.250", "192.168.201.10", true},
		{"192.168.202.8/29", "192.168.202.8", "192.168.202.15", true},
		{"2001:db8::1-ff", "2001:db8::1", "2001:db8::ff", true},
		{"10.0.0.5", "10.0.0.5", "10.0.0.5", true},
		{"10.0.0.5-1", "", "", false},
		{"10.0.0.5-x", "", "", false},
	}
	for _, tt := range tests {
		f, l, ok := parseRange(tt.in)
		if ok != tt.ok || (ok && (f.String() != tt.first || l.String() != tt.last)) {
			t.Errorf("parseRange(%q) = %s, %s, %v", tt.in, f, l, ok)
		}
	}
}

// TestStrictUnicastKept: keepalived 2.2.7 runs a vrrp_strict instance with
// unicast peers as unicast, without a message; so does xdpvip.
func TestStrictUnicastKept(t *testing.T) {
	cfg, diags, err := Parse("main.conf", []byte("global_defs {\n vrrp_strict\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 255\n"+
		" unicast_peer {\n  10.0.0.9\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n"))
	if err != nil || len(diags) != 0 {
		t.Fatalf("err %v, diagnostics %v", err, diags)
	}
	if in := cfg.Instances[0]; len(in.UnicastPeers) != 1 || !in.StrictMode {
		t.Errorf("peers %v strict %v, want the peer kept", in.UnicastPeers, in.StrictMode)
	}
}
