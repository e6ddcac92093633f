// Package lvsconfig maps keepalived's virtual_server blocks onto the lvs
// manager's model (services, real servers, weights) and onto health
// monitors, one per real server with checkers.
package lvsconfig

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/healthcheck"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/script"
)

// protoOf maps keepalived's protocol keyword to the IP protocol number.
func protoOf(p string) uint8 {
	switch p {
	case "UDP":
		return lvs.ProtoUDP
	case "SCTP":
		return lvs.ProtoSCTP
	default:
		return lvs.ProtoTCP
	}
}

// ServiceKeys expands one virtual_server into the service keys it stands
// for: one for IP PORT or fwmark, one per address of a virtual_server_group.
func ServiceKeys(cfg *config.Config, vs *config.VirtualServer) ([]lvs.ServiceKey, error) {
	proto := protoOf(vs.Protocol)
	switch {
	case vs.Group != "":
		g := cfg.VirtualServerGroup(vs.Group)
		if g == nil {
			return nil, fmt.Errorf("%s: virtual_server group %q is not defined", vs.Pos, vs.Group)
		}
		var keys []lvs.ServiceKey
		for _, e := range g.Entries {
			if e.FWMark != 0 {
				fam := uint8(e.Family)
				if fam == 0 {
					fam = 4
				}
				keys = append(keys, lvs.ServiceKey{Proto: proto, Fwmark: e.FWMark, Family: fam})
				continue
			}
			port := e.Port
			if port == 0 {
				port = vs.Port
			}
			n := 0
			for a := e.First; a.IsValid() && a.Compare(e.Last) <= 0; a = a.Next() {
				keys = append(keys, lvs.ServiceKey{Proto: proto, Addr: a, Port: port})
				if n++; n > 65536 {
					return nil, fmt.Errorf("%s: virtual_server_group %q range too large", e.Pos, g.Name)
				}
			}
		}
		return keys, nil
	case vs.FWMark != 0:
		fam := uint8(vs.IPFamily)
		if fam == 0 {
			fam = 4
		}
		return []lvs.ServiceKey{{Proto: proto, Fwmark: vs.FWMark, Family: fam}}, nil
	default:
		return []lvs.ServiceKey{{Proto: proto, Addr: vs.Addr, Port: vs.Port}}, nil
	}
}

