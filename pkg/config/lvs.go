package config

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// inherited holds the options a virtual server passes to its real servers
// and a real server to its checkers; nil fields were not written.
type inherited struct {
	connectTimeout, delayBeforeRetry, warmup, delayLoop *time.Duration
	retry                                               *int
	alpha, inhibit                                      *bool
	virtualhost                                         *string
}

// common parses a keyword shared by virtual servers, real servers and
// checkers; it reports whether n was one.
func (b *builder) common(n *node, h *inherited) bool {
	dur := func(lo time.Duration) *time.Duration {
		if d, ok := b.timerArg(n, lo, maxTimer); ok {
			return &d
		}
		return nil
	}
	switch n.key {
	case "connect_timeout":
		h.connectTimeout = dur(time.Microsecond)
	case "delay_before_retry":
		h.delayBeforeRetry = dur(0)
	case "warmup":
		h.warmup = dur(0)
	case "delay_loop":
		h.delayLoop = dur(time.Microsecond)
	case "retry", "nb_get_retry":
		if n.key == "nb_get_retry" {
			b.d.warnf(n.pos, n.key, "deprecated, use retry (read as retry)")
		}
		if v, ok := b.intArg(n, 0, 1<<20); ok {
			h.retry = &v
		}
	case "alpha":
		if v, ok := b.boolArg(n); ok {
			h.alpha = &v
		}
	case "inhibit_on_failure":
		if v, ok := b.boolArg(n); ok {
			h.inhibit = &v
		}
	case "virtualhost":
		if s, ok := b.arg(n); ok {
			h.virtualhost = &s
		}
	default:
		return false
	}
	return true
}

func pick[T any](def T, chain ...*T) T {
	for _, p := range chain {
		if p != nil {
			return *p
		}
	}
	return def
}

// method parses lvs_method / lb_kind "NAT|DR|TUN [type ...]".
func (b *builder) method(n *node) (string, bool) {
	s, ok := b.arg(n)
	if !ok {
		return "", false
	}
	switch m := strings.ToUpper(s); m {
	case MethodNAT, MethodDR, MethodTUN:
		return m, true
	}
	b.d.errorf(n.pos, n.key, "%q is not one of NAT, DR, TUN", s)
	return "", false
}

// ---- virtual_server_group ----

func (b *builder) virtualServerGroup(blk *node) {
	if len(blk.args) == 0 {
		b.d.errorf(blk.pos, blk.key, "needs a name")
		return
	}
	g := &VirtualServerGroup{Pos: blk.pos, Name: blk.args[0].text}
	if b.cfg.VirtualServerGroup(g.Name) != nil {
		b.d.errorf(blk.pos, blk.key, "%q is defined twice", g.Name)
		return
	}
	for _, n := range blk.children {
		e := VirtualServerGroupEntry{Pos: n.pos}
		if n.key == "fwmark" {
			v, ok := b.intArg(n, 1, 1<<32-1)
			if !ok {
				continue
			}
			e.FWMark = uint32(v)
			if len(n.args) > 1 {
				switch n.args[1].text {
				case "inet":
					e.Family = 4
				case "inet6":
					e.Family = 6
				default:
					b.d.errorf(n.pos, n.key, "%q is not inet or inet6", n.args[1].text)
					continue
				}
			}
			g.Entries = append(g.Entries, e)
			continue
		}
		first, last, ok := parseRange(n.key)
		if !ok {
			b.d.errorf(n.pos, n.key, "not an address, address range or fwmark")
			continue
		}
		e.First, e.Last = first, last
		if len(n.args) > 0 {
			if e.Port, ok = b.port(n, n.args[0].text); !ok {
				continue
			}
		}
		g.Entries = append(g.Entries, e)
	}
	b.cfg.VirtualServerGroups = append(b.cfg.VirtualServerGroups, g)
}

