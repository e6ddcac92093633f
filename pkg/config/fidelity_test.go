package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestKeepalivedCorrections checks each correction xdpvip makes the way
// keepalived 2.2.7 does (its vrrp_complete_instance, validate_check_config
// and keyword handlers; each was found by the differential test in
// tests/keepalived_fidelity_test.go): the corrected value, and the
// diagnostic that says so.
func TestKeepalivedCorrections(t *testing.T) {
	inst := func(body string) string {
		return "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n" + body + " virtual_ipaddress {\n  10.0.0.1\n }\n}\n"
	}
	vs := func(head, body string) string {
		return "virtual_server 10.0.0.1 80 {\n" + head + " real_server 10.0.0.2 80 {\n" + body + " }\n}\n"
	}
	type check func(*Config) string
	in := func(f func(*VRRPInstance) string) check {
		return func(c *Config) string { return f(c.Instances[0]) }
	}
	tests := []struct {
		name string
		conf string
		sev  Severity // of the diagnostic wanted (when want != "")
		want string   // substring of a diagnostic; "" = no diagnostic needed
		ok   check    // "" when the model is right
	}{
		{"state MASTER without priority is the owner", inst(" state MASTER\n"), Warning, "",
			in(func(v *VRRPInstance) string {
				return wantInt("priority", v.Priority, 255) + wantStr("state", v.InitialState, StateMaster)
			})},
		{"state is case sensitive", inst(" state master\n priority 200\n"), Warning, "unknown state \"master\"",
			in(func(v *VRRPInstance) string { return wantStr("state", v.InitialState, StateBackup) })},
		{"auth_type is case sensitive", inst(" authentication {\n  auth_type pass\n  auth_pass x\n }\n"), Error, "\"pass\" is not PASS or AH", nil},
		{"strict: MASTER needs priority 255", "global_defs {\n vrrp_strict\n}\n" + inst(" state MASTER\n priority 100\n"), Warning, "must match being address owner",
			in(func(v *VRRPInstance) string {
				return wantStr("state", v.InitialState, StateBackup) + wantBool("lower_prio_no_advert", v.LowerPrioNoAdvert, true) +
					wantInt("garp_lower_prio_repeat", v.GarpLowerPrioRepeat, 0)
			})},
		{"strict: owner in BACKUP starts MASTER", "global_defs {\n vrrp_strict\n}\n" + inst(" state BACKUP\n priority 255\n"), Warning, "starting as MASTER",
			in(func(v *VRRPInstance) string { return wantStr("state", v.InitialState, StateMaster) })},
		{"strict resets down_timer_adverts", "global_defs {\n vrrp_strict\n}\n" + inst(" priority 255\n down_timer_adverts 5\n"), Warning, "down_timer_adverts: not allowed with vrrp_strict",
			in(func(v *VRRPInstance) string { return wantInt("down_timer_adverts", v.DownTimerAdverts, 3) })},
		{"AH with MASTER starts BACKUP", inst(" state MASTER\n priority 150\n authentication {\n  auth_type AH\n  auth_pass x\n }\n"), Warning, "incompatible with AH",
			in(func(v *VRRPInstance) string { return wantStr("state", v.InitialState, StateBackup) })},
		{"nopreempt cleared for MASTER", inst(" state MASTER\n priority 150\n nopreempt\n preempt_delay 5\n"), Warning, "nopreempt: does not work with initial state MASTER",
			in(func(v *VRRPInstance) string {
				return wantBool("preempt", v.Preempt, true) + wantDur("preempt_delay", v.PreemptDelay, 0)
			})},
		{"nopreempt cleared for the owner", inst(" priority 255\n nopreempt\n"), Warning, "incompatible with priority 255",
			in(func(v *VRRPInstance) string { return wantBool("preempt", v.Preempt, true) })},
		{"preempt_delay dropped with nopreempt", inst(" nopreempt\n preempt_delay 10\n"), Warning, "incompatible with nopreempt",
			in(func(v *VRRPInstance) string {
				return wantDur("preempt_delay", v.PreemptDelay, 0) + wantBool("preempt", v.Preempt, false)
			})},
		{"sync group starts MASTER only if all members are owners",
			"vrrp_sync_group G {\n group {\n  V\n  W\n }\n}\n" + inst(" state MASTER\n priority 200\n") + strings.Replace(strings.Replace(inst(" state BACKUP\n"), "V {", "W {", 1), "router_id 1", "router_id 2", 1),
			Warning, "starts as BACKUP", in(func(v *VRRPInstance) string { return wantStr("state", v.InitialState, StateBackup) })},
		{"empty sync group removed", "vrrp_sync_group G {\n group {\n  NOSUCH\n }\n}\n" + inst(""), Warning, "has no instance, removed",
			func(c *Config) string { return wantInt("sync groups", len(c.SyncGroups), 0) }},
		{"track_script of a later script is dropped", inst(" track_script {\n  later\n }\n") + "vrrp_script later {\n script /bin/true\n}\n", Warning, "defined further down",
			in(func(v *VRRPInstance) string { return wantInt("track_script", len(v.TrackScripts), 0) })},
		{"track_script duplicate and unknown option dropped, reverse inherited",
			"vrrp_script s {\n script /bin/true\n weight 5 reverse\n}\n" + inst(" track_script {\n  s\n  s weight 3\n }\n"), Warning, "script tracked twice",
			in(func(v *VRRPInstance) string {
				return wantInt("track_script", len(v.TrackScripts), 1) + wantBool("reverse", len(v.TrackScripts) == 1 && v.TrackScripts[0].Reverse, true)
			})},
		{"track_script with an option other than weight", "vrrp_script s {\n script /bin/true\n}\n" + inst(" track_script {\n  s noreverse\n }\n"), Warning, "entry ignored",
			in(func(v *VRRPInstance) string { return wantInt("track_script", len(v.TrackScripts), 0) })},
		{"own interface is not tracked", inst(" track_interface {\n  eth0 weight -20\n  eth1\n }\n"), Warning, "own interface",
			in(func(v *VRRPInstance) string { return wantInt("track_interface", len(v.TrackInterfaces), 1) })},
		{"garp_master_repeat 0 means 1", inst(" garp_master_repeat 0\n"), Warning, "set to 1",
			in(func(v *VRRPInstance) string { return wantInt("garp_master_repeat", v.GarpMasterRepeat, 1) })},
		{"garp_master_delay is whole seconds", inst(" garp_master_delay 1.5\n"), Error, "garp_master_delay", nil},
		{"vrrp_garp_interval 0 is outside keepalived's range", "global_defs {\n vrrp_garp_interval 0\n}\n", Warning, "0.000001..4294.967295",
			func(c *Config) string { return wantDur("vrrp_garp_interval", c.Global.VRRPGarpInterval, 0) }},
		{"vrrp_min_garp applies where written", "global_defs {\n vrrp_min_garp\n vrrp_garp_master_repeat 3\n}\n" + inst(""), Warning, "",
			in(func(v *VRRPInstance) string {
				return wantInt("garp_master_repeat", v.GarpMasterRepeat, 3) + wantInt("garp_master_refresh_repeat", v.GarpMasterRefreshRepeat, 0) +
					wantDur("garp_master_delay", v.GarpMasterDelay, 0)
			})},
		{"family from the first address written", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n unicast_peer {\n  2001:db8::2\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
			Error, ":8: 10.0.0.1/32: address family differs", nil},
		{"multicast instance without interface", "vrrp_instance V {\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n", Error, "has no interface", nil},
		{"unicast keyword without peers", inst(" unicast_src_ip 10.0.0.5\n"), Warning, "without unicast peers: using multicast", nil},
		{"VRRPv2 over IPv6 outside strict mode", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n version 2\n virtual_ipaddress {\n  2001:db8::1\n }\n}\n", Error, "VRRPv2 over IPv6", nil},
		{"VRRPv2 over IPv6 in strict mode becomes v3", "vrrp_instance V {\n strict_mode\n interface eth0\n virtual_router_id 1\n version 2\n virtual_ipaddress {\n  2001:db8::1\n }\n}\n", Warning, "using version 3",
			in(func(v *VRRPInstance) string { return wantInt("version", v.Version, 3) })},
		{"VRRPv3 without VIP", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n version 3\n}\n", Error, "has no VIP", nil},
		{"more VIPs than one advert carries", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n" + manyVIPs(256, "10.1.%d.%d") + " }\n}\n", Error, "put the rest in virtual_ipaddress_excluded", nil},
		{"IPv6 adverts carry 89 addresses at MTU 1500", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n" + manyVIPs(90, "2001:db8::%x:%x") + " }\n}\n", Error, "(89 for IPv6", nil},

		{"nb_get_retry is not a TCP_CHECK keyword", vs(" protocol TCP\n", "  TCP_CHECK {\n   nb_get_retry 3\n  }\n"), Warning, "nb_get_retry: unknown keyword in TCP_CHECK",
			func(c *Config) string {
				return wantInt("retry", c.VirtualServers[0].RealServers[0].Checkers[0].Retry, 1)
			}},
		{"nb_get_retry is read in HTTP_GET", vs(" protocol TCP\n", "  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 4\n  }\n"), Warning, "deprecated, use retry",
			func(c *Config) string {
				return wantInt("retry", c.VirtualServers[0].RealServers[0].Checkers[0].Retry, 4)
			}},
		{"no protocol means UDP", vs("", ""), Warning, "keepalived defaults to UDP",
			func(c *Config) string { return wantStr("protocol", c.VirtualServers[0].Protocol, "UDP") }},
		{"fwmark services have no protocol", "virtual_server fwmark 1 {\n protocol TCP\n real_server 10.0.0.2 0 {\n }\n}\n", Warning, "ignored for a fwmark service",
			func(c *Config) string { return wantStr("protocol", c.VirtualServers[0].Protocol, "") }},
		{"port 0 makes the service persistent", "virtual_server 10.0.0.1 0 {\n protocol TCP\n real_server 10.0.0.2 0 {\n }\n}\n", Warning, "persistence_timeout set to 360",
			func(c *Config) string {
				return wantDur("persistence_timeout", c.VirtualServers[0].PersistenceTimeout, 360*time.Second)
			}},
		{"DR real server port follows the service, its checker the port written",
			"virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.2 8080 {\n  TCP_CHECK {\n  }\n }\n}\n", Warning, "reset to 80",
			func(c *Config) string {
				rs := c.VirtualServers[0].RealServers[0]
				return wantInt("port", int(rs.Port), 80) + wantInt("connect_port", int(rs.Checkers[0].ConnectPort), 8080)
			}},
		{"a checker of a real server written without port", "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.2 {\n  TCP_CHECK {\n  }\n }\n}\n", Warning, "connects to port 0",
			func(c *Config) string {
				return wantInt("connect_port", int(c.VirtualServers[0].RealServers[0].Checkers[0].ConnectPort), 80)
			}},
		{"duplicate real server removed", "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n real_server 10.0.0.2 80 {\n  weight 5\n }\n}\n", Warning, "duplicate",
			func(c *Config) string { return wantInt("real servers", len(c.VirtualServers[0].RealServers), 1) }},
		{"quorum above the total weight", vs(" protocol TCP\n quorum 5\n hysteresis 9\n", "  weight 2\n"), Warning, "reduced to 2",
			func(c *Config) string {
				return wantInt("quorum", c.VirtualServers[0].Quorum, 2) + wantInt("hysteresis", c.VirtualServers[0].Hysteresis, 1)
			}},
		{"a service without real servers is dropped", "virtual_server 10.0.0.1 80 {\n protocol TCP\n sorry_server 10.0.0.9 80\n}\n", Warning, "has no real_server: ignored",
			func(c *Config) string { return wantInt("virtual servers", len(c.VirtualServers), 0) }},
		{"DR sorry server port follows the service", vs(" protocol TCP\n lb_kind DR\n sorry_server 10.0.0.9 8080\n", ""), Warning, "sorry server port 8080",
			func(c *Config) string { return wantInt("sorry port", int(c.VirtualServers[0].SorryServer.Port), 80) }},
		{"lb_algo is case sensitive", vs(" protocol TCP\n lb_algo RR\n", ""), Error, "keepalived ignores it and uses wlc", nil},
		{"lb_kind is case sensitive", vs(" protocol TCP\n lb_kind dr\n", ""), Error, "keepalived ignores it and uses NAT", nil},
		{"SMTP_CHECK host blocks are checkers", vs(" protocol TCP\n", "  SMTP_CHECK {\n   host {\n    connect_ip 10.0.0.3\n    connect_timeout 4\n   }\n   host {\n    connect_ip 10.0.0.4\n   }\n  }\n"),
			Warning, "keepalived 2.2.7 checks this host with a connect timeout of 0",
			func(c *Config) string {
				cs := c.VirtualServers[0].RealServers[0].Checkers
				if len(cs) != 2 {
					return fmt.Sprintf("%d checkers, want 2 (one per host)", len(cs))
				}
				return wantStr("host 1", cs[0].ConnectIP.String(), "10.0.0.3") + wantDur("host 1 timeout", cs[0].ConnectTimeout, 4*time.Second) +
					wantStr("host 2", cs[1].ConnectIP.String(), "10.0.0.4") + wantStr("helo", cs[1].HeloName, "smtpchecker.keepalived.org")
			}},
		{"a url with a digest still checks 200-299", vs(" protocol TCP\n", "  HTTP_GET {\n   url {\n    path /\n    digest 640205b7b0fc66c1ea91c463fac6334d\n   }\n  }\n"), Warning, "",
			func(c *Config) string {
				u := c.VirtualServers[0].RealServers[0].Checkers[0].URLs[0]
				return wantBool("404 accepted", u.StatusOK(404), false) + wantBool("204 accepted", u.StatusOK(204), true)
			}},
		{"status codes stop at 599", vs(" protocol TCP\n", "  HTTP_GET {\n   url {\n    path /\n    status_code 600\n   }\n  }\n"), Error, "100..599", nil},
		{"persistence_timeout 0 is not persistent", vs(" protocol TCP\n persistence_timeout 0\n", ""), Warning, "1..2678400 and ignored",
			func(c *Config) string {
				return wantDur("persistence_timeout", c.VirtualServers[0].PersistenceTimeout, 0)
			}},
		{"persistence_timeout stops at 31 days", vs(" protocol TCP\n persistence_timeout 2678401\n", ""), Error, "1..2678400", nil},
		{"quorum 0 is 1", vs(" protocol TCP\n quorum 0\n", ""), Warning, "set to 1",
			func(c *Config) string { return wantInt("quorum", c.VirtualServers[0].Quorum, 1) }},
		{"retry 0 on a virtual server", vs(" protocol TCP\n retry 0\n", ""), Error, "retry", nil},
		{"a virtual server's weight is its real servers' default", "virtual_server 10.0.0.1 80 {\n protocol TCP\n weight 7\n real_server 10.0.0.2 80 {\n }\n real_server 10.0.0.3 80 {\n  weight 2\n }\n}\n", Warning, "",
			func(c *Config) string {
				rs := c.VirtualServers[0].RealServers
				return wantInt("weight 1", rs[0].Weight, 7) + wantInt("weight 2", rs[1].Weight, 2)
			}},
		{"script interval 0 is 1", "vrrp_script s {\n script /bin/true\n interval 0\n}\n", Warning, "set to 1",
			func(c *Config) string { return wantDur("interval", c.Scripts[0].Interval, time.Second) }},
		{"a fractional script interval says how keepalived reads it", "vrrp_script s {\n script /bin/true\n interval 0.5\n}\n", Warning, "keepalived 2.2.7 reads whole seconds here (it would use 1s)",
			func(c *Config) string { return wantDur("interval", c.Scripts[0].Interval, 500*time.Millisecond) }},
		{"words after lb_kind", vs(" protocol TCP\n lb_kind DR // direct\n", ""), Warning, "tunnel options",
			func(c *Config) string { return wantStr("lb_kind", c.VirtualServers[0].Method, MethodDR) }},
		{"VRRPv3 advert_int rounds to 10ms", inst(" version 3\n advert_int 0.015\n"), Warning, "rounded to 0.02s",
			in(func(v *VRRPInstance) string { return wantDur("advert_int", v.AdvertInt, 20*time.Millisecond) })},
		{"sh-port needs lb_algo sh written before it", vs(" protocol TCP\n sh-port\n lb_algo sh\n mh-port\n", ""), Warning, "applies only to the sh or mh scheduler",
			func(c *Config) string { return wantInt("sched flags", len(c.VirtualServers[0].SchedFlags), 0) }},
		{"mh-port after lb_algo mh", vs(" protocol TCP\n lb_algo mh\n mh-port\n", ""), Warning, "",
			func(c *Config) string { return wantInt("sched flags", len(c.VirtualServers[0].SchedFlags), 1) }},
		{"lb_kind is not a real_server keyword", vs(" protocol TCP\n lb_kind NAT\n", "  lb_kind DR\n"), Warning, "lb_kind: unknown keyword in real_server",
			func(c *Config) string {
				return wantStr("lb_kind", c.VirtualServers[0].RealServers[0].Method, MethodNAT)
			}},
		{"net_namespace in global_defs is unknown", "global_defs {\n net_namespace blue\n}\n", Warning, "unknown keyword in global_defs", nil},
		{"no_preempt is not a keyword", inst(" no_preempt\n"), Warning, "no_preempt: unknown keyword",
			in(func(v *VRRPInstance) string { return wantBool("preempt", v.Preempt, true) })},
		{"smtp_server takes an address only", "global_defs {\n smtp_server mail.example.org\n}\n", Warning, "keepalived 2.2.7 ignores it",
			func(c *Config) string { return wantStr("smtp_server", c.Global.SMTPServer, "") }},
		{"scripts as root without script security", "vrrp_script s {\n script /bin/true\n}\n" + inst(" track_script {\n  s\n }\n"), Warning, "SECURITY VIOLATION", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags, _ := Parse("main.conf", []byte(tt.conf))
			if tt.want != "" {
				if _, ok := findDiag(diags, tt.sev, tt.want); !ok {
					t.Errorf("no %s containing %q in:\n%s", tt.sev, tt.want, dumpDiags(diags))
				}
			}
			if tt.ok != nil {
				if msg := tt.ok(cfg); msg != "" {
					t.Errorf("%s\n%s", msg, dumpDiags(diags))
				}
			}
		})
	}
}

func manyVIPs(n int, format string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  "+format+"\n", i/250+1, i%250+1)
	}
	return b.String()
}

func wantInt(what string, got, want int) string {
	if got != want {
		return fmt.Sprintf("%s = %d, want %d; ", what, got, want)
	}
	return ""
}

func wantStr(what, got, want string) string {
	if got != want {
		return fmt.Sprintf("%s = %q, want %q; ", what, got, want)
	}
	return ""
}

func wantBool(what string, got, want bool) string {
	if got != want {
		return fmt.Sprintf("%s = %v, want %v; ", what, got, want)
	}
	return ""
}

func wantDur(what string, got, want time.Duration) string {
	if got != want {
		return fmt.Sprintf("%s = %s, want %s; ", what, got, want)
	}
	return ""
}
