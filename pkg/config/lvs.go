package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// inherited holds the options a virtual server passes to its real servers
// and a real server to its checkers; nil fields were not written.
type inherited struct {
	connectTimeout, delayBeforeRetry, warmup, delayLoop *time.Duration
	retry                                               *int
	alpha, inhibit                                      *bool
	virtualhost                                         *string
}

// Where a keyword shared by virtual servers, real servers and checkers is
// valid (keepalived's check_parser.c, check_api.c, check_http.c).
type commonLevel int

const (
	atServer      commonLevel = iota // virtual_server, real_server
	atChecker                        // every checker
	atHTTPChecker                    // HTTP_GET, SSL_GET
)

// common parses a keyword shared by virtual servers, real servers and
// checkers; it reports whether n was one valid at this level.
// nb_get_retry is an HTTP_GET / SSL_GET keyword only: elsewhere (TCP_CHECK
// in many old configs) keepalived reports it unknown and retry keeps its
// default, and so does xdpvip.
func (b *builder) common(n *node, h *inherited, level commonLevel) bool {
	switch n.key {
	case "nb_get_retry":
		if level != atHTTPChecker {
			return false
		}
	case "inhibit_on_failure":
		if level != atServer {
			return false
		}
	case "virtualhost":
		if level == atChecker {
			return false
		}
	}
	dur := func(lo time.Duration) *time.Duration {
		if d, ok := b.timerArg(n, lo, maxTimer); ok {
			return &d
		}
		return nil
	}
	switch n.key {
	case "connect_timeout":
		// keepalived: 0.000001..4294.967295 (microseconds in 32 bits).
		if d, ok := b.timerArg(n, time.Microsecond, maxGarpInterval); ok {
			h.connectTimeout = &d
		}
	case "delay_before_retry":
		h.delayBeforeRetry = dur(0)
	case "warmup":
		h.warmup = dur(0)
	case "delay_loop":
		h.delayLoop = dur(time.Microsecond)
	case "retry", "nb_get_retry":
		if n.key == "nb_get_retry" {
			b.d.warnf(n.pos, n.key, "deprecated, use retry (read as retry, as keepalived does in HTTP_GET/SSL_GET)")
		}
		// keepalived: at least 1 on a virtual or real server, 0 allowed
		// in a checker.
		lo := 0
		if level == atServer {
			lo = 1
		}
		if v, ok := b.intArg(n, lo, 1<<32-1); ok {
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

// method parses lvs_method / lb_kind / sorry_server_lvs_method
// "NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]" as
// keepalived 2.2.7's svr_forwarding_handler does: the options are read
// after any method (and kept; only TUN uses them), each may repeat (the
// last one counts), and an option the line does not write has its default
// (ipip, no port, nocsum), not prev's. On a bad option keepalived reports
// it, still sets the method and keeps the previous tunnel settings, and
// so does the model. For TUN xdpvip refuses the configuration (the tunnel
// in force would not be the one written, and the real server could not
// decapsulate what it gets); NAT and DR use no tunnel, so there it warns.
func (b *builder) method(n *node, prev Tunnel) (string, Tunnel, bool) {
	s, ok := b.arg(n)
	if !ok {
		return "", prev, false
	}
	switch s { // keepalived compares exactly: "dr" is unknown (and means NAT)
	case MethodNAT, MethodDR, MethodTUN:
	default:
		b.d.errorf(n.pos, n.key, "%q is not one of NAT, DR, TUN (upper case; keepalived ignores it and uses NAT)", s)
		return "", prev, false
	}
	t, problem := tunnelOptions(argTexts(n.args[1:]))
	switch {
	case problem == "":
		return s, t, true
	case s == MethodTUN:
		b.d.errorf(n.pos, n.key, "%s: keepalived reports it and keeps the previous tunnel settings", problem)
	default:
		b.d.warnf(n.pos, n.key, "%s: keepalived reports it and ignores the line's tunnel options, which %s does not use", problem, s)
	}
	return s, prev, true
}

// tunnelOptions reads the words after the forwarding method; problem says
// what is wrong (keepalived's reasons), empty when nothing is.
func tunnelOptions(words []string) (t Tunnel, problem string) {
	t = DefaultTunnel
	for i := 0; i < len(words); i++ {
		switch w := words[i]; w {
		case "type":
			if i+1 == len(words) {
				return t, "type: missing tunnel type (ipip, gue or gre)"
			}
			i++
			switch words[i] {
			case lvs.TunnelIPIP, lvs.TunnelGUE, lvs.TunnelGRE: // exact, as keepalived compares
				t.Type = words[i]
			default:
				return t, fmt.Sprintf("unknown tunnel type %q (ipip, gue or gre, lower case)", words[i])
			}
		case "port":
			if i+1 == len(words) {
				return t, "port: missing gue tunnel port"
			}
			i++
			v, err := strconv.Atoi(words[i])
			if err != nil || v < 1 || v > 65535 {
				return t, fmt.Sprintf("invalid gue tunnel port %q (1..65535)", words[i])
			}
			t.Port = uint16(v)
		case lvs.TunnelNoCsum, lvs.TunnelCsum, lvs.TunnelRemCsum:
			t.Csum = w
		default:
			return t, fmt.Sprintf("invalid tunnel option %q (type ipip|gue|gre, port N, nocsum, csum or remcsum)", w)
		}
	}
	switch {
	case t.Type == lvs.TunnelGUE && t.Port == 0:
		return t, "a gue tunnel needs a port"
	case t.Type != lvs.TunnelGUE && t.Port != 0:
		return t, fmt.Sprintf("only a gue tunnel has a port, not %s", t.Type)
	case t.Type == lvs.TunnelIPIP && t.Csum != lvs.TunnelNoCsum:
		return t, fmt.Sprintf("an ipip tunnel has no checksum option: %s is invalid", t.Csum)
	case t.Type == lvs.TunnelGRE && t.Csum == lvs.TunnelRemCsum:
		return t, "a gre tunnel has no remote checksum option: remcsum is invalid"
	}
	return t, ""
}

// ---- virtual_server_group ----

func (b *builder) virtualServerGroup(blk *node) {
	if len(blk.args) == 0 {
		b.d.errorf(blk.pos, blk.key, "needs a name")
		return
	}
	g := &VirtualServerGroup{Pos: blk.pos, Name: blk.args[0].text}
	if b.vsGroups[g.Name] != nil {
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
	b.vsGroups[g.Name] = g
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
		Tunnel: DefaultTunnel, Protocol: "TCP", Quorum: 1}
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
			// Port 0 is the legacy "all ports" form of a persistent
			// service; keepalived accepts it.
			if vs.Port, ok = b.portOrZero(blk, args[1].text); !ok {
				return
			}
		}
	}
	var h inherited
	var vsWeight *int
	type rsSeen struct {
		rs        *RealServer
		h         inherited
		checkers  []*Checker
		ch        []inherited
		weightSet bool
	}
	var rss []rsSeen
	// methodSet: an lb_kind / lvs_method was read so far. keepalived
	// gives a real or sorry server the virtual server's method and tunnel
	// as they are when its block starts; one written before any lb_kind
	// gets the virtual server's final ones.
	methodSet := false
	seen := map[string]Pos{}
	for _, n := range blk.children {
		seen[n.key] = n.pos
		if b.common(n, &h, atServer) {
			continue
		}
		switch n.key {
		case "lb_algo", "lvs_sched":
			if s, ok := b.arg(n); ok {
				// keepalived compares exactly: "RR" is unknown (and
				// means wlc).
				if !contains(Schedulers, s) {
					b.d.errorf(n.pos, n.key, "%q is not one of %s (lower case; keepalived ignores it and uses wlc)", s, strings.Join(Schedulers, " "))
				} else {
					vs.Scheduler = s
				}
			}
		case "lb_kind", "lvs_method":
			if m, t, ok := b.method(n, vs.Tunnel); ok {
				vs.Method, vs.Tunnel, methodSet = m, t, true
			}
		case "flag-1", "flag-2", "flag-3":
			vs.SchedFlags = append(vs.SchedFlags, n.key)
		case "sh-port", "sh-fallback", "mh-port", "mh-fallback", "hashed":
			// keepalived looks at the scheduler written so far: sh-* for
			// sh, mh-* for mh (anything else silently ignored), and with
			// any other scheduler, or none yet, reports and ignores it.
			_, algo := seen["lb_algo"]
			_, sched := seen["lvs_sched"]
			switch {
			case (algo || sched) && vs.Scheduler == "sh":
				if strings.HasPrefix(n.key, "sh-") {
					vs.SchedFlags = append(vs.SchedFlags, n.key)
				}
			case (algo || sched) && vs.Scheduler == "mh":
				if strings.HasPrefix(n.key, "mh-") {
					vs.SchedFlags = append(vs.SchedFlags, n.key)
				}
			default:
				b.d.warnf(n.pos, n.key, "applies only to the sh or mh scheduler written before it: ignored, as keepalived does")
			}
		case "ops":
			vs.OPS = true
		case "persistence_engine":
			vs.PersistenceEngine, _ = b.arg(n)
		case "persistence_timeout":
			vs.PersistenceTimeout = 360 * time.Second
			if len(n.args) > 0 {
				// keepalived: 1..2678400 (31 days); 0 is refused with a
				// message and the service stays non-persistent.
				if n.args[0].text == "0" {
					b.d.warnf(n.pos, n.key, "0 is outside keepalived's 1..2678400 and ignored: not persistent (the same meaning)")
					vs.PersistenceTimeout = 0
				} else if v, ok := b.intArg(n, 1, 2678400); ok {
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
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				if v == 0 {
					b.d.warnf(n.pos, n.key, "0 is outside keepalived's 1..4294967295: set to 1, as keepalived does")
					v = 1
				}
				vs.Quorum = v
			}
		case "weight":
			// The default weight of the real servers (keepalived).
			if v, ok := b.intArg(n, 1, 65535); ok {
				vsWeight = &v
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
			ss := &SorryServer{Addr: a, Tunnel: vs.Tunnel}
			if methodSet {
				ss.Method = vs.Method
			}
			if len(n.args) > 1 {
				if ss.Port, ok = b.port(n, n.args[1].text); !ok {
					continue
				}
			}
			vs.SorryServer = ss
		case "sorry_server_inhibit":
			vs.SorryServerInhibit = true
		case "sorry_server_lvs_method":
			ss := vs.SorryServer
			if ss == nil {
				b.d.warnf(n.pos, n.key, "used before or without sorry_server: ignored, as keepalived does")
				continue
			}
			if m, t, ok := b.method(n, ss.Tunnel); ok {
				ss.Method, ss.Tunnel = m, t
			}
		case "snmp_name":
		case "real_server":
			if !b.needBlock(n) {
				continue
			}
			inherit := ""
			if methodSet {
				inherit = vs.Method
			}
			rs, rh, checkers, ch := b.realServer(n, inherit, vs.Tunnel)
			if rs != nil {
				rss = append(rss, rsSeen{rs, rh, checkers, ch, hasChild(n, "weight")})
			}
		default:
			b.unknown(n, "virtual_server")
		}
	}
	vsg := b.vsGroups[vs.Group]
	if vs.Group != "" && vsg == nil {
		b.d.errorf(blk.pos, blk.key, "no virtual_server_group %q", vs.Group)
	}
	b.serviceFixups(vs, vsg, seen)
	if _, ok := seen["lb_algo"]; !ok {
		if _, ok := seen["lvs_sched"]; !ok {
			b.d.warnf(blk.pos, "lb_algo", "%s has no lb_algo: wlc, as keepalived says", vs.Key())
		}
	}
	_, kindSet := seen["lb_kind"]
	if _, ok := seen["lvs_method"]; ok {
		kindSet = true
	}
	if !kindSet {
		unset := vs.SorryServer != nil && vs.SorryServer.Method == ""
		for _, r := range rss {
			unset = unset || r.rs.Method == ""
		}
		if unset {
			b.d.warnf(blk.pos, "lb_kind", "%s has no lb_kind: NAT, as keepalived says", vs.Key())
		}
	}
	if vs.SorryServer != nil && vs.SorryServer.Method == "" {
		vs.SorryServer.Method, vs.SorryServer.Tunnel = vs.Method, vs.Tunnel
	}
	if ss := vs.SorryServer; ss != nil && ss.Method != MethodNAT && vs.Group == "" {
		// As for real servers: unless NAT, the sorry server listens on
		// the service's port.
		switch {
		case vs.FWMark != 0 && ss.Port != 0:
			b.d.warnf(seen["sorry_server"], "sorry_server", "a %s sorry server of a fwmark service has no port: %d cleared, as keepalived does", ss.Method, ss.Port)
			ss.Port = 0
		case vs.FWMark == 0 && ss.Port == 0:
			ss.Port = vs.Port
		case vs.FWMark == 0 && ss.Port != vs.Port:
			b.d.warnf(seen["sorry_server"], "sorry_server", "%s sorry server port %d differs from the virtual server's %d: reset, as keepalived does", ss.Method, ss.Port, vs.Port)
			ss.Port = vs.Port
		}
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
	written := map[netip.AddrPort]Pos{}
	for _, r := range rss {
		rs := r.rs
		if rs.Method == "" {
			rs.Method, rs.Tunnel = vs.Method, vs.Tunnel
		}
		if vsFamily != 0 && familyOf(rs.Addr) != vsFamily && rs.Method != MethodTUN {
			b.d.errorf(rs.Pos, "real_server", "%s is not IPv%d like the virtual server (only TUN may differ)", rs.Addr, vsFamily)
			continue
		}
		if !r.weightSet && vsWeight != nil {
			rs.Weight = *vsWeight
		}
		writtenPort := rs.Port
		if !b.realServerPort(vs, vsg, rs, written) {
			continue
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
			// keepalived's checker connects to the real server's port as
			// written, before any port reset.
			needsPort := c.Kind == TCPCheck || c.Kind == HTTPGet || c.Kind == SSLGet || c.Kind == SMTPCheck || c.Kind == UDPCheck
			if c.ConnectPort == 0 {
				c.ConnectPort = writtenPort
				if writtenPort == 0 && rs.Port != 0 && needsPort {
					b.d.warnf(c.Pos, string(c.Kind), "real server written without a port and no connect_port: keepalived 2.2.7 connects to port 0 (the check always fails); xdpvip checks port %d", rs.Port)
					c.ConnectPort = rs.Port
				}
			}
			if c.Kind == MiscCheck && c.MiscTimeout == 0 {
				c.MiscTimeout = c.DelayLoop
			}
			if needsPort && c.ConnectPort == 0 {
				b.d.errorf(c.Pos, string(c.Kind), "no port to check: set connect_port or the real server's port")
			}
			rs.Checkers = append(rs.Checkers, c)
		}
		vs.RealServers = append(vs.RealServers, rs)
	}
	if len(vs.RealServers) == 0 {
		b.d.warnf(blk.pos, blk.key, "%s has no real_server: ignored, as keepalived does", vs.Key())
		return
	}
	b.quorumFixups(vs, blk.pos, seen)
	b.cfg.VirtualServers = append(b.cfg.VirtualServers, vs)
}

// serviceFixups applies keepalived's corrections of a virtual server
// (validate_check_config in keepalived/check/check_data.c, 2.2.7) that do
// not depend on its real servers.
func (b *builder) serviceFixups(vs *VirtualServer, vsg *VirtualServerGroup, seen map[string]Pos) {
	at := func(kw string) Pos {
		if p, ok := seen[kw]; ok {
			return p
		}
		return vs.Pos
	}
	hasAddrs, hasMarks := vs.FWMark == 0 && vs.Group == "", vs.FWMark != 0
	if vsg != nil {
		hasAddrs, hasMarks = false, false
		for _, e := range vsg.Entries {
			hasAddrs = hasAddrs || e.FWMark == 0
			hasMarks = hasMarks || e.FWMark != 0
		}
	}
	_, protoSet := seen["protocol"]
	if vs.HASuspend && hasMarks {
		b.d.warnf(at("ha_suspend"), "ha_suspend", "cannot be used with fwmarks, cleared as keepalived does")
		vs.HASuspend = false
	}
	if hasAddrs {
		if !protoSet {
			b.d.warnf(vs.Pos, "protocol", "%s has no protocol: keepalived defaults to UDP (not TCP), and so does xdpvip; write protocol TCP for a TCP service", vs.Key())
			vs.Protocol = "UDP"
		}
		if vs.OPS && vs.Protocol != "UDP" {
			b.d.warnf(at("ops"), "ops", "one-packet scheduling needs UDP, cleared as keepalived does")
			vs.OPS = false
		}
		if vs.PersistenceTimeout == 0 && vs.Group == "" && vs.FWMark == 0 && vs.Port == 0 {
			b.d.warnf(vs.Pos, "virtual_server", "%s: port 0 is valid only for a persistent service; persistence_timeout set to 360 as keepalived does", vs.Key())
			vs.PersistenceTimeout = 360 * time.Second
		}
	}
	if vs.PersistenceTimeout == 0 && vsg != nil {
		for _, e := range vsg.Entries {
			if e.FWMark == 0 && e.Port == 0 {
				b.d.warnf(vs.Pos, "virtual_server", "group %s has an address without a port, valid only for a persistent service; persistence_timeout set to 360 as keepalived does", vs.Group)
				vs.PersistenceTimeout = 360 * time.Second
				break
			}
		}
	}
	if hasMarks && !hasAddrs {
		if protoSet {
			b.d.warnf(at("protocol"), "protocol", "ignored for a fwmark service, as keepalived does")
		}
		vs.Protocol = ""
	}
}

// realServerPort applies keepalived's port rules to one real server and
// drops a duplicate (same address and port as written) of an earlier one.
// Unless NAT, a real server listens on the virtual server's port: an
// omitted port is the virtual server's, a different one is reset to it, and
// for a fwmark service it is cleared.
// written maps each real server's address and port as written to its
// position.
func (b *builder) realServerPort(vs *VirtualServer, vsg *VirtualServerGroup, rs *RealServer, written map[netip.AddrPort]Pos) bool {
	key := netip.AddrPortFrom(rs.Addr, rs.Port)
	if o, dup := written[key]; dup {
		b.d.warnf(rs.Pos, "real_server", "%s is a duplicate of the real server at line %d: removed, as keepalived does", key, o.Line)
		return false
	}
	written[key] = rs.Pos
	switch {
	case rs.Method == MethodNAT:
		if vs.FWMark == 0 && vs.Group == "" && rs.Port == 0 {
			rs.Port = vs.Port
		}
	case vsg != nil:
		for _, e := range vsg.Entries {
			if e.FWMark != 0 && rs.Port != 0 {
				b.d.warnf(rs.Pos, "real_server", "group %s has fwmark %d: the %s real server's port %d is ignored for it (keepalived warns too)", vs.Group, e.FWMark, rs.Method, rs.Port)
				break
			}
		}
		for _, e := range vsg.Entries {
			if e.FWMark == 0 && rs.Port != 0 && e.Port != rs.Port {
				b.d.warnf(rs.Pos, "real_server", "port %d differs from the group's %s port %d (keepalived warns too; the real server's port is used)", rs.Port, e.First, e.Port)
				break
			}
		}
	case vs.FWMark != 0:
		if rs.Port != 0 {
			b.d.warnf(rs.Pos, "real_server", "a %s real server of a fwmark service has no port: %d cleared, as keepalived does", rs.Method, rs.Port)
			rs.Port = 0
		}
	case rs.Port == 0:
		rs.Port = vs.Port
	case rs.Port != vs.Port:
		b.d.warnf(rs.Pos, "real_server", "%s real server port %d differs from the virtual server's %d: reset to %d, as keepalived does (%s does not translate ports)", rs.Method, rs.Port, vs.Port, vs.Port, rs.Method)
		rs.Port = vs.Port
	}
	return true
}

// quorumFixups: a quorum above the real servers' total weight can never be
// reached (keepalived lowers it), and hysteresis must stay below quorum.
func (b *builder) quorumFixups(vs *VirtualServer, pos Pos, seen map[string]Pos) {
	sum := 0
	for _, rs := range vs.RealServers {
		sum += rs.Weight
	}
	at := func(kw string) Pos {
		if p, ok := seen[kw]; ok {
			return p
		}
		return pos
	}
	if vs.Quorum > sum {
		b.d.warnf(at("quorum"), "quorum", "%d exceeds the total weight %d of the real servers, reduced to %d as keepalived does", vs.Quorum, sum, sum)
		vs.Quorum = sum
	}
	if vs.Quorum > 0 && vs.Hysteresis >= vs.Quorum {
		b.d.warnf(at("hysteresis"), "hysteresis", "%d is not below quorum %d, set to %d as keepalived does", vs.Hysteresis, vs.Quorum, vs.Quorum-1)
		vs.Hysteresis = vs.Quorum - 1
	}
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

// method and tunnel are what the real server has from the virtual server
// when its block starts ("" when no lb_kind was read yet).
func (b *builder) realServer(blk *node, method string, tunnel Tunnel) (*RealServer, inherited, []*Checker, []inherited) {
	var h inherited
	if len(blk.args) == 0 {
		b.d.errorf(blk.pos, blk.key, "needs an address")
		return nil, h, nil, nil
	}
	a, ok := b.addr(blk, blk.args[0].text)
	if !ok {
		return nil, h, nil, nil
	}
	rs := &RealServer{Pos: blk.pos, Addr: a, Weight: 1, Method: method, Tunnel: tunnel}
	if len(blk.args) > 1 {
		// Port 0 (fwmark and all-port services): the virtual server's.
		if rs.Port, ok = b.portOrZero(blk, blk.args[1].text); !ok {
			return nil, h, nil, nil
		}
	}
	var checkers []*Checker
	var ch []inherited
	for _, n := range blk.children {
		if b.common(n, &h, atServer) {
			continue
		}
		switch n.key {
		case "weight":
			if v, ok := b.intArg(n, 0, 65535); ok {
				rs.Weight = v
			}
		case "lvs_method": // keepalived knows no lb_kind in a real_server
			if m, t, ok := b.method(n, rs.Tunnel); ok {
				rs.Method, rs.Tunnel = m, t
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
			cs, cis := b.checker(n)
			checkers = append(checkers, cs...)
			ch = append(ch, cis...)
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

// checker parses one checker block. It returns one checker, or for an
// SMTP_CHECK with host { } blocks one per host (keepalived's deprecated
// form): each host is a checker with the SMTP_CHECK's settings and the
// host's connection; the SMTP_CHECK's own connection is checked too only
// when one of its connection keywords is written.
func (b *builder) checker(blk *node) ([]*Checker, []inherited) {
	c := &Checker{Pos: blk.pos, Kind: CheckerKind(blk.key)}
	var h inherited
	switch c.Kind {
	case DNSCheck:
		c.DNSType, c.DNSName = "SOA", "."
	case UDPCheck:
		c.MaxReplyLength = 255
	case HTTPGet, SSLGet:
		c.HTTPProtocol = "1.0"
	case SMTPCheck:
		c.HeloName = "smtpchecker.keepalived.org" // keepalived's SMTP_DEFAULT_HELO
	}
	var hosts []*node
	ownConn := false
	for _, n := range blk.children {
		level := atChecker
		if c.Kind == HTTPGet || c.Kind == SSLGet {
			level = atHTTPChecker
		}
		if c.Kind == SMTPCheck && n.key == "host" && n.block {
			hosts = append(hosts, n)
			continue
		}
		if connKeywords[n.key] {
			ownConn = true
		}
		if b.common(n, &h, level) {
			continue
		}
		if b.checkerOption(n, c) {
			continue
		}
		if n.key == "nb_get_retry" {
			b.d.warnf(n.pos, n.key, "unknown keyword in %s, ignored: keepalived reads nb_get_retry only in HTTP_GET and SSL_GET, so retry stays %s here", blk.key, retryNote(c.Kind))
			continue
		}
		b.unknown(n, blk.key)
	}
	switch c.Kind {
	case MiscCheck:
		if c.MiscPath.IsZero() {
			b.d.errorf(blk.pos, blk.key, "needs misc_path")
			return nil, nil
		}
	case HTTPGet, SSLGet:
		if len(c.URLs) == 0 {
			b.d.errorf(blk.pos, blk.key, "needs at least one url { path ... }")
			return nil, nil
		}
	}
	var out []*Checker
	var outH []inherited
	if len(hosts) == 0 || ownConn {
		out, outH = append(out, c), append(outH, h)
	}
	for _, hb := range hosts {
		hc := *c
		hc.Pos = hb.pos
		hc.ConnectIP, hc.ConnectPort, hc.BindTo, hc.BindPort, hc.BindIf, hc.FWMark = netip.Addr{}, 0, netip.Addr{}, 0, "", 0
		hh := h
		hh.connectTimeout = nil
		for _, n := range hb.children {
			switch {
			case n.key == "connect_timeout":
				if d, ok := b.timerArg(n, time.Microsecond, maxTimer); ok {
					hh.connectTimeout = &d
				}
			case connKeywords[n.key]:
				b.checkerOption(n, &hc)
			default:
				b.unknown(n, "host")
			}
		}
		if hh.connectTimeout == nil {
			b.d.warnf(hb.pos, "host", "no connect_timeout: keepalived 2.2.7 checks this host with a connect timeout of 0; xdpvip uses the SMTP_CHECK's (or real/virtual server's) connect_timeout")
			hh.connectTimeout = h.connectTimeout
		}
		out, outH = append(out, &hc), append(outH, hh)
	}
	return out, outH
}

// retryNote says what retry a checker keeps when nb_get_retry is ignored.
func retryNote(k CheckerKind) string {
	switch k {
	case DNSCheck:
		return "at its default 3 (or the real/virtual server's)"
	case MiscCheck:
		return "at its default 0 (or the real/virtual server's)"
	}
	return "at its default 1 (or the real/virtual server's)"
}

// connKeywords are a checker's connection options (keepalived's conn_opts).
var connKeywords = toSet("connect_ip connect_port bindto bind_port bind_if fwmark connect_timeout")

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
				if e1 != nil || e2 != nil || l < 100 || h > 599 || l > h {
					b.d.errorf(n.pos, n.key, "%q is not a status code or range in 100..599 (keepalived ignores it)", a.text)
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
	// keepalived checks the status code of every url, 200-299 unless
	// status_code says otherwise, a digest or not.
	if len(u.StatusCodes) == 0 {
		u.StatusCodes = []StatusRange{{200, 299}}
	}
	return u
}

func argTexts(ts []token) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.text
	}
	return out
}

// hasChild reports whether blk has a statement kw.
func hasChild(blk *node, kw string) bool {
	for _, c := range blk.children {
		if c.key == kw {
			return true
		}
	}
	return false
}

// portOrZero is port with 0 allowed (keepalived's legacy "no port").
func (b *builder) portOrZero(n *node, s string) (uint16, bool) {
	if s == "0" {
		return 0, true
	}
	return b.port(n, s)
}
