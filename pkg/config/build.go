package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// builder turns the statement tree into the model, reporting bad values.
type builder struct {
	d    *diagSink
	cfg  *Config
	inst map[*VRRPInstance]*instanceSeen
	// globalSeen records which global defaults were given explicitly.
	globalSeen map[string]bool
	// scriptNames holds every vrrp_script name of the file, to say so when
	// a track_script names one defined after it.
	scriptNames map[string]bool
	// The named blocks added to cfg so far, by name: duplicate checks and
	// references stay linear in configurations with thousands of them
	// (~SEQ makes those in one line).
	scripts          map[string]*VRRPScript
	instances        map[string]*VRRPInstance
	syncGroupsByName map[string]*SyncGroup
	vsGroups         map[string]*VirtualServerGroup
}

func (b *builder) top(root *node) {
	b.scriptNames = map[string]bool{}
	for _, n := range root.children {
		if n.key == "vrrp_script" && len(n.args) > 0 {
			b.scriptNames[n.args[0].text] = true
		}
	}
	for _, n := range root.children {
		if b.d.aborted {
			return
		}
		switch n.key {
		case "global_defs":
			if b.needBlock(n) {
				b.global(n)
			}
		case "vrrp_script":
			if b.needBlock(n) {
				b.vrrpScript(n)
			}
		case "vrrp_sync_group":
			if b.needBlock(n) {
				b.syncGroup(n)
			}
		case "vrrp_instance":
			if b.needBlock(n) {
				b.instance(n)
			}
		case "virtual_server_group":
			if b.needBlock(n) {
				b.virtualServerGroup(n)
			}
		case "virtual_server":
			if b.needBlock(n) {
				b.virtualServer(n)
			}
		case "bgp": // xdpvip extension, bgp.go
			if b.needBlock(n) {
				b.bgp(n)
			}
		case "linkbeat_interfaces", "track_group", "static_ipaddress", "static_routes", "static_rules",
			"track_file", "vrrp_track_file", "vrrp_track_process", "bfd_instance", "garp_group",
			"interface_up_down_delays":
			b.d.warnf(n.pos, n.key, "not supported by xdpvip, block ignored")
		case "SSL":
			// Client certificate for SSL_GET; xdpvip's checker uses its own TLS settings.
		case "net_namespace", "net_namespace_ipvs":
			b.d.warnf(n.pos, n.key, "not supported by xdpvip (keepalived runs in that network namespace; run xdpvip inside it instead)")
		case "namespace_with_ipsets", "instance", "use_pid_dir", "linkbeat_use_polling", "child_wait_time":
			// Process-level keywords of keepalived's top level.
		default:
			b.unknown(n, "top level")
		}
	}
}

// ---- argument helpers ----

func (b *builder) unknown(n *node, where string) {
	b.d.warnf(n.pos, n.key, "unknown keyword in %s, ignored", where)
}

func (b *builder) needBlock(n *node) bool {
	if !n.block {
		b.d.errorf(n.pos, n.key, "needs a { } block")
		return false
	}
	return true
}

// arg returns the first argument, reporting an error when there is none.
func (b *builder) arg(n *node) (string, bool) {
	if len(n.args) == 0 {
		b.d.errorf(n.pos, n.key, "missing value")
		return "", false
	}
	return n.args[0].text, true
}

func (b *builder) intIn(n *node, s string, lo, hi int) (int, bool) {
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		b.d.errorf(n.pos, n.key, "%q is not a number in %d..%d", s, lo, hi)
		return 0, false
	}
	return v, true
}

// intArg parses the first argument as an integer in lo..hi.
func (b *builder) intArg(n *node, lo, hi int) (int, bool) {
	s, ok := b.arg(n)
	if !ok {
		return 0, false
	}
	return b.intIn(n, s, lo, hi)
}