// parseRange parses A, A-B (last part of the address, or a whole address)
// and A/nn.
func parseRange(s string) (first, last netip.Addr, ok bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		p = p.Masked()
		first = p.Addr()
		last = first
		for i := p.Bits(); i < first.BitLen(); i++ {
			b := last.AsSlice()
			b[i/8] |= 0x80 >> (i % 8)
			last, _ = netip.AddrFromSlice(b)
		}
		return first, last, true
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil {
		return first, last, false
	}
	if !isRange {
		return first, first, true
	}
	if a, err := netip.ParseAddr(hi); err == nil {
		last = a
	} else {
		// Only the last part changes: 192.168.200.1-10, 2001:db8::1-ff.
		sep := "."
		base := 10
		if first.Is6() {
			sep, base = ":", 16
		}
		v, err := strconv.ParseUint(hi, base, 16)
		if err != nil {
			return first, last, false
		}
		str := first.String()
		i := strings.LastIndex(str, sep)
		last, err = netip.ParseAddr(str[:i+1] + strconv.FormatUint(v, base))
		if err != nil {
			return first, last, false
		}
	}
	if last.BitLen() != first.BitLen() || last.Less(first) {
		return first, last, false
	}
	return first, last, true
}

// ---- virtual_server ----

func (b *builder) virtualServer(blk *node) {
	vs := &VirtualServer{Pos: blk.pos, DelayLoop: 60 * time.Second, Scheduler: "wlc", Method: MethodNAT,
		Protocol: "TCP", Quorum: 1}
	args := blk.args
	switch {
	case len(args) == 0:
		b.d.errorf(blk.pos, blk.key, "needs IP PORT, fwmark N or group NAME")
		return
	case args[0].text == "fwmark":
		if len(args) < 2 {
			b.d.errorf(blk.pos, blk.key, "fwmark needs a number")
			return
		}
		v, ok := b.intIn(blk, args[1].text, 1, 1<<32-1)
		if !ok {
			return
		}
		vs.FWMark = uint32(v)
	case args[0].text == "group":
		if len(args) < 2 {
			b.d.errorf(blk.pos, blk.key, "group needs a name")
			return
		}
		vs.Group = args[1].text
	default:
		a, ok := b.addr(blk, args[0].text)
		if !ok {
			return
		}
		vs.Addr = a
		if len(args) > 1 {
			if vs.Port, ok = b.port(blk, args[1].text); !ok {
				return
			}
		}
	}
	var h inherited
	type rsSeen struct {
		rs       *RealServer
		h        inherited
		checkers []*Checker
		ch       []inherited
	}
	var rss []rsSeen
	seen := map[string]Pos{}
	for _, n := range blk.children {
		seen[n.key] = n.pos
		if b.common(n, &h) {
			continue
		}
		switch n.key {
		case "lb_algo", "lvs_sched":
			if s, ok := b.arg(n); ok {
				s = strings.ToLower(s)
				if !contains(Schedulers, s) {
					b.d.errorf(n.pos, n.key, "%q is not one of %s", s, strings.Join(Schedulers, " "))
				} else {
					vs.Scheduler = s
				}
			}
		case "lb_kind", "lvs_method":
			if m, ok := b.method(n); ok {
				vs.Method = m
			}
		case "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback":
			vs.SchedFlags = append(vs.SchedFlags, n.key)
		case "ops":
			vs.OPS = true
		case "persistence_engine":
			vs.PersistenceEngine, _ = b.arg(n)
		case "persistence_timeout":
			vs.PersistenceTimeout = 360 * time.Second
			if len(n.args) > 0 {
				if v, ok := b.intArg(n, 1, 1<<31-1); ok {
					vs.PersistenceTimeout = time.Duration(v) * time.Second
				}
			}
		case "persistence_granularity":
			if s, ok := b.arg(n); ok {
				if bits, ok := parseGranularity(s); ok {
					vs.PersistenceGranularity = bits
				} else {
					b.d.errorf(n.pos, n.key, "%q is not a netmask or prefix length", s)
				}
			}
		case "protocol":
			if s, ok := b.arg(n); ok {
				switch p := strings.ToUpper(s); p {
				case "TCP", "UDP", "SCTP":
					vs.Protocol = p
				default:
					b.d.errorf(n.pos, n.key, "%q is not TCP, UDP or SCTP", s)
				}
			}
		case "announce": // xdpvip extension, bgp.go
			b.announce(n, vs)
		case "ha_suspend":
			vs.HASuspend = true
		case "smtp_alert":
			vs.SMTPAlert, _ = b.boolArg(n)
		case "omega":
			vs.Omega = true
		case "quorum":
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				vs.Quorum = v
			}
		case "hysteresis":
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				vs.Hysteresis = v
			}
		case "quorum_up":
			vs.QuorumUp, _ = b.scriptArg(n)
		case "quorum_down":
			vs.QuorumDown, _ = b.scriptArg(n)
		case "ip_family":
			if s, ok := b.arg(n); ok {
				switch s {
				case "inet":
					vs.IPFamily = 4
				case "inet6":
					vs.IPFamily = 6
				default:
					b.d.errorf(n.pos, n.key, "%q is not inet or inet6", s)
				}
			}
		case "sorry_server":
			if len(n.args) == 0 {
				b.d.errorf(n.pos, n.key, "needs an address")
				continue
			}
			a, ok := b.addr(n, n.args[0].text)
			if !ok {
				continue
			}
			ss := &SorryServer{Addr: a}
			if len(n.args) > 1 {
				if ss.Port, ok = b.port(n, n.args[1].text); !ok {
					continue
				}
			}
			vs.SorryServer = ss
		case "sorry_server_inhibit":
			vs.SorryServerInhibit = true
		case "sorry_server_lvs_method":
			if m, ok := b.method(n); ok && vs.SorryServer != nil {
				vs.SorryServer.Method = m
			}
		case "snmp_name":
		case "real_server":
			if !b.needBlock(n) {
				continue
			}
			rs, rh, checkers, ch := b.realServer(n)
			if rs != nil {
				rss = append(rss, rsSeen{rs, rh, checkers, ch})
			}
		default:
			b.unknown(n, "virtual_server")
		}
	}
	if vs.FWMark == 0 && vs.Group == "" && vs.Port == 0 && vs.PersistenceTimeout == 0 {
		b.d.errorf(blk.pos, blk.key, "%s: the port can be omitted only for a persistent service", vs.Addr)
	}
	if vs.Group != "" && b.cfg.VirtualServerGroup(vs.Group) == nil {
		b.d.errorf(blk.pos, blk.key, "no virtual_server_group %q", vs.Group)
	}
	if vs.SorryServer != nil && vs.SorryServer.Method == "" {
		vs.SorryServer.Method = vs.Method
	}
	// Resolve what real servers and checkers inherit.
	vs.DelayLoop = pick(vs.DelayLoop, h.delayLoop)
	vs.ConnectTimeout = pick(5*time.Second, h.connectTimeout)
	vs.Retry = pick(1, h.retry)
	vs.DelayBeforeRetry = pick(time.Second, h.delayBeforeRetry)
	vs.Warmup = pick(vs.DelayLoop, h.warmup)
	vs.Alpha = pick(false, h.alpha)
	vs.InhibitOnFailure = pick(false, h.inhibit)
	vs.Virtualhost = pick("", h.virtualhost)
	vsFamily := 0
	if vs.Addr.IsValid() {
		vsFamily = familyOf(vs.Addr)
	}
	for _, r := range rss {
		rs := r.rs
		if rs.Method == "" {
			rs.Method = vs.Method
		}
		if vsFamily != 0 && familyOf(rs.Addr) != vsFamily && rs.Method != MethodTUN {
			b.d.errorf(rs.Pos, "real_server", "%s is not IPv%d like the virtual server (only TUN may differ)", rs.Addr, vsFamily)
			continue
		}
		if rs.Port == 0 {
			rs.Port = vs.Port
		}
		rs.DelayLoop = pick(vs.DelayLoop, r.h.delayLoop, h.delayLoop)
		rs.ConnectTimeout = pick(vs.ConnectTimeout, r.h.connectTimeout, h.connectTimeout)
		rs.Retry = pick(vs.Retry, r.h.retry, h.retry)
		rs.DelayBeforeRetry = pick(vs.DelayBeforeRetry, r.h.delayBeforeRetry, h.delayBeforeRetry)
		rs.Warmup = pick(rs.DelayLoop, r.h.warmup, h.warmup)
		rs.Alpha = pick(false, r.h.alpha, h.alpha)
		rs.InhibitOnFailure = pick(false, r.h.inhibit, h.inhibit)
		rs.Virtualhost = pick("", r.h.virtualhost, h.virtualhost)
		for i, c := range r.checkers {
			ch := r.ch[i]
			c.DelayLoop = pick(rs.DelayLoop, ch.delayLoop, r.h.delayLoop, h.delayLoop)
			c.ConnectTimeout = pick(rs.ConnectTimeout, ch.connectTimeout, r.h.connectTimeout, h.connectTimeout)
			retryDef, dbrDef := 1, time.Second
			switch c.Kind {
			case DNSCheck:
				retryDef, dbrDef = 3, c.DelayLoop
			case MiscCheck:
				retryDef = 0
			case HTTPGet, SSLGet:
				dbrDef = 3 * time.Second
			}
			c.Retry = pick(retryDef, ch.retry, r.h.retry, h.retry)
			c.DelayBeforeRetry = pick(dbrDef, ch.delayBeforeRetry, r.h.delayBeforeRetry, h.delayBeforeRetry)
			c.Warmup = pick(c.DelayLoop, ch.warmup, r.h.warmup, h.warmup)
			c.Alpha = pick(false, ch.alpha, r.h.alpha, h.alpha)
			c.Virtualhost = pick("", ch.virtualhost, r.h.virtualhost, h.virtualhost)
			for j := range c.URLs {
				if c.URLs[j].Virtualhost == "" {
					c.URLs[j].Virtualhost = c.Virtualhost
				}
			}
			if !c.ConnectIP.IsValid() {
				c.ConnectIP = rs.Addr
			}
			if c.ConnectPort == 0 {
				c.ConnectPort = rs.Port
			}
			if c.Kind == MiscCheck && c.MiscTimeout == 0 {
				c.MiscTimeout = c.DelayLoop
			}
			needsPort := c.Kind == TCPCheck || c.Kind == HTTPGet || c.Kind == SSLGet || c.Kind == SMTPCheck || c.Kind == UDPCheck
			if needsPort && c.ConnectPort == 0 {
				b.d.errorf(c.Pos, string(c.Kind), "no port to check: set connect_port or the real server's port")
			}
			rs.Checkers = append(rs.Checkers, c)
		}
		vs.RealServers = append(vs.RealServers, rs)
	}
	if len(vs.RealServers) == 0 && vs.SorryServer == nil {
		b.d.warnf(blk.pos, blk.key, "%s has no real_server", vs.Key())
	}
	b.cfg.VirtualServers = append(b.cfg.VirtualServers, vs)
}

