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
	// unicastPeerLines counts the lines of the unicast_peer blocks.
	unicastPeerLines int
	// peerPos is where each unicast peer was written.
	peerPos []Pos
	// firstFamily is the family of the first VIP or unicast peer in file
	// order: keepalived fixes the instance's family with it.
	firstFamily int
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
			// keepalived compares the value exactly: "master" is an
			// unknown state and means BACKUP.
			if st, ok := b.arg(n); ok {
				switch {
				case st == StateMaster:
					in.ConfiguredState = StateMaster
				case st == StateBackup && in.ConfiguredState == StateMaster:
					b.d.warnf(n.pos, n.key, "state already set to MASTER, BACKUP ignored (as keepalived does)")
				case st == StateBackup:
					in.ConfiguredState = StateBackup
				default:
					b.d.warnf(n.pos, n.key, "unknown state %q (keepalived wants MASTER or BACKUP, upper case), using BACKUP as keepalived does", st)
					in.ConfiguredState = StateBackup
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
			vs := b.vips(n)
			if seen.firstFamily == 0 && len(vs) > 0 {
				seen.firstFamily = familyOf(vs[0].Prefix.Addr())
			}
			in.VIPs = append(in.VIPs, vs...)
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
			seen.unicastPeerLines += len(n.children)
			for _, c := range n.children {
				ttl := TTLRange{Min: 0, Max: 255}
				for i := 0; i < len(c.args); i++ {
					if t := c.args[i].text; (t == "min_ttl" || t == "max_ttl") && i+1 < len(c.args) {
						if v, ok := b.intIn(c, c.args[i+1].text, 0, 255); ok {
							in.CheckUnicastSrc = true
							if t == "min_ttl" {
								ttl.Min = uint8(v)
							} else {
								ttl.Max = uint8(v)
							}
						}
						i++
					} else {
						b.d.warnf(c.pos, c.key, "unknown option %q ignored", t)
					}
				}
				if a, ok := b.addr(c, c.key); ok {
					if ttl.Min > ttl.Max {
						b.d.warnf(c.pos, c.key, "min_ttl %d > max_ttl %d: all its adverts will be discarded, as keepalived does", ttl.Min, ttl.Max)
					}
					in.UnicastPeers = append(in.UnicastPeers, a)
					in.UnicastPeerTTL = append(in.UnicastPeerTTL, ttl)
					seen.peerPos = append(seen.peerPos, c.pos)
					if seen.firstFamily == 0 {
						seen.firstFamily = familyOf(a)
					}
				}
			}
		case "unicast_ttl":
			if v, ok := b.intArg(n, 0, 255); ok {
				in.UnicastTTL = v
				if v == 0 {
					b.d.warnf(n.pos, n.key, "0: Linux sends no TTL 0 through a socket, xdpvip sends unicast adverts with TTL / hop limit 1")
				}
			}
		case "check_unicast_src":
			in.CheckUnicastSrc = true
		case "nopreempt": // keepalived 2.2.7 knows no "no_preempt"
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
			in.TrackInterfaces = b.trackInterfaces(n, in.TrackInterfaces)
		case "track_script":
			in.TrackScripts = b.trackScripts(n, in.TrackScripts)
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
			if v, ok := b.intArg(n, 0, maxGarpSeconds); ok {
				in.GarpMasterDelay = time.Duration(v) * time.Second
			}
		case "garp_master_repeat":
			if v, ok := b.repeatArg(n); ok {
				in.GarpMasterRepeat = v
			}
		case "garp_master_refresh":
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				in.GarpMasterRefresh = time.Duration(v) * time.Second
			}
		case "garp_master_refresh_repeat":
			if v, ok := b.repeatArg(n); ok {
				in.GarpMasterRefreshRepeat = v
			}
		case "garp_lower_prio_delay":
			if v, ok := b.intArg(n, 0, maxGarpSeconds); ok {
				in.GarpLowerPrioDelay = time.Duration(v) * time.Second
			}
		case "garp_lower_prio_repeat":
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
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
			"use_vmac_addr":
			// Accepted; no effect in xdpvip.
		case "lvs_sync_daemon_interface":
			b.d.warnf(n.pos, n.key, "deprecated in a vrrp_instance (keepalived: use global lvs_sync_daemon); no effect in xdpvip")
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
				switch s { // keepalived compares exactly: "pass" is unknown
				case AuthPass:
					in.AuthType = AuthPass
				case AuthAH:
					in.AuthType = AuthAH
					b.d.warnf(n.pos, n.key, "IPsec AH is not supported by xdpvip: adverts are sent without authentication and a peer's AH adverts are dropped (auth_type)")
				default:
					b.d.errorf(n.pos, n.key, "%q is not PASS or AH (upper case; keepalived ignores it and runs without authentication)", s)
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
		lftSet := false
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
			case "preferred_lft":
				if s, has := val(i); has {
					i++
					if s == "forever" {
						v.PreferredLft, lftSet = LifetimeForever, true
					} else if u, err := strconv.ParseUint(s, 10, 32); err == nil {
						v.PreferredLft, lftSet = uint32(u), true
					} else {
						b.d.errorf(n.pos, n.key, "preferred_lft %q is not a number of seconds (0..4294967295) or forever (keepalived reports it and ignores it)", s)
						ok = false
					}
				}
			case "track_group":
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
		switch {
		case !v.Prefix.Addr().Is6():
			v.PreferredLft = LifetimeForever
		case !lftSet && v.Prefix.Bits() == 128:
			v.PreferredLft = 0 // keepalived's default: deprecated
		case !lftSet:
			v.PreferredLft = LifetimeForever
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
		if !seen.has("down_timer_adverts") {
			in.DownTimerAdverts = g.VRRPDownTimerAdverts
		}
		if in.UseVMAC && in.VMACName == "" {
			in.VMACName = "vrrp." + strconv.Itoa(in.VRID)
		}

		if in.VRID == 0 && !seen.has("virtual_router_id") {
			b.d.errorf(in.Pos, "virtual_router_id", "instance %q has no virtual_router_id (1-255)", in.Name)
		}
		if in.Interface == "" && len(in.UnicastPeers) == 0 {
			b.d.errorf(in.Pos, "interface", "instance %q has no interface (only a unicast instance may omit it); keepalived cannot run it", in.Name)
		}
		// keepalived takes the instance's family from the first VIP or
		// unicast peer written, and ignores addresses of the other family.
		family := seen.firstFamily
		if family == 0 {
			family = in.Family()
		}
		kept := in.VIPs[:0]
		for _, v := range in.VIPs {
			if familyOf(v.Prefix.Addr()) != family {
				b.d.errorf(v.Pos, v.Prefix.String(), "address family differs from the instance's (IPv%d, from its first VIP or unicast peer): use virtual_ipaddress_excluded", family)
				continue
			}
			kept = append(kept, v)
		}
		in.VIPs = kept
		if in.UnicastSrcIP.IsValid() && familyOf(in.UnicastSrcIP) != family {
			b.d.errorf(pos("unicast_src_ip"), "unicast_src_ip", "%s is not IPv%d like the instance", in.UnicastSrcIP, family)
		}
		for i, p := range in.UnicastPeers {
			if familyOf(p) != family {
				b.d.errorf(seen.peerPos[i], "unicast_peer", "%s is not IPv%d like the instance", p, family)
			}
		}
		// keepalived ignores tracking the instance's own interface (its
		// state follows that interface anyway).
		ti := in.TrackInterfaces[:0]
		for _, t := range in.TrackInterfaces {
			if t.Name == in.Interface && in.Interface != "" {
				b.d.warnf(pos("track_interface"), "track_interface", "%s is the instance's own interface: ignored, as keepalived does", t.Name)
				continue
			}
			ti = append(ti, t)
		}
		in.TrackInterfaces = ti

		// Version: instance keyword, else global; IPv6 is always VRRPv3.
		if in.Version == 0 {
			in.Version = g.VRRPVersion
		}
		if family == 6 && in.Version == 2 {
			switch {
			case !seen.has("version"):
				in.Version = 3 // keepalived: IPv6 defaults to VRRPv3 whatever vrrp_version says
			case in.StrictMode:
				b.d.warnf(pos("version"), "version", "vrrp_strict: IPv6 instance %q cannot use VRRPv2, using version 3 as keepalived does", in.Name)
				in.Version = 3
			default:
				// keepalived runs VRRPv2 over IPv6 (not in any RFC).
				b.d.errorf(pos("version"), "version", "VRRPv2 over IPv6 is not supported by xdpvip (keepalived runs it outside vrrp_strict): use version 3")
			}
		}
		adv := seen.advertRaw
		if in.Version == 3 {
			if adv < 10*time.Millisecond || adv > 40950*time.Millisecond {
				b.d.errorf(pos("advert_int"), "advert_int", "%s is outside 0.01..40.95s allowed by VRRPv3", fmtSeconds(adv))
			} else {
				// keepalived rounds to the 10 ms the advert carries.
				r := (adv + 5*time.Millisecond).Truncate(10 * time.Millisecond)
				if r != adv {
					b.d.warnf(pos("advert_int"), "advert_int", "VRRPv3 advert_int is in units of 10ms, %s rounded to %s as keepalived does", fmtSeconds(adv), fmtSeconds(r))
				}
				in.AdvertInt = r
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

		b.completeInstance(in, seen, family, pos)
	}
	b.crossInstance()
}

// completeInstance applies keepalived's corrections of
// vrrp_complete_instance (keepalived/vrrp/vrrp.c, 2.2.7) in its order,
// each with a warning, or refuses where keepalived cannot run the
// instance (or xdpvip cannot give it keepalived's meaning).
func (b *builder) completeInstance(in *VRRPInstance, seen *instanceSeen, family int, pos func(string) Pos) {
	g := &b.cfg.Global
	if len(in.VIPs) == 0 {
		switch {
		case in.StrictMode:
			b.d.errorf(in.Pos, "virtual_ipaddress", "instance %q has no VIP, which vrrp_strict forbids", in.Name)
		case in.Version == 3:
			b.d.errorf(in.Pos, "virtual_ipaddress", "instance %q has no VIP; keepalived refuses a VRRPv3 instance without one", in.Name)
		default:
			b.d.warnf(in.Pos, "virtual_ipaddress", "instance %q has no VIP; at least one is sensible", in.Name)
		}
	}
	// Priority and initial state derive from each other when one is unset.
	if !seen.has("priority") {
		if in.ConfiguredState == StateMaster {
			in.Priority = 255
		} else {
			in.Priority = 100
		}
	}
	in.InitialState = in.ConfiguredState
	switch {
	case in.InitialState == "":
		in.InitialState = StateBackup
		if in.Priority == 255 {
			in.InitialState = StateMaster
		}
	case in.StrictMode && (in.InitialState == StateMaster) != (in.Priority == 255):
		want := StateBackup
		if in.Priority == 255 {
			want = StateMaster
		}
		b.d.warnf(pos("state"), "state", "vrrp_strict: state MASTER must match being address owner (priority 255), starting as %s as keepalived does", want)
		in.InitialState = want
	}
	switch {
	case in.AuthType != AuthNone && in.StrictMode:
		b.d.warnf(pos("authentication"), "authentication", "not allowed with vrrp_strict, ignored")
		in.IgnoredAuthType, in.IgnoredAuthPass = in.AuthType, in.AuthPass
		in.AuthType, in.AuthPass = AuthNone, ""
	case in.AuthType != AuthNone && in.Version == 3:
		b.d.warnf(pos("authentication"), "authentication", "not supported with VRRPv3, ignored")
		in.IgnoredAuthType, in.IgnoredAuthPass = in.AuthType, in.AuthPass
		in.AuthType, in.AuthPass = AuthNone, ""
	case in.AuthType == AuthAH && family == 6:
		b.d.warnf(pos("authentication"), "authentication", "AH cannot be used with IPv6, ignored")
		in.IgnoredAuthType, in.IgnoredAuthPass = in.AuthType, in.AuthPass
		in.AuthType, in.AuthPass = AuthNone, ""
	case in.AuthType == AuthAH && in.InitialState == StateMaster && in.Priority != 255:
		b.d.warnf(pos("state"), "state", "initial state MASTER is incompatible with AH authentication, starting as BACKUP as keepalived does")
		in.InitialState = StateBackup
	}
	// vrrp_strict with unicast peers: keepalived 2.2.7 runs unicast (its
	// check needs interface flags it has not read yet when it checks), so
	// xdpvip keeps the peers too.
	if len(in.UnicastPeers) == 0 && b.unicastPeerBlockEmpty(in) {
		for _, kw := range []string{"unicast_peer", "unicast_src_ip", "unicast_ttl"} {
			if seen.has(kw) {
				b.d.warnf(pos(kw), kw, "a unicast keyword without unicast peers: using multicast, as keepalived does (deprecated)")
				break
			}
		}
	}
	if in.McastDstIP.IsValid() && len(in.UnicastPeers) > 0 {
		b.d.warnf(pos("mcast_dst_ip"), "mcast_dst_ip", "ignored with unicast peers, as keepalived does")
		in.McastDstIP = netip.Addr{}
	}
	if family == 6 && len(in.UnicastPeers) == 0 && len(in.VIPs) > 0 && in.StrictMode && !in.VIPs[0].Prefix.Addr().IsLinkLocalUnicast() {
		b.d.warnf(in.VIPs[0].Pos, in.VIPs[0].Prefix.String(), "vrrp_strict: the first IPv6 VIP must be link local")
	}
	// One advert carries at most 255 addresses (8-bit count) and must fit
	// a 1500-byte frame: keepalived moves the excess to
	// virtual_ipaddress_excluded; xdpvip refuses, so that the file says it.
	if max := maxAdvertAddrs(family, in.Version, in.AuthType); len(in.VIPs) > max {
		b.d.errorf(in.VIPs[max].Pos, "virtual_ipaddress", "instance %q has %d VIPs, more than one advert carries (%d for IPv%d at MTU 1500): put the rest in virtual_ipaddress_excluded",
			in.Name, len(in.VIPs), max, family)
	}
	if in.Priority == 255 && !in.Preempt {
		b.d.warnf(pos("nopreempt"), "nopreempt", "incompatible with priority 255, cleared as keepalived does")
		in.Preempt = true
	}
	if in.InitialState == StateMaster {
		if !in.Preempt {
			b.d.warnf(pos("nopreempt"), "nopreempt", "does not work with initial state MASTER, cleared as keepalived does")
			in.Preempt = true
		}
		if in.PreemptDelay != 0 {
			b.d.warnf(pos("preempt_delay"), "preempt_delay", "does not work with initial state MASTER, cleared as keepalived does")
			in.PreemptDelay = 0
		}
	}
	if in.PreemptDelay != 0 && in.StrictMode {
		b.d.warnf(pos("preempt_delay"), "preempt_delay", "not allowed with vrrp_strict, ignored")
		in.PreemptDelay = 0
	}
	if in.PreemptDelay != 0 && !in.Preempt {
		b.d.warnf(pos("preempt_delay"), "preempt_delay", "incompatible with nopreempt, ignored as keepalived does")
		in.PreemptDelay = 0
	}
	if in.StrictMode && in.DownTimerAdverts != 3 {
		b.d.warnf(pos("down_timer_adverts"), "down_timer_adverts", "not allowed with vrrp_strict, reset to 3")
		in.DownTimerAdverts = 3
	}
	// Strict mode forbids lower-priority GARPs and adverts to lower
	// priorities; otherwise the globals are the defaults.
	strictDefault := func(kw string, global int, bad func() bool, reset func(), set func(int)) {
		switch {
		case !seen.has(kw) && in.StrictMode:
			reset()
		case !seen.has(kw):
			set(global)
		case in.StrictMode && bad():
			b.d.warnf(pos(kw), kw, "not allowed with vrrp_strict, reset")
			reset()
		}
	}
	strictDefault("garp_lower_prio_repeat", g.VRRPGarpLowerPrioRepeat, func() bool { return in.GarpLowerPrioRepeat != 0 },
		func() { in.GarpLowerPrioRepeat = 0 }, func(v int) { in.GarpLowerPrioRepeat = v })
	strictDefault("garp_lower_prio_delay", int(g.VRRPGarpLowerPrioDelay), func() bool { return in.GarpLowerPrioDelay != 0 },
		func() { in.GarpLowerPrioDelay = 0 }, func(v int) { in.GarpLowerPrioDelay = time.Duration(v) })
	strictDefault("lower_prio_no_advert", boolInt(g.VRRPLowerPrioNoAdvert), func() bool { return !in.LowerPrioNoAdvert },
		func() { in.LowerPrioNoAdvert = true }, func(v int) { in.LowerPrioNoAdvert = v != 0 })
	strictDefault("higher_prio_send_advert", boolInt(g.VRRPHigherPrioSendAdvert), func() bool { return in.HigherPrioSendAdvert },
		func() { in.HigherPrioSendAdvert = false }, func(v int) { in.HigherPrioSendAdvert = v != 0 })
	if in.StrictMode {
		b.strict(in, pos)
	} else if !seen.has("accept") && !seen.has("no_accept") {
		in.Accept = true
	}
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// maxAdvertAddrs is how many addresses one advert carries: what fits a
// 1500-byte frame after the headers (keepalived's DEFAULT_MTU), at most
// 255 (the count field is 8 bits).
func maxAdvertAddrs(family, version int, auth string) int {
	const mtu, eth, vrrpHdr = 1500, 14, 8
	var n int
	if family == 6 {
		n = (mtu - eth - 40 - vrrpHdr) / 16
	} else {
		hdr := eth + 20 + vrrpHdr
		if version == 2 {
			hdr += 8 // authentication data
			if auth == AuthAH {
				hdr += 24
			}
		}
		n = (mtu - hdr) / 4
	}
	return min(n, 255)
}

// unicastPeerBlockEmpty reports whether the instance's unicast_peer
// block(s) listed no address at all (rather than only bad ones).
func (b *builder) unicastPeerBlockEmpty(in *VRRPInstance) bool {
	return b.inst[in].unicastPeerLines == 0
}

// strict applies the rest of what vrrp_strict / strict_mode forbids, as
// keepalived does: ignore with a warning.
func (b *builder) strict(in *VRRPInstance, pos func(string) Pos) {
	seen := b.inst[in]
	if in.Version == 2 && seen.has("accept") {
		b.d.warnf(pos("accept"), "accept", "not allowed with vrrp_strict and VRRPv2, ignored")
	}
	if !seen.has("accept") && !seen.has("no_accept") || in.Version == 2 {
		in.Accept = in.Priority == 255
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
					b.d.warnf(v.Pos, a.String(), "VIP is also in instance %q (keepalived accepts this silently; both instances may hold it at once)", other.Name)
				} else {
					vipOwner[a] = in
				}
			}
		}
	}
	b.syncGroups()
}

// syncGroups links instances to their sync group and applies keepalived's
// rules (vrrp_sync_set_group and the end of vrrp_complete_init): a name
// that is no instance is ignored, an instance in a second group is
// refused, a group left empty is removed, and a group starts MASTER only
// when every member is MASTER and address owner: otherwise every member
// configured MASTER starts as BACKUP.
func (b *builder) syncGroups() {
	var groups []*SyncGroup
	for _, g := range b.cfg.SyncGroups {
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
		switch len(kept) {
		case 0:
			b.d.warnf(g.Pos, "vrrp_sync_group", "sync group %q has no instance, removed (as keepalived does)", g.Name)
			continue
		case 1:
			b.d.warnf(g.Pos, "vrrp_sync_group", "sync group %q has only one instance; this probably is not what you want", g.Name)
		}
		groups = append(groups, g)
		master, backup := false, false
		for _, m := range kept {
			in := b.cfg.Instance(m)
			master = master || in.InitialState == StateMaster
			backup = backup || in.InitialState == StateBackup || in.Priority != 255
		}
		if master && backup {
			for _, m := range kept {
				if in := b.cfg.Instance(m); in.InitialState == StateMaster {
					b.d.warnf(in.Pos, "state", "instance %q of sync group %q starts as BACKUP: a sync group starts MASTER only when all its instances are MASTER with priority 255 (as keepalived does)", in.Name, g.Name)
					in.InitialState = StateBackup
				}
			}
		}
	}
	b.cfg.SyncGroups = groups
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