// keepalived reads GARP delays as whole seconds up to UINT_MAX/1000000,
// and the GARP/NA intervals as microseconds up to UINT_MAX.
const (
	maxGarpSeconds  = 4294
	maxGarpInterval = 4294967295 * time.Microsecond
)

// repeatArg parses a GARP repeat count as keepalived does: an unsigned
// integer where 0 means 1 (with a message).
func (b *builder) repeatArg(n *node) (int, bool) {
	v, ok := b.intArg(n, 0, 1<<32-1)
	if ok && v == 0 {
		b.d.warnf(n.pos, n.key, "must be greater than 0, set to 1 as keepalived does")
		v = 1
	}
	return v, ok
}

// maxTimer bounds <TIMER> values (one year).
const maxTimer = 365 * 24 * time.Hour

// parseTimer parses keepalived's <TIMER>: seconds with an optional
// fraction, microsecond resolution.
func parseTimer(s string) (time.Duration, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, fmt.Errorf("%q is not a time in seconds", s)
	}
	var d time.Duration
	for _, c := range []byte(whole) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a time in seconds", s)
		}
		d = d*10 + time.Duration(c-'0')*time.Second
		if d > maxTimer {
			return 0, fmt.Errorf("%q is more than %d seconds", s, int(maxTimer/time.Second))
		}
	}
	unit := 100 * time.Millisecond
	for i, c := range []byte(frac) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a time in seconds", s)
		}
		if i < 6 {
			d += time.Duration(c-'0') * unit
			unit /= 10
		}
	}
	return d, nil
}

// timerArg parses the first argument as a <TIMER> in lo..hi.
func (b *builder) timerArg(n *node, lo, hi time.Duration) (time.Duration, bool) {
	s, ok := b.arg(n)
	if !ok {
		return 0, false
	}
	d, err := parseTimer(s)
	if err != nil {
		b.d.errorf(n.pos, n.key, "%v", err)
		return 0, false
	}
	if d < lo || d > hi {
		b.d.errorf(n.pos, n.key, "%s is outside %s..%s", s, fmtSeconds(lo), fmtSeconds(hi))
		return 0, false
	}
	return d, true
}

func fmtSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// boolArg parses an optional <BOOL>; no argument means true.
func (b *builder) boolArg(n *node) (bool, bool) {
	if len(n.args) == 0 {
		return true, true
	}
	switch strings.ToLower(n.args[0].text) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	b.d.errorf(n.pos, n.key, "%q is not one of on|off|true|false|yes|no", n.args[0].text)
	return false, false
}

func (b *builder) addr(n *node, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		b.d.errorf(n.pos, n.key, "%q is not an IP address", s)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (b *builder) addrArg(n *node) (netip.Addr, bool) {
	s, ok := b.arg(n)
	if !ok {
		return netip.Addr{}, false
	}
	return b.addr(n, s)
}

func (b *builder) port(n *node, s string) (uint16, bool) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 65535 {
		b.d.errorf(n.pos, n.key, "port %q is not in 1..65535", s)
		return 0, false
	}
	return uint16(v), true
}

func (b *builder) portArg(n *node) (uint16, bool) {
	s, ok := b.arg(n)
	if !ok {
		return 0, false
	}
	return b.port(n, s)
}

// scriptArg parses "<STRING>|<QUOTED-STRING> [username [groupname]]".
func (b *builder) scriptArg(n *node) (ScriptCmd, bool) {
	s, ok := b.arg(n)
	if !ok {
		return ScriptCmd{}, false
	}
	sc := ScriptCmd{Command: s}
	if len(n.args) > 1 {
		sc.User = n.args[1].text
	}
	if len(n.args) > 2 {
		sc.Group = n.args[2].text
	}
	if len(n.args) > 3 {
		b.d.warnf(n.pos, n.key, "extra arguments after the group ignored (quote a command that has arguments)")
	}
	return sc, true
}

