package vrrp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
)

// DropReason says why a received advert was dropped. The daemon's status
// and the BPF drop counters share these names; the numbering is stable and
// new reasons are only ever appended. The BPF counters map has no "none":
// reason r is its index r-1 (pkg/dataplane pairs and tests them).
type DropReason uint8

// Drop reasons, in counter index order.
const (
	DropNone        DropReason = iota // not dropped (nil or unrelated error)
	DropTruncated                     // shorter than its header or address count
	DropTTL                           // TTL / hop limit not 255 (unicast: outside min_ttl..max_ttl)
	DropVersion                       // version not 2/3, or not the configured one
	DropType                          // type not ADVERTISEMENT
	DropVRID                          // VRID not configured here
	DropLength                        // longer than its address count implies
	DropAddrCount                     // address list differs from the configured VIPs
	DropChecksum                      // bad checksum
	DropAuthType                      // v2 auth type differs from ours
	DropAuth                          // v2 password differs from ours
	DropInterval                      // v2 advert interval differs from ours; v3 interval 0
	DropUnicastPeer                   // source not in unicast_peer
	DropFamily                        // source, destination or addresses of another family

	NumDropReasons int = iota // number of reasons, the size of a counter array
)

var dropNames = [...]string{
	DropNone:        "none",
	DropTruncated:   "truncated",
	DropTTL:         "ttl",
	DropVersion:     "version",
	DropType:        "type",
	DropVRID:        "vrid",
	DropLength:      "length",
	DropAddrCount:   "addr_count",
	DropChecksum:    "checksum",
	DropAuthType:    "auth_type",
	DropAuth:        "auth",
	DropInterval:    "interval",
	DropUnicastPeer: "unicast_peer",
	DropFamily:      "family",
}

// String returns the stable name used in status output and counters.
func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

var reasonErrs = []struct {
	err    error
	reason DropReason
}{
	{io.ErrUnexpectedEOF, DropTruncated},
	{ErrTTL, DropTTL},
	{ErrVersion, DropVersion},
	{ErrType, DropType},
	{ErrVRID, DropVRID},
	{ErrLength, DropLength},
	{ErrAddrCount, DropAddrCount},
	{ErrChecksum, DropChecksum},
	{ErrAuthType, DropAuthType},
	{ErrAuth, DropAuth},
	{ErrInterval, DropInterval},
	{ErrUnicastPeer, DropUnicastPeer},
	{ErrFamily, DropFamily},
}

// ReasonOf maps an error from Decode or Validate to its drop reason. It
// returns DropNone for nil and for errors that are none of this package's.
func ReasonOf(err error) DropReason {
	if err == nil {
		return DropNone
	}
	for _, re := range reasonErrs {
		if errors.Is(err, re.err) {
			return re.reason
		}
	}
	return DropNone
}

// RecvConfig is what an instance needs to check a decoded advert against
// its configuration (RFC 3768 §7.1, RFC 5798 §7.1, as keepalived does).
type RecvConfig struct {
	Version  uint8         // the instance's vrrp_version
	VRID     uint8         // virtual_router_id
	AuthType uint8         // v2 only: AuthNone or AuthPass
	AuthData [8]byte       // v2 only: PasswordBytes(auth_pass)
	Interval time.Duration // advert_int; v2 adverts must carry the same (RFC 3768 §7.1)
	// VIPs, when not nil, are the configured virtual addresses: an advert
	// must list the same number and each of them (RFC "MAY verify", which
	// keepalived does).
	VIPs []netip.Addr
	// UnicastPeers, when not empty, is the allow-list of advert sources.
	// As in keepalived, the TTL 255 check is skipped for unicast
	// instances, whose adverts may be routed.
	UnicastPeers []netip.Addr
	// PeerTTL is the TTL / hop limit range the adverts of each of
	// UnicastPeers must arrive with (unicast_peer's min_ttl / max_ttl), in
	// the same order; a peer without an entry takes any.
	PeerTTL []TTLRange
}

// TTLRange is an inclusive range of IPv4 TTL / IPv6 hop limit values.
type TTLRange struct{ Min, Max uint8 }

// Validate checks an advert decoded from a packet that arrived from src
// with the given IPv4 TTL / IPv6 hop limit. The error wraps the sentinel of
// the first failed check; ReasonOf turns it into a counter.
func (c *RecvConfig) Validate(a *Advert, src netip.Addr, ttl uint8) error {
	src = src.Unmap()
	if len(c.UnicastPeers) == 0 && ttl != TTL {
		return fmt.Errorf("%w: %d", ErrTTL, ttl)
	}
	if a.Version != c.Version {
		return fmt.Errorf("%w: got %d, configured %d", ErrVersion, a.Version, c.Version)
	}
	if a.Type != TypeAdvertisement {
		return fmt.Errorf("%w: %d", ErrType, a.Type)
	}
	if a.VRID != c.VRID {
		return fmt.Errorf("%w: got %d, configured %d", ErrVRID, a.VRID, c.VRID)
	}
	for _, ip := range a.Addrs {
		if ip.Unmap().Is4() != src.Is4() {
			return fmt.Errorf("%w: address %v from %v", ErrFamily, ip, src)
		}
	}
	if a.Version == Version2 {
		if a.AuthType != c.AuthType {
			return fmt.Errorf("%w: got %d, configured %d", ErrAuthType, a.AuthType, c.AuthType)
		}
		if c.AuthType == AuthPass && src.Is4() &&
			subtle.ConstantTimeCompare(a.AuthData[:], c.AuthData[:]) != 1 {
			return ErrAuth
		}
		if a.Interval != c.Interval {
			return fmt.Errorf("%w: got %v, configured %v", ErrInterval, a.Interval, c.Interval)
		}
	}
	if a.Version == Version3 && a.Interval == 0 {
		// A MASTER that claims to advertise continuously would make every
		// BACKUP's Master_Down_Interval its Skew_Time alone; the XDP
		// program drops it as "interval" too.
		return fmt.Errorf("%w: VRRPv3 interval 0", ErrInterval)
	}
	if c.VIPs != nil {
		if len(a.Addrs) != len(c.VIPs) {
			return fmt.Errorf("%w: %d addresses, %d configured", ErrAddrCount, len(a.Addrs), len(c.VIPs))
		}
		for _, vip := range c.VIPs {
			if !slices.Contains(a.Addrs, vip.Unmap()) {
				return fmt.Errorf("%w: %v missing", ErrAddrCount, vip)
			}
		}
	}
	if len(c.UnicastPeers) == 0 {
		return nil
	}
	i := slices.IndexFunc(c.UnicastPeers, func(p netip.Addr) bool { return p.Unmap() == src })
	if i < 0 {
		return fmt.Errorf("%w: %v", ErrUnicastPeer, src)
	}
	if i < len(c.PeerTTL) && (ttl < c.PeerTTL[i].Min || ttl > c.PeerTTL[i].Max) {
		// keepalived checks it after the source, as here.
		return fmt.Errorf("%w: %d from %v, not in %d..%d", ErrTTL, ttl, src, c.PeerTTL[i].Min, c.PeerTTL[i].Max)
	}
	return nil
}
