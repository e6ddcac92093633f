package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// instanceSeen records where an instance's keywords were written and
// which ones were given, for checks and defaults that need the whole file.
type instanceSeen struct {
	set map[string]Pos
	// advertRaw is advert_int as written, checked once the version is known.
	advertRaw time.Duration
}

func (s *instanceSeen) has(kw string) bool { _, ok := s.set[kw]; return ok }

func (b *builder) instance(blk *node) {
	if len(blk.args) == 0 {
		b.d.errorf(blk.pos, blk.key, "needs a name")
		return
	}
	in := &VRRPInstance{Pos: blk.pos, Name: blk.args[0].text, InitialState: StateBackup,
		Priority: 100, AdvertInt: time.Second, Preempt: true, Accept: true, UnicastTTL: -1}
	if b.instances[in.Name] != nil {
		b.d.errorf(blk.pos, blk.key, "%q is defined twice", in.Name)
		return
	}
	seen := &instanceSeen{set: map[string]Pos{}, advertRaw: time.Second}
	for _, n := range blk.children {
		seen.set[n.key] = n.pos
		if b.notify(n, &in.Notify) {
			continue
		}
		switch n.key {
		case "state":
			if s, ok := b.arg(n); ok {
				switch strings.ToUpper(s) {
				case StateMaster, StateBackup:
					in.InitialState = strings.ToUpper(s)
					in.ConfiguredState = in.InitialState
				default:
					b.d.errorf(n.pos, n.key, "%q is not MASTER or BACKUP", s)
				}
			}
		case "interface":
			in.Interface, _ = b.arg(n)
		case "virtual_router_id":
			if s, ok := b.arg(n); ok {
				if v, ok := b.intIn(n, s, 1, 255); ok {
					in.VRID = v
				}
			}
		case "priority":
			if v, ok := b.intArg(n, 1, 255); ok {
				in.Priority = v
			}
		case "advert_int":
			if d, ok := b.timerArg(n, time.Microsecond, 255*time.Second); ok {
				seen.advertRaw = d
			} else {
				delete(seen.set, n.key)
			}
		case "version":
			if v, ok := b.intArg(n, 2, 3); ok {
				in.Version = v
			}
		case "authentication":
			b.authentication(n, in)
		case "virtual_ipaddress":
			in.VIPs = append(in.VIPs, b.vips(n)...)
		case "virtual_ipaddress_excluded":
			in.ExcludedVIPs = append(in.ExcludedVIPs, b.vips(n)...)
		case "mcast_src_ip":
			in.McastSrcIP, _ = b.addrArg(n)
		case "unicast_src_ip":
			in.UnicastSrcIP, _ = b.addrArg(n)
		case "mcast_dst_ip":
			if a, ok := b.addrArg(n); ok {
				if !a.IsMulticast() {
					b.d.errorf(n.pos, n.key, "%s is not a multicast address", a)
				} else {
					in.McastDstIP = a
				}
			}
		case "unicast_peer":
			for _, c := range n.children {
				if a, ok := b.addr(c, c.key); ok {
					in.UnicastPeers = append(in.UnicastPeers, a)
				}
				for i := 0; i < len(c.args); i++ {
					if t := c.args[i].text; (t == "min_ttl" || t == "max_ttl") && i+1 < len(c.args) {
						if _, ok := b.intIn(c, c.args[i+1].text, 0, 255); ok {
							in.CheckUnicastSrc = true
						}
						i++
					} else {
						b.d.warnf(c.pos, c.key, "unknown option %q ignored", t)
					}
				}
			}
		case "unicast_ttl":
			if v, ok := b.intArg(n, 0, 255); ok {
				in.UnicastTTL = v
			}
		case "check_unicast_src":
			in.CheckUnicastSrc = true
		case "nopreempt", "no_preempt":
			in.Preempt = false
		case "preempt":
			in.Preempt = true
		case "preempt_delay":
			if d, ok := b.timerArg(n, 0, 1000*time.Second); ok {
				in.PreemptDelay = d
			}
		case "accept":
			in.Accept = true
		case "no_accept":
			in.Accept = false
		case "track_interface":
			in.TrackInterfaces = append(in.TrackInterfaces, b.trackInterfaces(n)...)
		case "track_script":
			in.TrackScripts = append(in.TrackScripts, b.trackScripts(n)...)
		case "dont_track_primary":
			in.DontTrackPrimary = true
		case "use_vmac":
			in.UseVMAC = true
			for _, a := range n.args {
				if hw, err := net.ParseMAC(a.text); err == nil {
					in.VMACAddr = hw
				} else {
					in.VMACName = a.text
				}
			}
		case "vmac_xmit_base":
			in.VMACXmitBase = true
		case "garp_master_delay":
			if d, ok := b.timerArg(n, 0, 255*time.Second); ok {
				in.GarpMasterDelay = d
			}
		case "garp_master_repeat":
			if v, ok := b.intArg(n, 0, 255); ok {
				in.GarpMasterRepeat = v
			}
		case "garp_master_refresh":
			if d, ok := b.timerArg(n, 0, maxTimer); ok {
				in.GarpMasterRefresh = d
			}
		case "garp_master_refresh_repeat":
			if v, ok := b.intArg(n, 0, 255); ok {
				in.GarpMasterRefreshRepeat = v
			}
		case "garp_lower_prio_delay":
			if d, ok := b.timerArg(n, 0, 255*time.Second); ok {
				in.GarpLowerPrioDelay = d
			}
		case "garp_lower_prio_repeat":
			if v, ok := b.intArg(n, 0, 255); ok {
				in.GarpLowerPrioRepeat = v
			}
		case "down_timer_adverts":
			if v, ok := b.intArg(n, 1, 100); ok {
				in.DownTimerAdverts = v
			}
		case "lower_prio_no_advert":
			in.LowerPrioNoAdvert, _ = b.boolArg(n)
		case "higher_prio_send_advert":
			in.HigherPrioSendAdvert, _ = b.boolArg(n)
		case "skip_check_adv_addr":
			in.SkipCheckAdvAddr, _ = b.boolArg(n)
		case "strict_mode":
			in.StrictMode, _ = b.boolArg(n)
		case "promote_secondaries":
			in.PromoteSecondaries = true
		case "smtp_alert":
			in.SMTPAlert, _ = b.boolArg(n)
		case "debug":
			b.intArg(n, 0, 4)
		case "native_ipv6", "notify_priority_changes", "kernel_rx_buf_size", "linkbeat_use_polling",
			"track_src_ip", "unicast_fault_no_peer", "old_unicast_checksum", "vrf", "garp_extra_if",
			"use_vmac_addr", "lvs_sync_daemon_interface":
			// Accepted; no effect in xdpvip.
		case "virtual_routes", "virtual_rules", "track_file", "track_process", "track_bfd", "use_ipvlan":
			b.d.warnf(n.pos, n.key, "not supported by xdpvip, ignored")
		default:
			b.unknown(n, "vrrp_instance")
		}
	}
	b.inst[in] = seen
	b.cfg.Instances = append(b.cfg.Instances, in)
	b.instances[in.Name] = in
}