// list returns the words of a block of one-word lines (e.g. group { a b }).
func (b *builder) list(n *node) []string {
	var out []string
	for _, c := range n.children {
		out = append(out, c.key)
		for _, a := range c.args {
			out = append(out, a.text)
		}
	}
	return out
}

// ---- global_defs ----

// ignoredGlobals are global_defs keywords of keepalived 2.2.7 that xdpvip
// accepts and does not use (keywords keepalived does not know there, such
// as net_namespace, which is a top-level keyword, are reported unknown as
// keepalived does).
var ignoredGlobals = toSet(`bfd_cpu_affinity bfd_no_swap bfd_priority bfd_process_name bfd_rlimit_rttime bfd_rt_priority
checker_cpu_affinity checker_log_all_failures checker_no_swap checker_priority checker_process_name
checker_rlimit_rttime checker_rt_priority config_save_dir data_use_instance dbus_service_name
disable_local_igmp dynamic_interfaces enable_dbus enable_snmp_checker enable_snmp_rfc
enable_snmp_rfcv2 enable_snmp_rfcv3 enable_snmp_vrrp enable_snmp_keepalived enable_traps
fifo_write_vrrp_states_on_reload include_check log_unknown_vrids lvs_flush_on_stop
lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
lvs_netlink_monitor_rcv_bufs_force lvs_notify_fifo lvs_notify_fifo_script lvs_sync_daemon
lvs_timeouts max_auto_priority min_auto_priority_delay nftables nftables_counters nftables_ifindex
nftables_ipvs nftables_ipvs_priority nftables_ipvs_start_fwmark nftables_priority no_checker_emails
notify_fifo notify_fifo_script process_monitor_rcv_bufs process_monitor_rcv_bufs_force process_name
process_names random_seed reload_check_config reload_file reload_repeat reload_time_file
rs_init_notifies shutdown_script shutdown_script_timeout snmp_socket startup_script
startup_script_timeout tmp_config_directory umask vmac_addr_prefix vmac_prefix vrrp_cpu_affinity
vrrp_garp_extra_if vrrp_iptables vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force
vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force vrrp_no_swap vrrp_notify_fifo
vrrp_notify_fifo_script vrrp_notify_priority_changes vrrp_priority vrrp_process_name
vrrp_rlimit_rttime vrrp_rt_priority vrrp_rx_bufs_multiplier vrrp_rx_bufs_policy`)

func toSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// globalDefaults returns global_defs as keepalived initialises it.
func globalDefaults() GlobalDefs {
	return GlobalDefs{
		SMTPPort:                    25,
		SMTPConnectTimeout:          30 * time.Second,
		VRRPVersion:                 2,
		VRRPMcastGroup4:             netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:             netip.MustParseAddr("ff02::12"),
		VRRPGarpMasterDelay:         5 * time.Second,
		VRRPGarpMasterRepeat:        5,
		VRRPGarpMasterRefreshRepeat: 1,
		VRRPDownTimerAdverts:        3,
		DefaultInterface:            "eth0",
	}
}

