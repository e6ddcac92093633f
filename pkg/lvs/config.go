package lvs

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Defaults taken from keepalived.conf(5) when a field is left zero.
const (
	DefaultScheduler = "wlc" // keepalived's (and ipvsadm's) default lb_algo
	DefaultMethod    = "NAT" // keepalived's default lvs_method / lb_kind
	DefaultQuorum    = 1
	DefaultWeight    = 1 // the sorry server's weight when none is given
)

// Sentinel errors of the virtual-server model.
var (
	ErrInvalidConfig     = errors.New("lvs: invalid virtual server")
	ErrUnknownService    = errors.New("lvs: unknown virtual server")
	ErrUnknownRealServer = errors.New("lvs: unknown real server")
	ErrInvalidWeight     = errors.New("lvs: invalid weight")
)

// RealServerKey identifies a real server within its virtual server.
type RealServerKey struct {
	Addr netip.Addr
	Port uint16
}

func (k RealServerKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// VirtualServer is one keepalived virtual_server block as the Manager needs
// it. The daemon maps the parsed configuration onto it.
type VirtualServer struct {
	Key ServiceKey
	// Scheduler is lb_algo; "" means DefaultScheduler.
	Scheduler string
	// Method is lb_kind / lvs_method for real servers that name none:
	// "DR", "NAT" or "TUN" (any case); "" means DefaultMethod. Tunnel
	// goes with it (used when Method is TUN; the zero value is IP-in-IP
	// without checksums).
	Method                 string
	Tunnel                 Tunnel
	PersistenceTimeout     time.Duration
	PersistenceGranularity int
	// OnePacket is keepalived's "ops" (one-packet scheduling, UDP).
	OnePacket bool
	// Quorum is the minimum total weight of live real servers; 0 means
	// DefaultQuorum. Hysteresis (>= 0) dampens flaps: quorum is lost below
	// Quorum-Hysteresis (or when no weight is left) and regained at
	// Quorum+Hysteresis.
	Quorum     int
	Hysteresis int
	// Sorry replaces the real servers while quorum is lost; nil for none.
	Sorry *SorryServer
	// Alpha starts every real server down until its checker passes.
	Alpha bool
	// Omega runs the quorum-down notifier on shutdown (Manager.Shutdown;
	// the real servers' notify_down is their health monitors' job).
	Omega bool
	// InhibitOnFailure keeps failed real servers listed with weight 0
	// instead of removing them; real servers may override it.
	InhibitOnFailure bool
	RealServers      []RealServer
}

// RealServer is one real_server block.
type RealServer struct {
	Addr netip.Addr
	// Port 0 means the virtual server's port.
	Port uint16
	// Weight is the configured weight (keepalived's default is 1; the
	// daemon fills it in). A misc_dynamic checker may override it at run
	// time with Manager.SetWeight.
	Weight int
	// Method overrides the virtual server's forwarding method, and
	// Tunnel its tunnel: with Method "" the real server takes both from
	// the virtual server (as keepalived's real servers do), and Tunnel
	// must be zero.
	Method string
	Tunnel Tunnel
	// InhibitOnFailure and Alpha override the virtual server's setting
	// when not nil.
	InhibitOnFailure *bool
	Alpha            *bool
}

// SorryServer is sorry_server (+ sorry_server_inhibit, sorry_server_lvs_method).
type SorryServer struct {
	Addr netip.Addr
	// Port 0 means the virtual server's port.
	Port uint16
	// Weight 0 means DefaultWeight.
	Weight int
	// Method and Tunnel are as in RealServer.
	Method string
	Tunnel Tunnel
	// Inhibit (sorry_server_inhibit) keeps the sorry server listed with
	// weight 0 while the real servers serve, instead of removing it.
	Inhibit bool
}

// normalizeForwarding returns a server's method (DR, NAT or TUN) and,
// for TUN, its normalised tunnel (NormalizeTunnel; zero for the other
// methods, which use none). With m "" the server has the inherited method
// and tunnel, and its own tunnel must be zero.
func normalizeForwarding(m string, t Tunnel, inheritedMethod string, inheritedTunnel Tunnel) (string, Tunnel, error) {
	if m == "" {
		if t != (Tunnel{}) {
			return "", Tunnel{}, fmt.Errorf("tunnel (%s) without a forwarding method", t.Options())
		}
		t = inheritedTunnel
	}
	method, err := normalizeMethod(m, inheritedMethod)
	if err != nil || method != "TUN" {
		return method, Tunnel{}, err
	}
	if t, err = NormalizeTunnel(t); err != nil {
		return "", Tunnel{}, err
	}
	return method, t, nil
}

// normalizeMethod returns DR, NAT or TUN.
func normalizeMethod(m, inherited string) (string, error) {
	if m == "" {
		m = inherited
	}
	switch u := strings.ToUpper(m); u {
	case "DR", "NAT", "TUN":
		return u, nil
	}
	return "", fmt.Errorf("forwarding method %q (want DR, NAT or TUN)", m)
}

// String names a service the way ipvsadm does: "TCP 192.0.2.1:80", "FWM 3".
func (k ServiceKey) String() string {
	if k.Fwmark != 0 {
		if k.Family == 6 {
			return fmt.Sprintf("FWM %d IPv6", k.Fwmark)
		}
		return fmt.Sprintf("FWM %d", k.Fwmark)
	}
	return protoName(k.Proto) + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	}
	return fmt.Sprintf("proto-%d", p)
}

// compareServiceKeys orders services as ipvsadm lists them: fwmark, family,
// protocol, address, port.
func compareServiceKeys(a, b ServiceKey) int {
	return cmp.Or(
		cmp.Compare(a.Fwmark, b.Fwmark),
		cmp.Compare(keyFamily(a), keyFamily(b)),
		cmp.Compare(a.Proto, b.Proto),
		a.Addr.Compare(b.Addr),
		cmp.Compare(a.Port, b.Port),
	)
}

func keyFamily(k ServiceKey) uint8 {
	switch {
	case k.Fwmark != 0 && k.Family != 0:
		return k.Family
	case k.Addr.Is6() && !k.Addr.Is4In6():
		return 6
	}
	return 4
}

func compareDests(a, b Dest) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

// canonicalKey is the form the Manager stores and looks keys up in, so
// that keys built by different code (config, backends' Stats) compare
// equal: an address service has no Family and an unmapped address; a
// fwmark service has no address or port and Family 4 unless it is 6.
func canonicalKey(k ServiceKey) ServiceKey {
	if k.Fwmark != 0 {
		fam := k.Family
		if fam != 6 {
			fam = 4
		}
		return ServiceKey{Proto: k.Proto, Fwmark: k.Fwmark, Family: fam, Addr: k.Addr, Port: k.Port}
	}
	return ServiceKey{Proto: k.Proto, Addr: k.Addr.Unmap(), Port: k.Port}
}

// validateKey checks that a service key names either a fwmark or an
// address, port and known protocol.
func validateKey(k ServiceKey) error {
	if k.Fwmark != 0 {
		if k.Addr.IsValid() || k.Port != 0 {
			return errors.New("fwmark service with an address or port")
		}
		if k.Family != 0 && k.Family != 4 && k.Family != 6 {
			return fmt.Errorf("family %d (want 4 or 6)", k.Family)
		}
		return nil
	}
	if !k.Addr.IsValid() {
		return errors.New("no address and no fwmark")
	}
	switch k.Proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP:
		return nil
	}
	return fmt.Errorf("protocol %d (want TCP, UDP or SCTP)", k.Proto)
}
