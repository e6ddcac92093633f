package ipvs

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	kipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// ErrInvalidService is wrapped by every error about a service or real
// server that cannot be expressed in kernel IPVS.
var ErrInvalidService = errors.New("ipvs: invalid service")

// schedulers maps keepalived's lb_algo values to the kernel's IPVS
// scheduler names (the ip_vs_<name> modules). They are the same words;
// the table is what makes an unknown lb_algo an error before the kernel is
// asked.
var schedulers = map[string]string{
	"rr":    "rr",
	"wrr":   "wrr",
	"lc":    "lc",
	"wlc":   "wlc",
	"lblc":  "lblc",
	"lblcr": "lblcr",
	"sh":    "sh",
	"dh":    "dh",
	"mh":    "mh",
	"sed":   "sed",
	"nq":    "nq",
	"fo":    "fo",
	"ovf":   "ovf",
}

// Scheduler returns the kernel IPVS scheduler name for keepalived's lb_algo.
func Scheduler(lbAlgo string) (string, error) {
	s, ok := schedulers[strings.ToLower(lbAlgo)]
	if !ok {
		return "", fmt.Errorf("%w: unknown lb_algo %q", ErrInvalidService, lbAlgo)
	}
	return s, nil
}

// ForwardMethod returns the kernel forwarding type for keepalived's lb_kind
// ("DR", "NAT", "TUN"). The empty string is NAT, keepalived's default.
func ForwardMethod(lbKind string) (kipvs.ForwardType, error) {
	switch strings.ToUpper(lbKind) {
	case "DR":
		return kipvs.DirectRoute, nil
	case "NAT", "":
		return kipvs.Masquerade, nil
	case "TUN":
		return kipvs.Tunnel, nil
	}
	return 0, fmt.Errorf("%w: unknown forwarding method %q", ErrInvalidService, lbKind)
}

// normalKey returns the key under which a service is known to the kernel:
// a fwmark service is identified by its mark and family only, an address
// service by protocol, address and port.
func normalKey(k lvs.ServiceKey) (lvs.ServiceKey, error) {
	if k.Fwmark != 0 {
		fam := k.Family
		if fam == 0 {
			fam = 4
		}
		if fam != 4 && fam != 6 {
			return lvs.ServiceKey{}, fmt.Errorf("%w: fwmark %d: family %d is neither 4 nor 6", ErrInvalidService, k.Fwmark, k.Family)
		}
		return lvs.ServiceKey{Fwmark: k.Fwmark, Family: fam}, nil
	}
	if !k.Addr.IsValid() {
		return lvs.ServiceKey{}, fmt.Errorf("%w: no address and no fwmark", ErrInvalidService)
	}
	switch k.Proto {
	case lvs.ProtoTCP, lvs.ProtoUDP, lvs.ProtoSCTP:
	default:
		return lvs.ServiceKey{}, fmt.Errorf("%w: %s: protocol %d is not TCP, UDP or SCTP", ErrInvalidService, k.Addr, k.Proto)
	}
	addr := k.Addr.Unmap()
	fam := uint8(4)
	if addr.Is6() {
		fam = 6
	}
	return lvs.ServiceKey{Proto: k.Proto, Addr: addr, Port: k.Port, Family: fam}, nil
}

// keyOf returns the normalised key of a service read from the kernel.
func keyOf(s kipvs.Service) lvs.ServiceKey {
	fam := uint8(4)
	if s.Family == kipvs.INET6 {
		fam = 6
	}
	if s.FWMark != 0 {
		return lvs.ServiceKey{Fwmark: s.FWMark, Family: fam}
	}
	return lvs.ServiceKey{Proto: uint8(s.Protocol), Addr: s.Address.Unmap(), Port: s.Port, Family: fam}
}

func familyOf(fam uint8) kipvs.AddressFamily {
	if fam == 6 {
		return kipvs.INET6
	}
	return kipvs.INET
}

// kernelService is a desired service in the kernel's terms, with its real
// servers keyed by address and port.
type kernelService struct {
	key   lvs.ServiceKey
	svc   kipvs.Service
	dests map[netip.AddrPort]kipvs.Destination
	order []netip.AddrPort // the order the caller listed them, for creation
}