func (b *builder) global(blk *node) {
	g := &b.cfg.Global
	g.Pos = blk.pos
	for _, n := range blk.children {
		b.globalSeen[n.key] = true
		switch n.key {
		case "router_id":
			g.RouterID, _ = b.arg(n)
		case "notification_email":
			g.NotificationEmail = append(g.NotificationEmail, b.list(n)...)
		case "notification_email_from":
			g.NotificationEmailFrom, _ = b.arg(n)
		case "smtp_server":
			if s, ok := b.arg(n); ok {
				if _, err := netip.ParseAddr(s); err != nil {
					// keepalived 2.2.7 takes an address only.
					b.d.warnf(n.pos, n.key, "%q is not an IP address: keepalived 2.2.7 ignores it (and xdpvip sends no mail)", s)
					continue
				}
				g.SMTPServer = s
				if len(n.args) > 1 {
					if p, ok := b.port(n, n.args[1].text); ok {
						g.SMTPPort = p
					}
				}
			}
		case "smtp_helo_name":
			g.SMTPHeloName, _ = b.arg(n)
		case "smtp_connect_timeout":
			if d, ok := b.timerArg(n, time.Second, maxTimer); ok {
				g.SMTPConnectTimeout = d
			}
		case "smtp_alert":
			g.SMTPAlert, _ = b.boolArg(n)
		case "smtp_alert_vrrp":
			g.SMTPAlertVRRP, _ = b.boolArg(n)
		case "smtp_alert_checker":
			g.SMTPAlertChecker, _ = b.boolArg(n)
		case "no_email_faults":
			g.NoEmailFaults = true
		case "vrrp_version":
			if v, ok := b.intArg(n, 2, 3); ok {
				g.VRRPVersion = v
			}
		case "vrrp_strict":
			g.VRRPStrict = true
		case "vrrp_skip_check_adv_addr":
			g.VRRPSkipCheckAdvAddr, _ = b.boolArg(n)
		case "vrrp_check_unicast_src":
			g.VRRPCheckUnicastSrc = true
		case "vrrp_mcast_group4":
			if a, ok := b.addrArg(n); ok {
				if !a.Is4() || !a.IsMulticast() {
					b.d.errorf(n.pos, n.key, "%s is not an IPv4 multicast address", a)
				} else {
					g.VRRPMcastGroup4 = a
				}
			}
		case "vrrp_mcast_group6":
			if a, ok := b.addrArg(n); ok {
				if !a.Is6() || !a.IsMulticast() {
					b.d.errorf(n.pos, n.key, "%s is not an IPv6 multicast address", a)
				} else {
					g.VRRPMcastGroup6 = a
				}
			}
		case "vrrp_garp_interval", "vrrp_gna_interval":
			// keepalived reads 0.000001..4294.967295 and ignores 0 with a
			// message, keeping its default 0: the same meaning.
			if d, ok := b.timerArg(n, 0, maxGarpInterval); ok {
				if d == 0 {
					b.d.warnf(n.pos, n.key, "0 is outside keepalived's range 0.000001..4294.967295 and ignored; the default is 0 (no delay) anyway")
				}
				if n.key == "vrrp_garp_interval" {
					g.VRRPGarpInterval = d
				} else {
					g.VRRPGnaInterval = d
				}
			}
		case "vrrp_garp_master_delay":
			if v, ok := b.intArg(n, 0, maxGarpSeconds); ok {
				g.VRRPGarpMasterDelay = time.Duration(v) * time.Second
			}
		case "vrrp_garp_master_repeat":
			if v, ok := b.repeatArg(n); ok {
				g.VRRPGarpMasterRepeat = v
			}
		case "vrrp_garp_master_refresh":
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				g.VRRPGarpMasterRefresh = time.Duration(v) * time.Second
			}
		case "vrrp_garp_master_refresh_repeat":
			if v, ok := b.repeatArg(n); ok {
				g.VRRPGarpMasterRefreshRepeat = v
			}
		case "vrrp_garp_lower_prio_delay":
			if v, ok := b.intArg(n, 0, maxGarpSeconds); ok {
				g.VRRPGarpLowerPrioDelay = time.Duration(v) * time.Second
			}
		case "vrrp_garp_lower_prio_repeat":
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				g.VRRPGarpLowerPrioRepeat = v
			}
		case "vrrp_min_garp":
			// keepalived sets, where still at their defaults at this line,
			// one GARP without repeat, refresh or delay.
			if on, _ := b.boolArg(n); on {
				g.VRRPMinGarp = true
				def := globalDefaults()
				if g.VRRPGarpMasterRepeat == def.VRRPGarpMasterRepeat {
					g.VRRPGarpMasterRepeat = 1
				}
				if g.VRRPGarpMasterRefresh == def.VRRPGarpMasterRefresh {
					g.VRRPGarpMasterRefresh = 0
				}
				if g.VRRPGarpMasterRefreshRepeat == def.VRRPGarpMasterRefreshRepeat {
					g.VRRPGarpMasterRefreshRepeat = 0
				}
				if g.VRRPGarpMasterDelay == def.VRRPGarpMasterDelay {
					g.VRRPGarpMasterDelay = 0
				}
			}
		case "vrrp_down_timer_adverts":
			if v, ok := b.intArg(n, 1, 100); ok {
				g.VRRPDownTimerAdverts = v
			}
		case "vrrp_lower_prio_no_advert":
			g.VRRPLowerPrioNoAdvert, _ = b.boolArg(n)
		case "vrrp_higher_prio_send_advert":
			g.VRRPHigherPrioSendAdvert, _ = b.boolArg(n)
		case "vrrp_startup_delay":
			if d, ok := b.timerArg(n, 0, maxTimer); ok {
				g.VRRPStartupDelay = d
			}
		case "default_interface":
			g.DefaultInterface, _ = b.arg(n)
		case "enable_script_security":
			g.EnableScriptSecurity = true
		case "script_user":
			if s, ok := b.arg(n); ok {
				g.ScriptUser = s
				if len(n.args) > 1 {
					g.ScriptGroup = n.args[1].text
				}
			}
		case "lvs_flush":
			g.LVSFlush = true
		default:
			if !ignoredGlobals[n.key] {
				b.unknown(n, "global_defs")
			}
		}
	}
}