// VirtualServers maps the configuration onto the lvs Manager's model.
func VirtualServers(cfg *config.Config) ([]lvs.VirtualServer, error) {
	var out []lvs.VirtualServer
	for _, vs := range cfg.VirtualServers {
		keys, err := ServiceKeys(cfg, vs)
		if err != nil {
			return nil, err
		}
		for _, key := range keys {
			m := lvs.VirtualServer{
				Key:                    key,
				Scheduler:              vs.Scheduler,
				Method:                 vs.Method,
				Tunnel:                 tunnel(vs.Method, vs.Tunnel),
				PersistenceTimeout:     vs.PersistenceTimeout,
				PersistenceGranularity: vs.PersistenceGranularity,
				OnePacket:              vs.OPS,
				Quorum:                 vs.Quorum,
				Hysteresis:             vs.Hysteresis,
				Alpha:                  vs.Alpha,
				Omega:                  vs.Omega,
				InhibitOnFailure:       vs.InhibitOnFailure,
			}
			if s := vs.SorryServer; s != nil {
				m.Sorry = &lvs.SorryServer{Addr: s.Addr, Port: s.Port, Method: s.Method, Tunnel: tunnel(s.Method, s.Tunnel), Inhibit: vs.SorryServerInhibit}
			}
			for _, rs := range vs.RealServers {
				inhibit, alpha := rs.InhibitOnFailure || vs.InhibitOnFailure, rs.Alpha || vs.Alpha
				m.RealServers = append(m.RealServers, lvs.RealServer{
					Addr: rs.Addr, Port: rs.Port, Weight: rs.Weight, Method: rs.Method, Tunnel: tunnel(rs.Method, rs.Tunnel),
					InhibitOnFailure: &inhibit, Alpha: &alpha,
				})
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// tunnel is a server's tunnel in the lvs model: the one parsed for a TUN
// server, none for DR and NAT (keepalived reads tunnel options after any
// method, but only TUN uses them).
func tunnel(method string, t config.Tunnel) lvs.Tunnel {
	if method != config.MethodTUN {
		return lvs.Tunnel{}
	}
	return t.LVS()
}

// Monitor is one real server's health monitor, before it is started.
type Monitor struct {
	// Key identifies the monitor's configuration, so a reload keeps the
	// monitors whose configuration did not change.
	Key    string
	VS     lvs.ServiceKey
	RS     lvs.RealServerKey
	Config healthcheck.MonitorConfig
	// Also are the other services of a virtual_server_group the same
	// check stands for: keepalived checks a group's real server once, and
	// its result applies to every address of the group.
	Also []lvs.ServiceKey
}

// Services are every service the monitor's result applies to.
func (m Monitor) Services() []lvs.ServiceKey { return append([]lvs.ServiceKey{m.VS}, m.Also...) }

// Monitors builds one monitor per real server that has checkers (one per
// real server and port of a virtual_server_group, not one per address).
// Real servers without checkers stay up, as in keepalived.
// Real servers without checkers stay up, as in keepalived.
func Monitors(cfg *config.Config, notifier *script.Notifier) ([]Monitor, error) {
	var out []Monitor
	for _, vs := range cfg.VirtualServers {
		keys, err := ServiceKeys(cfg, vs)
		if err != nil {
			return nil, err
		}
		for _, rs := range vs.RealServers {
			if len(rs.Checkers) == 0 {
				continue
			}
			var checkers []healthcheck.CheckerConfig
			for _, c := range rs.Checkers {
				cc, err := checkerConfig(vs, rs, c)
				if err != nil {
					return nil, err
				}
				checkers = append(checkers, cc)
			}
			byPort := map[uint16]int{} // real-server port -> index in out
			for _, key := range keys {
				rsPort := rs.Port
				if rsPort == 0 {
					rsPort = key.Port
				}
				if i, ok := byPort[rsPort]; ok {
					out[i].Also = append(out[i].Also, key)
					out[i].Key += "|" + key.String()
					continue
				}
				byPort[rsPort] = len(out)
				out = append(out, Monitor{
					Key: monitorKey(vs, rs, key),
					VS:  key,
					RS:  lvs.RealServerKey{Addr: rs.Addr, Port: rsPort},
					Config: healthcheck.MonitorConfig{
						VirtualServer: key.String(),
						RealServer:    netip.AddrPortFrom(rs.Addr, rsPort).String(),
						Weight:        rs.Weight,
						Checkers:      checkers,
						Omega:         vs.Omega,
						NotifyUp:      ScriptCommand(rs.NotifyUp, 0),
						NotifyDown:    ScriptCommand(rs.NotifyDown, 0),
						Notifier:      notifier,
					},
				})
			}
		}
	}
	return out, nil
}

func ScriptCommand(s config.ScriptCmd, timeout time.Duration) script.Command {
	return script.Command{Line: s.Command, Timeout: timeout}
}

// checkerConfig maps one checker block onto a healthcheck checker.
func checkerConfig(vs *config.VirtualServer, rs *config.RealServer, c *config.Checker) (healthcheck.CheckerConfig, error) {
	port := c.ConnectPort
	if port == 0 {
		port = rs.Port
	}
	ip := c.ConnectIP
	if !ip.IsValid() {
		ip = rs.Addr
	}
	target := healthcheck.Target{
		Addr: netip.AddrPortFrom(ip, port), BindTo: c.BindTo, BindPort: c.BindPort,
		BindIf: c.BindIf, Fwmark: c.FWMark,
	}
	delay := c.DelayLoop
	if delay == 0 {
		delay = rs.DelayLoop
	}
	if delay == 0 {
		delay = vs.DelayLoop
	}
	timing := healthcheck.Timing{
		DelayLoop: delay, Retry: c.Retry, DelayBeforeRetry: c.DelayBeforeRetry,
		ConnectTimeout: c.ConnectTimeout, Warmup: c.Warmup,
	}
	name := fmt.Sprintf("%s %s", c.Kind, target.Addr)
	var (
		chk healthcheck.Checker
		err error
	)
	switch c.Kind {
	case config.TCPCheck:
		chk, err = healthcheck.NewTCPCheck(healthcheck.TCPSpec{Target: target})
	case config.HTTPGet, config.SSLGet:
		spec := healthcheck.HTTPSpec{
			Target: target, Protocol: c.HTTPProtocol, TLS: c.Kind == config.SSLGet,
			EnableSNI: c.EnableSNI, Virtualhost: firstNonEmpty(c.Virtualhost, rs.Virtualhost, vs.Virtualhost),
		}
		for _, u := range c.URLs {
			us := healthcheck.URLSpec{Path: u.Path, Digest: u.Digest, Virtualhost: u.Virtualhost, RegexNoMatch: u.RegexNoMatch}
			for _, r := range u.StatusCodes {
				us.StatusCodes = append(us.StatusCodes, healthcheck.StatusRange{Lo: r.Lo, Hi: r.Hi})
			}
			if u.Regex != "" {
				re, rerr := regexp.Compile(u.Regex)
				if rerr != nil {
					return healthcheck.CheckerConfig{}, fmt.Errorf("%s: regex: %w", c.Pos, rerr)
				}
				us.Regex = re
			}
			spec.URLs = append(spec.URLs, us)
		}
		chk, err = healthcheck.NewHTTPCheck(spec)
	case config.MiscCheck:
		timeout := c.MiscTimeout
		if timeout == 0 {
			timeout = delay
		}
		// misc_timeout bounds the script; connect_timeout does not apply.
		timing.ConnectTimeout = 0
		chk, err = healthcheck.NewMiscCheck(healthcheck.MiscSpec{Path: c.MiscPath.Command, Timeout: timeout, Dynamic: c.MiscDynamic})
		name = fmt.Sprintf("%s %q", c.Kind, c.MiscPath.Command)
	case config.DNSCheck:
		chk, err = healthcheck.NewDNSCheck(healthcheck.DNSSpec{Target: target, Type: c.DNSType, Name: c.DNSName})
	case config.SMTPCheck:
		chk, err = healthcheck.NewSMTPCheck(healthcheck.SMTPSpec{Target: target, HeloName: c.HeloName})
	case config.UDPCheck:
		spec := healthcheck.UDPSpec{Target: target, Payload: c.Payload, RequireReply: c.RequireReply,
			MinReplyLength: c.MinReplyLength, MaxReplyLength: c.MaxReplyLength}
		if c.ReplyPattern != "" {
			spec.ReplyPattern, spec.ReplyMask, err = healthcheck.ParseHexPattern(c.ReplyPattern)
			if err != nil {
				return healthcheck.CheckerConfig{}, fmt.Errorf("%s: require_reply: %w", c.Pos, err)
			}
		}
		chk, err = healthcheck.NewUDPCheck(spec)
	case config.PingCheck:
		chk, err = healthcheck.NewPingCheck(healthcheck.PingSpec{Target: target})
	default:
		return healthcheck.CheckerConfig{}, fmt.Errorf("%s: %s is not supported by xdpvip", c.Pos, c.Kind)
	}
	if err != nil {
		return healthcheck.CheckerConfig{}, fmt.Errorf("%s: %s: %w", c.Pos, c.Kind, err)
	}
	return healthcheck.CheckerConfig{Name: name, Checker: chk, Timing: timing, Alpha: c.Alpha}, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// monitorKey identifies a monitor's configuration, so a reload keeps the
// monitors (and the health they learnt) whose configuration did not change.
func monitorKey(vs *config.VirtualServer, rs *config.RealServer, key lvs.ServiceKey) string {
	r := *rs
	r.Pos = config.Pos{}
	checkers := make([]config.Checker, len(rs.Checkers))
	for i, c := range rs.Checkers {
		checkers[i] = *c
		checkers[i].Pos = config.Pos{}
	}
	r.Checkers = nil
	// JSON, not fmt: the config types embed Pos, whose String method fmt
	// would print instead of the fields.
	b, err := json.Marshal(struct {
		Key       string
		DelayLoop time.Duration
		Omega     bool
		RS        config.RealServer
		Checkers  []config.Checker
	}{key.String(), vs.DelayLoop, vs.Omega, r, checkers})
	if err != nil {
		// Cannot happen for these types; a unique key restarts the monitor.
		return fmt.Sprintf("%v|%p", key, rs)
	}
	return string(b)
}

// QuorumScripts are the quorum_up (up) or quorum_down scripts of the
// virtual servers that service key stands for.
func QuorumScripts(cfg *config.Config, key lvs.ServiceKey, up bool) []script.Command {
	var out []script.Command
	for _, vs := range cfg.VirtualServers {
		keys, err := ServiceKeys(cfg, vs)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if k != key {
				continue
			}
			s := vs.QuorumDown
			if up {
				s = vs.QuorumUp
			}
			if !s.IsZero() {
				out = append(out, ScriptCommand(s, 0))
			}
		}
	}
	return out
}