func (b *builder) authentication(blk *node, in *VRRPInstance) {
	for _, n := range blk.children {
		switch n.key {
		case "auth_type":
			if s, ok := b.arg(n); ok {
				switch strings.ToUpper(s) {
				case AuthPass:
					in.AuthType = AuthPass
				case AuthAH:
					in.AuthType = AuthAH
					b.d.warnf(n.pos, n.key, "IPsec AH is not supported by xdpvip: adverts are sent without authentication and a peer's AH adverts are dropped (auth_type)")
				default:
					b.d.errorf(n.pos, n.key, "%q is not PASS or AH", s)
				}
			}
		case "auth_pass":
			if s, ok := b.arg(n); ok {
				if len(s) > 8 {
					b.d.warnf(n.pos, n.key, "password longer than 8 characters, truncated to %q", s[:8])
					s = s[:8]
				}
				in.AuthPass = s
			}
		default:
			b.unknown(n, "authentication")
		}
	}
	if in.AuthType != AuthNone && in.AuthPass == "" {
		b.d.errorf(blk.pos, blk.key, "auth_type %s needs an auth_pass", in.AuthType)
	}
}

var vipScopes = toSet("global site link host nowhere")

// vips parses a virtual_ipaddress(_excluded) block.
func (b *builder) vips(blk *node) []VIP {
	var out []VIP
	for _, n := range blk.children {
		v := VIP{Pos: n.pos, Scope: "global"}
		if p, err := netip.ParsePrefix(n.key); err == nil {
			v.Prefix = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
		} else if a, err := netip.ParseAddr(n.key); err == nil {
			a = a.Unmap()
			v.Prefix = netip.PrefixFrom(a, a.BitLen())
		} else {
			b.d.errorf(n.pos, n.key, "not an IP address or address/prefix")
			continue
		}
		ok := true
		args := n.args
		val := func(i int) (string, bool) {
			if i+1 >= len(args) {
				b.d.errorf(n.pos, n.key, "%s needs a value", args[i].text)
				ok = false
				return "", false
			}
			return args[i+1].text, true
		}
		for i := 0; i < len(args) && ok; i++ {
			switch opt := args[i].text; opt {
			case "brd", "broadcast":
				if s, has := val(i); has {
					i++
					if s != "+" && s != "-" {
						if a, good := b.addr(n, s); good {
							v.Brd = a
						} else {
							ok = false
						}
					}
				}
			case "dev":
				if s, has := val(i); has {
					v.Dev, i = s, i+1
				}
			case "label":
				if s, has := val(i); has {
					v.Label, i = s, i+1
				}
			case "scope":
				if s, has := val(i); has {
					i++
					if !vipScopes[s] {
						b.d.errorf(n.pos, n.key, "scope %q is not one of global, site, link, host, nowhere", s)
						ok = false
					}
					v.Scope = s
				}
			case "peer":
				if s, has := val(i); has {
					i++
					if a, good := b.addr(n, strings.Split(s, "/")[0]); good {
						v.Peer = a
					} else {
						ok = false
					}
				}
			case "track_group", "preferred_lft":
				if _, has := val(i); has {
					i++
				}
			case "no_track":
				v.NoTrack = true
			case "use_vmac":
				v.UseVMAC = true
			case "home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin":
			default:
				b.d.warnf(n.pos, n.key, "unknown option %q ignored", opt)
			}
		}
		if ok {
			out = append(out, v)
		}
	}
	return out
}