// finishGlobal applies defaults that depend on other globals.
func (b *builder) finishGlobal() {
	g := &b.cfg.Global
	if !b.globalSeen["vrrp_garp_lower_prio_delay"] {
		g.VRRPGarpLowerPrioDelay = g.VRRPGarpMasterDelay
	}
	if !b.globalSeen["vrrp_garp_lower_prio_repeat"] {
		g.VRRPGarpLowerPrioRepeat = g.VRRPGarpMasterRepeat
	}
}

// scriptSecurity warns, once, that scripts run as root without
// enable_script_security: keepalived reports this as a SECURITY VIOLATION
// (for every script file it finds).
func (b *builder) scriptSecurity() {
	g := &b.cfg.Global
	if g.EnableScriptSecurity || g.ScriptUser != "" {
		return
	}
	var at *Pos
	note := func(p Pos, sc ScriptCmd) {
		if at == nil && !sc.IsZero() && sc.User == "" {
			at = &p
		}
	}
	for _, s := range b.cfg.Scripts {
		note(s.Pos, s.Script)
	}
	for _, in := range b.cfg.Instances {
		for _, sc := range []ScriptCmd{in.Notify.Master, in.Notify.Backup, in.Notify.Fault, in.Notify.Stop, in.Notify.Any, in.Notify.MasterRxLowerPri} {
			note(in.Pos, sc)
		}
	}
	for _, vs := range b.cfg.VirtualServers {
		note(vs.Pos, vs.QuorumUp)
		note(vs.Pos, vs.QuorumDown)
		for _, rs := range vs.RealServers {
			note(rs.Pos, rs.NotifyUp)
			note(rs.Pos, rs.NotifyDown)
			for _, c := range rs.Checkers {
				note(c.Pos, c.MiscPath)
			}
		}
	}
	if at != nil {
		b.d.warnf(*at, "enable_script_security", "scripts run as root without enable_script_security in global_defs (keepalived reports a SECURITY VIOLATION for every script it finds)")
	}
}

// ---- vrrp_script ----