// parseGranularity accepts a netmask (255.255.255.0) or a prefix length.
func parseGranularity(s string) (int, bool) {
	if v, err := strconv.Atoi(s); err == nil && v >= 1 && v <= 128 {
		return v, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return 0, false
	}
	bits, ones := 0, true
	for _, x := range a.AsSlice() {
		for i := 7; i >= 0; i-- {
			set := x&(1<<i) != 0
			if set && !ones {
				return 0, false
			}
			if set {
				bits++
			} else {
				ones = false
			}
		}
	}
	return bits, bits > 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---- real_server ----

func (b *builder) realServer(blk *node) (*RealServer, inherited, []*Checker, []inherited) {
	var h inherited
	if len(blk.args) == 0 {
		b.d.errorf(blk.pos, blk.key, "needs an address")
		return nil, h, nil, nil
	}
	a, ok := b.addr(blk, blk.args[0].text)
	if !ok {
		return nil, h, nil, nil
	}
	rs := &RealServer{Pos: blk.pos, Addr: a, Weight: 1}
	if len(blk.args) > 1 {
		if rs.Port, ok = b.port(blk, blk.args[1].text); !ok {
			return nil, h, nil, nil
		}
	}
	var checkers []*Checker
	var ch []inherited
	for _, n := range blk.children {
		if b.common(n, &h) {
			continue
		}
		switch n.key {
		case "weight":
			if v, ok := b.intArg(n, 0, 65535); ok {
				rs.Weight = v
			}
		case "lvs_method", "lb_kind":
			if m, ok := b.method(n); ok {
				rs.Method = m
			}
		case "notify_up":
			rs.NotifyUp, _ = b.scriptArg(n)
		case "notify_down":
			rs.NotifyDown, _ = b.scriptArg(n)
		case "uthreshold":
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				rs.UThreshold = v
			}
		case "lthreshold":
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				rs.LThreshold = v
			}
		case "smtp_alert":
			rs.SMTPAlert, _ = b.boolArg(n)
		case "snmp_name":
		case "track_file":
			b.d.warnf(n.pos, n.key, "not supported by xdpvip, ignored")
		case string(TCPCheck), string(HTTPGet), string(SSLGet), string(MiscCheck), string(DNSCheck),
			string(SMTPCheck), string(UDPCheck), string(PingCheck), string(BFDCheck), string(FileCheck):
			if !b.needBlock(n) {
				continue
			}
			if c, ci := b.checker(n); c != nil {
				checkers = append(checkers, c)
				ch = append(ch, ci)
			}
		default:
			b.unknown(n, "real_server")
		}
	}
	if rs.LThreshold != 0 && rs.UThreshold != 0 && rs.LThreshold > rs.UThreshold {
		b.d.errorf(blk.pos, "lthreshold", "lthreshold %d is above uthreshold %d", rs.LThreshold, rs.UThreshold)
	}
	return rs, h, checkers, ch
}