// finishInstances applies global defaults and keepalived's per-instance
// rules once the whole file is read.
func (b *builder) finishInstances() {
	g := &b.cfg.Global
	for _, in := range b.cfg.Instances {
		seen := b.inst[in]
		pos := func(kw string) Pos {
			if p, ok := seen.set[kw]; ok {
				return p
			}
			return in.Pos
		}
		if !seen.has("strict_mode") {
			in.StrictMode = g.VRRPStrict
		}
		if !seen.has("skip_check_adv_addr") {
			in.SkipCheckAdvAddr = g.VRRPSkipCheckAdvAddr
		}
		if g.VRRPCheckUnicastSrc {
			in.CheckUnicastSrc = true
		}
		if !seen.has("garp_master_delay") {
			in.GarpMasterDelay = g.VRRPGarpMasterDelay
		}
		if !seen.has("garp_master_repeat") {
			in.GarpMasterRepeat = g.VRRPGarpMasterRepeat
		}
		if !seen.has("garp_master_refresh") {
			in.GarpMasterRefresh = g.VRRPGarpMasterRefresh
		}
		if !seen.has("garp_master_refresh_repeat") {
			in.GarpMasterRefreshRepeat = g.VRRPGarpMasterRefreshRepeat
		}
		if !seen.has("garp_lower_prio_delay") {
			in.GarpLowerPrioDelay = g.VRRPGarpLowerPrioDelay
		}
		if !seen.has("garp_lower_prio_repeat") {
			in.GarpLowerPrioRepeat = g.VRRPGarpLowerPrioRepeat
		}
		if !seen.has("down_timer_adverts") {
			in.DownTimerAdverts = g.VRRPDownTimerAdverts
		}
		if !seen.has("lower_prio_no_advert") {
			in.LowerPrioNoAdvert = g.VRRPLowerPrioNoAdvert
		}
		if !seen.has("higher_prio_send_advert") {
			in.HigherPrioSendAdvert = g.VRRPHigherPrioSendAdvert
		}
		if in.UseVMAC && in.VMACName == "" {
			in.VMACName = "vrrp." + strconv.Itoa(in.VRID)
		}

		if in.VRID == 0 && !seen.has("virtual_router_id") {
			b.d.errorf(in.Pos, "virtual_router_id", "instance %q has no virtual_router_id (1-255)", in.Name)
		}
		family := in.Family()
		// All VIPs of virtual_ipaddress share the instance's family.
		kept := in.VIPs[:0]
		for _, v := range in.VIPs {
			if familyOf(v.Prefix.Addr()) != family {
				b.d.errorf(v.Pos, v.Prefix.String(), "address family differs from the instance's first VIP (use virtual_ipaddress_excluded)")
				continue
			}
			kept = append(kept, v)
		}
		in.VIPs = kept
		if in.UnicastSrcIP.IsValid() && familyOf(in.UnicastSrcIP) != family {
			b.d.errorf(pos("unicast_src_ip"), "unicast_src_ip", "%s is not IPv%d like the instance", in.UnicastSrcIP, family)
		}
		for _, p := range in.UnicastPeers {
			if familyOf(p) != family {
				b.d.errorf(pos("unicast_peer"), "unicast_peer", "%s is not IPv%d like the instance", p, family)
			}
		}

		// Version: instance keyword, else global; IPv6 is always VRRPv3.
		if in.Version == 0 {
			in.Version = g.VRRPVersion
		}
		if family == 6 && in.Version == 2 {
			if seen.has("version") {
				b.d.warnf(pos("version"), "version", "IPv6 instance %q must use VRRPv3, using version 3", in.Name)
			}
			in.Version = 3
		}
		adv := seen.advertRaw
		if in.Version == 3 {
			if adv < 10*time.Millisecond || adv > 40950*time.Millisecond {
				b.d.errorf(pos("advert_int"), "advert_int", "%s is outside 0.01..40.95s allowed by VRRPv3", fmtSeconds(adv))
			} else {
				in.AdvertInt = adv.Truncate(10 * time.Millisecond)
			}
		} else {
			r := adv.Round(time.Second)
			if r < time.Second {
				r = time.Second
			}
			if r != adv {
				b.d.warnf(pos("advert_int"), "advert_int", "VRRPv2 advert_int must be whole seconds, %s rounded to %s", fmtSeconds(adv), fmtSeconds(r))
			}
			in.AdvertInt = r
		}

		if in.AuthType != AuthNone && in.Version == 3 {
			b.d.warnf(pos("authentication"), "authentication", "not supported with VRRPv3, ignored")
			in.AuthType, in.AuthPass = AuthNone, ""
		}
		if in.StrictMode {
			b.strict(in, pos)
		} else if !seen.has("accept") && !seen.has("no_accept") {
			in.Accept = true
		}
		if !in.Preempt && in.InitialState == StateMaster {
			b.d.warnf(pos("nopreempt"), "nopreempt", "has no effect with state MASTER")
		}
		in.TrackScripts = b.knownScripts(in.TrackScripts, pos("track_script"))
	}
	b.crossInstance()
}