func (b *builder) vrrpScript(blk *node) {
	s := &VRRPScript{Pos: blk.pos, Interval: time.Second, Rise: 1, Fall: 1}
	if len(blk.args) == 0 {
		b.d.errorf(blk.pos, blk.key, "needs a name")
		return
	}
	s.Name = blk.args[0].text
	if b.scripts[s.Name] != nil {
		b.d.errorf(blk.pos, blk.key, "%q is defined twice", s.Name)
		return
	}
	timeoutSet := false
	for _, n := range blk.children {
		switch n.key {
		case "script":
			s.Script, _ = b.scriptArg(n)
		case "interval", "timeout":
			// keepalived reads whole seconds (0..4294); 0 means 1.
			// xdpvip also takes a fraction, and says how keepalived
			// reads it.
			if d, ok := b.timerArg(n, 0, maxGarpSeconds*time.Second); ok {
				if whole := d.Truncate(time.Second); whole != d {
					kaRuns := max(whole, time.Second)
					b.d.warnf(n.pos, n.key, "keepalived 2.2.7 reads whole seconds here (it would use %s); xdpvip uses %s", fmtSeconds(kaRuns), fmtSeconds(d))
				} else if d == 0 {
					b.d.warnf(n.pos, n.key, "must be greater than 0, set to 1 as keepalived does")
					d = time.Second
				}
				if n.key == "interval" {
					s.Interval = d
				} else {
					s.Timeout, timeoutSet = d, true
				}
			}
		case "weight":
			if v, ok := b.intArg(n, -253, 253); ok {
				s.Weight = v
			}
			s.Reverse = len(n.args) > 1 && n.args[1].text == "reverse"
			if s.Reverse {
				b.d.warnf(n.pos, n.key, "reverse is not supported by xdpvip: the weight applies as without it")
			}
		case "rise":
			if v, ok := b.intArg(n, 1, 1<<31-1); ok {
				s.Rise = v
			}
		case "fall":
			if v, ok := b.intArg(n, 1, 1<<31-1); ok {
				s.Fall = v
			}
		case "user":
			if u, ok := b.arg(n); ok {
				s.Script.User = u
				if len(n.args) > 1 {
					s.Script.Group = n.args[1].text
				}
			}
		case "init_fail":
			s.InitFail = true
		default:
			b.unknown(n, "vrrp_script")
		}
	}
	if !timeoutSet {
		s.Timeout = s.Interval
	}
	if s.Script.IsZero() {
		b.d.warnf(blk.pos, blk.key, "%q has no script, removed", s.Name)
		return
	}
	b.cfg.Scripts = append(b.cfg.Scripts, s)
	b.scripts[s.Name] = s
}

// ---- track_* lists ----

// trackWeight parses the options after a tracked name the way keepalived
// does: "weight W [reverse|noreverse]". An entry keepalived ignores (an
// option other than weight, weight without a value or out of range) is
// reported and dropped (ok false). keepalived sets +/-254 to +/-253 with a
// message; xdpvip refuses it like any other weight outside -253..253.
func (b *builder) trackWeight(n *node) (w int, set, reverse, ok bool) {
	args := n.args
	if len(args) == 0 {
		return 0, false, false, true
	}
	if args[0].text != "weight" {
		b.d.warnf(n.pos, n.key, "unknown option %q: entry ignored (as keepalived does)", args[0].text)
		return 0, false, false, false
	}
	if len(args) == 1 {
		b.d.warnf(n.pos, n.key, "weight without a value: entry ignored (as keepalived does)")
		return 0, false, false, false
	}
	v, err := strconv.Atoi(args[1].text)
	if err != nil || v < -253 || v > 253 {
		b.d.errorf(n.pos, n.key, "weight %q is not a number in -253..253", args[1].text)
		return 0, false, false, false
	}
	if len(args) > 2 {
		switch args[2].text {
		case "reverse":
			reverse = true
		case "noreverse":
		default:
			b.d.warnf(n.pos, n.key, "unknown weight option %q ignored", args[2].text)
		}
	}
	return v, true, reverse, true
}