// ---- checkers ----

var dnsTypes = toSet("A NS CNAME SOA MX TXT AAAA")

func (b *builder) checker(blk *node) (*Checker, inherited) {
	c := &Checker{Pos: blk.pos, Kind: CheckerKind(blk.key)}
	var h inherited
	switch c.Kind {
	case DNSCheck:
		c.DNSType, c.DNSName = "SOA", "."
	case UDPCheck:
		c.MaxReplyLength = 255
	case HTTPGet, SSLGet:
		c.HTTPProtocol = "1.0"
	}
	for _, n := range blk.children {
		if b.common(n, &h) {
			continue
		}
		if b.checkerOption(n, c) {
			continue
		}
		b.unknown(n, blk.key)
	}
	switch c.Kind {
	case MiscCheck:
		if c.MiscPath.IsZero() {
			b.d.errorf(blk.pos, blk.key, "needs misc_path")
			return nil, h
		}
	case HTTPGet, SSLGet:
		if len(c.URLs) == 0 {
			b.d.errorf(blk.pos, blk.key, "needs at least one url { path ... }")
			return nil, h
		}
	}
	return c, h
}

// checkerOption parses connection and checker-specific keywords.
func (b *builder) checkerOption(n *node, c *Checker) bool {
	k := c.Kind
	http := k == HTTPGet || k == SSLGet
	switch {
	case n.key == "connect_ip":
		c.ConnectIP, _ = b.addrArg(n)
	case n.key == "connect_port":
		c.ConnectPort, _ = b.portArg(n)
	case n.key == "bindto":
		c.BindTo, _ = b.addrArg(n)
	case n.key == "bind_if":
		c.BindIf, _ = b.arg(n)
	case n.key == "bind_port":
		c.BindPort, _ = b.portArg(n)
	case n.key == "fwmark":
		if v, ok := b.intArg(n, 0, 1<<32-1); ok {
			c.FWMark = uint32(v)
		}
	case n.key == "log_all_failures":
		c.LogAllFailures, _ = b.boolArg(n)
	case http && n.key == "url":
		c.URLs = append(c.URLs, b.url(n))
	case http && n.key == "http_protocol":
		if s, ok := b.arg(n); ok {
			switch s {
			case "1.0", "1.0C", "1.0c", "1.1":
				c.HTTPProtocol = strings.ToUpper(s)
			default:
				b.d.errorf(n.pos, n.key, "%q is not 1.0, 1.0C or 1.1", s)
			}
		}
	case http && n.key == "fast_recovery":
		c.FastRecovery, _ = b.boolArg(n)
	case k == SSLGet && n.key == "enable_sni":
		c.EnableSNI = true
	case k == MiscCheck && n.key == "misc_path":
		c.MiscPath, _ = b.scriptArg(n)
	case k == MiscCheck && n.key == "misc_timeout":
		if d, ok := b.timerArg(n, time.Microsecond, maxTimer); ok {
			c.MiscTimeout = d
		}
	case k == MiscCheck && n.key == "misc_dynamic":
		c.MiscDynamic = true
	case k == MiscCheck && n.key == "user":
		if u, ok := b.arg(n); ok {
			c.MiscPath.User = u
			if len(n.args) > 1 {
				c.MiscPath.Group = n.args[1].text
			}
		}
	case k == DNSCheck && n.key == "type":
		if s, ok := b.arg(n); ok {
			if !dnsTypes[strings.ToUpper(s)] {
				b.d.errorf(n.pos, n.key, "%q is not one of A NS CNAME SOA MX TXT AAAA", s)
			} else {
				c.DNSType = strings.ToUpper(s)
			}
		}
	case k == DNSCheck && n.key == "name":
		c.DNSName, _ = b.arg(n)
	case k == SMTPCheck && n.key == "helo_name":
		c.HeloName, _ = b.arg(n)
	case k == UDPCheck && n.key == "payload":
		if p, ok := b.hexArg(n, false); ok {
			c.Payload, _ = hex.DecodeString(p)
		}
	case k == UDPCheck && n.key == "require_reply":
		c.RequireReply = true
		if len(n.args) > 0 {
			c.ReplyPattern, _ = b.hexArg(n, true)
		}
	case k == UDPCheck && n.key == "min_reply_length":
		if v, ok := b.intArg(n, 0, 65535); ok {
			c.MinReplyLength = v
		}
	case k == UDPCheck && n.key == "max_reply_length":
		if v, ok := b.intArg(n, 0, 65535); ok {
			c.MaxReplyLength = v
		}
	case k == BFDCheck && n.key == "name":
		c.BFDName, _ = b.arg(n)
	case k == FileCheck && n.key == "track_file":
		c.TrackFile, _ = b.arg(n)
	case k == FileCheck && (n.key == "dynamic" || n.key == "weight"):
	default:
		return false
	}
	return true
}

