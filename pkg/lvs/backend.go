// Package lvs holds the virtual-server model that every dataplane is driven
// from: services (VIP, port, protocol or fwmark) with their real servers,
// weights and health. A Backend (the XDP dataplane, kernel IPVS) receives
// the desired state and reconciles itself to it.
package lvs

import (
	"net/netip"
	"time"
)

// Protocol numbers, as in IP headers (and IPVS).
const (
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// ServiceKey identifies a virtual server: either Addr+Port+Proto, or Fwmark
// (then Addr and Port are zero and Family tells the address family).
type ServiceKey struct {
	Proto  uint8
	Addr   netip.Addr
	Port   uint16
	Fwmark uint32
	// Family is 4 or 6; only needed for fwmark services.
	Family uint8
}

// Service is one virtual server as a dataplane programs it.
type Service struct {
	Key ServiceKey
	// Scheduler is keepalived's lb_algo: rr wrr lc wlc lblc lblcr sh dh mh sed nq fo ovf.
	Scheduler string
	// PersistenceTimeout is 0 for no persistence.
	PersistenceTimeout time.Duration
	// PersistenceGranularity is the client netmask length persistence keys
	// on (32 or 128 means one client address).
	PersistenceGranularity int
	// Dests are the real servers that should be in the table now, with the
	// weight the dataplane should use (0 = keep listed but send nothing new,
	// as inhibit_on_failure does). A sorry server in use is listed here.
	Dests []Dest
}

// Dest is one real server of a Service.
type Dest struct {
	Addr   netip.Addr
	Port   uint16
	Weight int
	// Method is the forwarding method: "DR", "NAT" or "TUN".
	Method string
	// Tunnel is how a TUN real server's packets are encapsulated (the
	// zero value is keepalived's default: IP-in-IP without checksums).
	Tunnel Tunnel
}

// Tunnel types and checksum options, as keepalived spells them after
// "lb_kind TUN" ("type ipip|gue|gre", "port N", "nocsum|csum|remcsum").
const (
	TunnelIPIP = "ipip"
	TunnelGUE  = "gue"
	TunnelGRE  = "gre"

	TunnelNoCsum  = "nocsum"
	TunnelCsum    = "csum"
	TunnelRemCsum = "remcsum"
)

// Tunnel is the encapsulation of a TUN real server.
type Tunnel struct {
	// Type is TunnelIPIP, TunnelGUE or TunnelGRE; "" means TunnelIPIP.
	Type string
	// Port is the GUE destination port (only with TunnelGUE).
	Port uint16
	// Csum is TunnelNoCsum, TunnelCsum or TunnelRemCsum; "" means
	// TunnelNoCsum (outer UDP/GRE checksum left out).
	Csum string
}

// DestStats are a real server's counters as a backend reports them.
type DestStats struct {
	Addr       netip.Addr
	Port       uint16
	ActiveConn uint64
	InactConn  uint64
	Conns      uint64 // new connections / flows
	PktsIn     uint64
	PktsOut    uint64
	BytesIn    uint64
	BytesOut   uint64
}

// ServiceStats are a service's counters and its real servers' counters.
type ServiceStats struct {
	Key                                ServiceKey
	Conns                              uint64
	PktsIn, PktsOut, BytesIn, BytesOut uint64
	Dests                              []DestStats
}

// Backend is a dataplane that forwards virtual-server traffic.
type Backend interface {
	// Name is "xdp", "ipvs" or "none".
	Name() string
	// Apply makes the backend forward exactly the given services. Backends
	// diff against what they programmed before and change only that;
	// services they did not create are left alone.
	Apply(services []Service) error
	// Stats returns the counters of the services this backend programmed.
	Stats() ([]ServiceStats, error)
	// Close releases the backend's handles; it does not remove the services
	// unless the backend documents otherwise.
	Close() error
}