// toKernel converts one desired service. The key is normalised (see
// normalKey).
func toKernel(s lvs.Service) (kernelService, error) {
	key, err := normalKey(s.Key)
	if err != nil {
		return kernelService{}, err
	}
	sched, err := Scheduler(s.Scheduler)
	if err != nil {
		return kernelService{}, fmt.Errorf("%s: %w", keyString(key), err)
	}
	ks := kipvs.Service{
		Address:   key.Addr,
		Port:      key.Port,
		Protocol:  kipvs.Protocol(key.Proto),
		FWMark:    key.Fwmark,
		Family:    familyOf(key.Family),
		Scheduler: sched,
	}
	bits := 32
	if key.Family == 6 {
		bits = 128
	}
	if s.PersistenceTimeout < 0 {
		return kernelService{}, fmt.Errorf("%w: %s: negative persistence timeout %v", ErrInvalidService, keyString(key), s.PersistenceTimeout)
	}
	if s.PersistenceTimeout > 0 {
		secs := (s.PersistenceTimeout + time.Second - 1) / time.Second
		if secs > math.MaxUint32/1000 { // the kernel multiplies by HZ
			return kernelService{}, fmt.Errorf("%w: %s: persistence timeout %v too long", ErrInvalidService, keyString(key), s.PersistenceTimeout)
		}
		ks.Flags |= kipvs.ServicePersistent
		ks.Timeout = uint32(secs)
	}
	gran := s.PersistenceGranularity
	if gran == 0 {
		gran = bits
	}
	if gran < 1 || gran > bits {
		return kernelService{}, fmt.Errorf("%w: %s: persistence granularity /%d outside 1..%d", ErrInvalidService, keyString(key), s.PersistenceGranularity, bits)
	}
	// The kernel requires a netmask on every service; keepalived sends
	// the all-ones mask when persistence_granularity is not set.
	ks.Netmask = netmask.MaskFrom(gran, bits)

	out := kernelService{key: key, svc: ks, dests: make(map[netip.AddrPort]kipvs.Destination, len(s.Dests))}
	for _, d := range s.Dests {
		kd, err := toKernelDest(d)
		if err != nil {
			return kernelService{}, fmt.Errorf("%s: %w", keyString(key), err)
		}
		ap := netip.AddrPortFrom(kd.Address, kd.Port)
		if _, dup := out.dests[ap]; dup {
			return kernelService{}, fmt.Errorf("%w: %s: real server %s listed twice", ErrInvalidService, keyString(key), ap)
		}
		out.dests[ap] = kd
		out.order = append(out.order, ap)
	}
	return out, nil
}

func toKernelDest(d lvs.Dest) (kipvs.Destination, error) {
	if !d.Addr.IsValid() {
		return kipvs.Destination{}, fmt.Errorf("%w: real server without address", ErrInvalidService)
	}
	addr := d.Addr.Unmap()
	if d.Weight < 0 || d.Weight > math.MaxInt32 {
		return kipvs.Destination{}, fmt.Errorf("%w: real server %s: weight %d outside 0..%d", ErrInvalidService, addr, d.Weight, math.MaxInt32)
	}
	fwd, err := ForwardMethod(d.Method)
	if err != nil {
		return kipvs.Destination{}, fmt.Errorf("real server %s: %w", addr, err)
	}
	fam := kipvs.INET
	if addr.Is6() {
		fam = kipvs.INET6
	}
	kd := kipvs.Destination{
		Address:   addr,
		Port:      d.Port,
		Family:    fam,
		FwdMethod: fwd,
		Weight:    uint32(d.Weight),
	}
	if fwd == kipvs.Tunnel {
		// Other methods send the zero tunnel (keepalived sends the
		// options it read after any method; the kernel uses them only for
		// TUN).
		if kd.TunnelType, kd.TunnelPort, kd.TunnelFlags, err = KernelTunnel(d.Tunnel); err != nil {
			return kipvs.Destination{}, fmt.Errorf("real server %s: %w", addr, err)
		}
	}
	return kd, nil
}

// The kernel's tunnel types and encapsulation flags (include/uapi/linux/
// ip_vs.h: IP_VS_CONN_F_TUNNEL_TYPE_IPIP 0, _GUE 1, _GRE 2;
// IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM 0, _CSUM 1, _REMCSUM 2) by the lvs
// model's normalised words ("" for the defaults).
var (
	kernelTunnelTypes = map[string]kipvs.TunnelType{"": kipvs.IPIP, lvs.TunnelGUE: kipvs.GUE, lvs.TunnelGRE: kipvs.GRE}
	kernelTunnelFlags = map[string]kipvs.TunnelFlags{"": kipvs.TunnelEncapNoChecksum, lvs.TunnelCsum: kipvs.TunnelEncapChecksum,
		lvs.TunnelRemCsum: kipvs.TunnelEncapRemoteChecksum}
)