// strict applies what vrrp_strict / strict_mode forbids, as keepalived does:
// ignore with a warning.
func (b *builder) strict(in *VRRPInstance, pos func(string) Pos) {
	seen := b.inst[in]
	if in.AuthType != AuthNone {
		b.d.warnf(pos("authentication"), "authentication", "not allowed with vrrp_strict, ignored")
		in.IgnoredAuthType, in.IgnoredAuthPass = in.AuthType, in.AuthPass
		in.AuthType, in.AuthPass = AuthNone, ""
	}
	if len(in.UnicastPeers) > 0 {
		b.d.warnf(pos("unicast_peer"), "unicast_peer", "not allowed with vrrp_strict, ignored (using multicast)")
		in.UnicastPeers = nil
	}
	if in.PreemptDelay != 0 {
		b.d.warnf(pos("preempt_delay"), "preempt_delay", "not allowed with vrrp_strict, ignored")
		in.PreemptDelay = 0
	}
	if len(in.VIPs) == 0 {
		b.d.errorf(in.Pos, "virtual_ipaddress", "instance %q has no VIP, which vrrp_strict forbids", in.Name)
	}
	if in.Version == 2 && seen.has("accept") {
		b.d.warnf(pos("accept"), "accept", "not allowed with vrrp_strict and VRRPv2, ignored")
	}
	if !seen.has("accept") && !seen.has("no_accept") || in.Version == 2 {
		in.Accept = in.Priority == 255
	}
	if in.InitialState == StateMaster && in.Priority != 255 {
		b.d.warnf(pos("state"), "state", "vrrp_strict allows MASTER only with priority 255, starting as BACKUP")
		in.InitialState = StateBackup
	}
	if in.VMACXmitBase {
		b.d.warnf(pos("vmac_xmit_base"), "vmac_xmit_base", "not allowed with vrrp_strict, ignored")
		in.VMACXmitBase = false
	}
}