// trackInterfaces parses a track_interface block; a repeated interface is
// ignored, as keepalived does.
func (b *builder) trackInterfaces(blk *node, have []TrackInterface) []TrackInterface {
	out := have
next:
	for _, n := range blk.children {
		w, _, rev, ok := b.trackWeight(n)
		if !ok {
			continue
		}
		for _, t := range out {
			if t.Name == n.key {
				b.d.warnf(n.pos, n.key, "interface tracked twice, ignored")
				continue next
			}
		}
		out = append(out, TrackInterface{Name: n.key, Weight: w, Reverse: rev})
	}
	return out
}

// trackScripts parses a track_script block. keepalived resolves the names
// while it reads: a vrrp_script defined further down the file is not found,
// and the entry is dropped. Without a weight, the script's weight and
// reverse apply.
func (b *builder) trackScripts(blk *node, have []TrackScript) []TrackScript {
	out := have
next:
	for _, n := range blk.children {
		w, set, rev, ok := b.trackWeight(n)
		if !ok {
			continue
		}
		sc := b.cfg.Script(n.key)
		if sc == nil {
			if b.scriptNames[n.key] {
				b.d.warnf(n.pos, n.key, "vrrp_script %q is defined further down: keepalived does not find it here, entry ignored (define the script first)", n.key)
			} else {
				b.d.warnf(n.pos, n.key, "no vrrp_script %q, ignored", n.key)
			}
			continue
		}
		for _, t := range out {
			if t.Name == n.key {
				b.d.warnf(n.pos, n.key, "script tracked twice, ignored")
				continue next
			}
		}
		if !set {
			rev = sc.Reverse
		}
		out = append(out, TrackScript{Name: n.key, Weight: w, WeightSet: set, Reverse: rev})
	}
	return out
}

// notify parses the notify keywords shared by instances and sync groups.
func (b *builder) notify(n *node, nt *Notify) bool {
	var dst *ScriptCmd
	switch n.key {
	case "notify_master":
		dst = &nt.Master
	case "notify_backup":
		dst = &nt.Backup
	case "notify_fault":
		dst = &nt.Fault
	case "notify_stop":
		dst = &nt.Stop
	case "notify":
		dst = &nt.Any
	case "notify_master_rx_lower_pri":
		dst = &nt.MasterRxLowerPri
	case "notify_deleted":
		dst = &nt.Deleted
	default:
		return false
	}
	if sc, ok := b.scriptArg(n); ok {
		*dst = sc
	}
	return true
}

// ---- vrrp_sync_group ----

func (b *builder) syncGroup(blk *node) {
	if len(blk.args) == 0 {
		b.d.errorf(blk.pos, blk.key, "needs a name")
		return
	}
	g := &SyncGroup{Pos: blk.pos, Name: blk.args[0].text}
	if b.syncGroupsByName[g.Name] != nil {
		b.d.errorf(blk.pos, blk.key, "%q is defined twice", g.Name)
		return
	}
	for _, n := range blk.children {
		if b.notify(n, &g.Notify) {
			continue
		}
		switch n.key {
		case "group":
			g.Members = append(g.Members, b.list(n)...)
		case "track_interface":
			g.TrackInterfaces = b.trackInterfaces(n, g.TrackInterfaces)
		case "track_script":
			g.TrackScripts = b.trackScripts(n, g.TrackScripts)
		case "track_file", "track_process", "track_bfd":
			b.d.warnf(n.pos, n.key, "not supported by xdpvip, ignored")
		case "smtp_alert":
			g.SMTPAlert, _ = b.boolArg(n)
		case "global_tracking":
			g.GlobalTracking = true
		case "sync_group_tracking_weight":
			g.SyncGroupTrackingWeight = true
		case "notify_priority_changes":
			// Notify FIFOs are not implemented; accepted.
		default:
			b.unknown(n, "vrrp_sync_group")
		}
	}
	if len(g.Members) == 0 {
		b.d.warnf(blk.pos, blk.key, "%q has no group { } of instances", g.Name)
	}
	b.cfg.SyncGroups = append(b.cfg.SyncGroups, g)
	b.syncGroupsByName[g.Name] = g
}