// hexArg normalises keepalived's free-form HEX_STR ("Ab12f 3 456") to
// an even-length lower-case hex string: each word is a run of bytes, an
// odd word gets a leading zero on its last digit. wild allows x/X nibbles.
func (b *builder) hexArg(n *node, wild bool) (string, bool) {
	var out strings.Builder
	for _, a := range n.args {
		w := strings.ToLower(a.text)
		for _, r := range w {
			if !isHex(byte(r)) && !(wild && r == 'x') || r > 0x7f {
				b.d.errorf(n.pos, n.key, "%q is not hex", a.text)
				return "", false
			}
		}
		if len(w)%2 == 1 {
			w = w[:len(w)-1] + "0" + w[len(w)-1:]
		}
		out.WriteString(w)
	}
	return out.String(), true
}

func (b *builder) url(blk *node) URL {
	var u URL
	for _, n := range blk.children {
		switch n.key {
		case "path":
			u.Path, _ = b.arg(n)
		case "digest":
			if s, ok := b.arg(n); ok {
				if _, err := hex.DecodeString(s); err != nil || len(s) != 32 {
					b.d.errorf(n.pos, n.key, "%q is not an MD5 digest (32 hex digits)", s)
				} else {
					u.Digest = strings.ToLower(s)
				}
			}
		case "status_code":
			if len(n.args) == 0 {
				b.d.errorf(n.pos, n.key, "missing value")
			}
			for _, a := range n.args {
				lo, hi, isRange := strings.Cut(a.text, "-")
				if !isRange {
					hi = lo
				}
				l, e1 := strconv.Atoi(lo)
				h, e2 := strconv.Atoi(hi)
				if e1 != nil || e2 != nil || l < 100 || h > 999 || l > h {
					b.d.errorf(n.pos, n.key, "%q is not a status code or range in 100..999", a.text)
					continue
				}
				u.StatusCodes = append(u.StatusCodes, StatusRange{l, h})
			}
		case "virtualhost":
			u.Virtualhost, _ = b.arg(n)
		case "regex":
			u.Regex, _ = b.arg(n)
		case "regex_no_match":
			u.RegexNoMatch = true
		case "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
		default:
			b.unknown(n, "url")
		}
	}
	if u.Path == "" {
		b.d.errorf(blk.pos, blk.key, "needs a path")
	}
	if len(u.StatusCodes) == 0 && u.Digest == "" {
		u.StatusCodes = []StatusRange{{200, 299}}
	}
	return u
}