// crossInstance checks rules between instances: VRID uniqueness per
// interface and family, VIPs in two instances, sync group members.
func (b *builder) crossInstance() {
	type key struct {
		ifname  string
		family  int
		vrid    int
		unicast bool
		mcast   netip.Addr
	}
	byKey := map[key]*VRRPInstance{}
	vipOwner := map[netip.Addr]*VRRPInstance{}
	for _, in := range b.cfg.Instances {
		if in.VRID != 0 {
			k := key{in.Interface, in.Family(), in.VRID, len(in.UnicastPeers) > 0, in.McastDstIP}
			if other, dup := byKey[k]; dup && !disjointPeers(in, other) {
				b.d.errorf(in.Pos, "virtual_router_id", "VRID %d (IPv%d) on interface %q is also used by instance %q at %s",
					in.VRID, k.family, in.Interface, other.Name, other.Pos)
			} else {
				byKey[k] = in
			}
		}
		for _, list := range [][]VIP{in.VIPs, in.ExcludedVIPs} {
			for _, v := range list {
				a := v.Prefix.Addr()
				if other, dup := vipOwner[a]; dup && other != in {
					b.d.warnf(v.Pos, a.String(), "VIP is also in instance %q", other.Name)
				} else {
					vipOwner[a] = in
				}
			}
		}
	}
	for _, g := range b.cfg.SyncGroups {
		g.TrackScripts = b.knownScripts(g.TrackScripts, g.Pos)
		var kept []string
		for _, m := range g.Members {
			in := b.instances[m]
			switch {
			case in == nil:
				b.d.warnf(g.Pos, "group", "sync group %q: no vrrp_instance %q, ignored", g.Name, m)
			case in.SyncGroup != "":
				b.d.errorf(g.Pos, "group", "instance %q is already in sync group %q", m, in.SyncGroup)
			default:
				in.SyncGroup = g.Name
				kept = append(kept, m)
			}
		}
		g.Members = kept
	}
}

// disjointPeers: two unicast instances may share a VRID on one interface
// when their peers do not overlap.
func disjointPeers(a, b *VRRPInstance) bool {
	if len(a.UnicastPeers) == 0 || len(b.UnicastPeers) == 0 {
		return false
	}
	for _, p := range a.UnicastPeers {
		for _, q := range b.UnicastPeers {
			if p == q {
				return false
			}
		}
	}
	return true
}

// knownScripts drops track_script entries naming no vrrp_script, with a
// warning, as keepalived does.
func (b *builder) knownScripts(list []TrackScript, pos Pos) []TrackScript {
	var kept []TrackScript
	for _, t := range list {
		if b.scripts[t.Name] == nil {
			b.d.warnf(pos, "track_script", "no vrrp_script %q, ignored", t.Name)
			continue
		}
		kept = append(kept, t)
	}
	return kept
}
