package lvs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// TypeName is the tunnel type with the default spelled out: TunnelIPIP
// for "".
func (t Tunnel) TypeName() string {
	if t.Type == "" {
		return TunnelIPIP
	}
	return t.Type
}

// CsumName is the checksum option with the default spelled out:
// TunnelNoCsum for "".
func (t Tunnel) CsumName() string {
	if t.Csum == "" {
		return TunnelNoCsum
	}
	return t.Csum
}

// Options is the tunnel in keepalived's words after "lb_kind TUN":
// "type ipip", "type gue port 6080 csum", "type gre nocsum".
func (t Tunnel) Options() string {
	s := "type " + t.TypeName()
	if t.Port != 0 {
		s += " port " + strconv.Itoa(int(t.Port))
	}
	if t.TypeName() != TunnelIPIP || t.CsumName() != TunnelNoCsum {
		s += " " + t.CsumName()
	}
	return s
}

// NormalizeTunnel checks a TUN real server's tunnel as keepalived 2.2.7
// does (a type of ipip, gue or gre; a port, 1..65535, with gue and only
// with gue; no checksum option with ipip, no remcsum with gre) and returns
// it in the form the Manager hands to backends: lower case, with the
// defaults as "" (so the zero Tunnel, IP-in-IP without checksums, equals
// its spelled-out form).
func NormalizeTunnel(t Tunnel) (Tunnel, error) {
	typ, ok1 := oneOf(t.Type, TunnelIPIP, TunnelGUE, TunnelGRE)
	csum, ok2 := oneOf(t.Csum, TunnelNoCsum, TunnelCsum, TunnelRemCsum)
	switch {
	case !ok1:
		return Tunnel{}, fmt.Errorf("tunnel type %q (want ipip, gue or gre)", t.Type)
	case !ok2:
		return Tunnel{}, fmt.Errorf("tunnel checksum option %q (want nocsum, csum or remcsum)", t.Csum)
	}
	out := Tunnel{Type: typ, Port: t.Port, Csum: csum}
	switch typ := out.TypeName(); {
	case typ == TunnelGUE && out.Port == 0:
		return Tunnel{}, fmt.Errorf("a gue tunnel needs a port")
	case typ != TunnelGUE && out.Port != 0:
		return Tunnel{}, fmt.Errorf("only a gue tunnel has a port, not %s (port %d)", typ, out.Port)
	case typ == TunnelIPIP && out.Csum != "":
		return Tunnel{}, fmt.Errorf("an ipip tunnel has no checksum option (%s)", out.Csum)
	case typ == TunnelGRE && out.Csum == TunnelRemCsum:
		return Tunnel{}, fmt.Errorf("a gre tunnel has no remote checksum option")
	}
	return out, nil
}

// oneOf lower-cases s and reports whether it is "", def or one of others;
// def comes back as "".
func oneOf(s, def string, others ...string) (string, bool) {
	s = strings.ToLower(s)
	if s == def {
		return "", true
	}
	return s, s == "" || slices.Contains(others, s)
}