// KernelTunnel returns a TUN real server's tunnel in the kernel's terms
// (IPVS_DEST_ATTR_TUN_TYPE, _TUN_PORT, _TUN_FLAGS), after checking it as
// keepalived does (lvs.NormalizeTunnel).
func KernelTunnel(t lvs.Tunnel) (kipvs.TunnelType, uint16, kipvs.TunnelFlags, error) {
	n, err := lvs.NormalizeTunnel(t)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %v", ErrInvalidService, err)
	}
	return kernelTunnelTypes[n.Type], n.Port, kernelTunnelFlags[n.Csum], nil
}

// wordOf returns the key of m whose value is v, or "" and false.
func wordOf[V comparable](m map[string]V, v V) (string, bool) {
	for k, x := range m {
		if x == v {
			return k, true
		}
	}
	return "", false
}

// destFromKernel is a real server read from the kernel in the lvs model's
// terms: the method, weight and (for TUN) the tunnel, normalised as the
// Manager normalises them, so it compares equal to the Dest that created it.
// A tunnel type or flag this code does not know is kept as its number
// ("type 7", "flags 0x10").
func destFromKernel(d kipvs.Destination) lvs.Dest {
	out := lvs.Dest{Addr: d.Address.Unmap(), Port: d.Port, Weight: int(d.Weight)}
	switch d.FwdMethod {
	case kipvs.DirectRoute:
		out.Method = "DR"
	case kipvs.Masquerade:
		out.Method = "NAT"
	case kipvs.Tunnel:
		out.Method = "TUN"
	default:
		out.Method = d.FwdMethod.String()
	}
	if d.FwdMethod != kipvs.Tunnel {
		return out
	}
	var ok bool
	if out.Tunnel.Type, ok = wordOf(kernelTunnelTypes, d.TunnelType); !ok {
		out.Tunnel.Type = fmt.Sprintf("type %d", d.TunnelType)
	}
	if out.Tunnel.Csum, ok = wordOf(kernelTunnelFlags, d.TunnelFlags); !ok {
		out.Tunnel.Csum = fmt.Sprintf("flags %#x", uint16(d.TunnelFlags))
	}
	out.Tunnel.Port = d.TunnelPort
	return out
}

// serviceChanged tells whether the kernel's service differs from the
// desired one in anything Apply sets. The kernel adds the "hashed" flag
// itself, so it is ignored.
func serviceChanged(have, want kipvs.Service) bool {
	const ignore = kipvs.ServiceHashed
	return have.Scheduler != want.Scheduler ||
		have.Flags&^ignore != want.Flags&^ignore ||
		have.Timeout != want.Timeout ||
		have.Netmask != want.Netmask
}

// destChanged tells whether a real server in the kernel differs from the
// desired one. The kernel reports "Local" for a real server whose address
// is on the director itself, whatever method was asked for, so Local
// matches any method.
func destChanged(have, want kipvs.Destination) bool {
	fwd := have.FwdMethod != want.FwdMethod && have.FwdMethod != kipvs.Local
	return fwd || have.Weight != want.Weight ||
		have.UpperThreshold != want.UpperThreshold ||
		have.LowerThreshold != want.LowerThreshold ||
		have.TunnelType != want.TunnelType ||
		have.TunnelPort != want.TunnelPort ||
		have.TunnelFlags != want.TunnelFlags
}

// keyString formats a key as ipvsadm names a service.
func keyString(k lvs.ServiceKey) string {
	if k.Fwmark != 0 {
		if k.Family == 6 {
			return fmt.Sprintf("FWM %d IPv6", k.Fwmark)
		}
		return fmt.Sprintf("FWM %d", k.Fwmark)
	}
	proto := fmt.Sprintf("proto-%d", k.Proto)
	switch k.Proto {
	case lvs.ProtoTCP:
		proto = "TCP"
	case lvs.ProtoUDP:
		proto = "UDP"
	case lvs.ProtoSCTP:
		proto = "SCTP"
	}
	return proto + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}
