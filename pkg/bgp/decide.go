// Package bgp announces virtual servers' addresses to routers with an
// embedded GoBGP speaker (github.com/osrg/gobgp/v4) and decides, as a pure
// function, when an address may be announced: route health injection.
package bgp

import (
	"net/netip"
	"slices"
)

// Modes of announcement (the config's `announce ecmp` / `announce vrrp NAME`).
const (
	ModeECMP = "ecmp"
	ModeVRRP = "vrrp"
)

// Reasons a route is not announced, as `xdpvip status` shows them.
const (
	ReasonDraining   = "draining"
	ReasonDetached   = "dataplane not attached"
	ReasonNoQuorum   = "no quorum"
	ReasonNotMaster  = "instance not MASTER"
	ReasonNoInstance = "instance not running"
)

// Inputs is what a node knows about one announced virtual server.
type Inputs struct {
	// Mode is ModeECMP or ModeVRRP.
	Mode string
	// Attached: the dataplane that forwards the address is in place.
	Attached bool
	// Quorum: the virtual server's real servers are healthy enough.
	Quorum bool
	// Draining: an operator asked the node to leave (xdpvip drain, SIGTERM).
	Draining bool
	// InstanceRunning and Master describe the vrrp_instance of ModeVRRP.
	InstanceRunning bool
	Master          bool
}

// Decide reports whether the node announces the virtual server's address,
// and when not, why (the first reason that applies, most deliberate first).
func Decide(in Inputs) (announce bool, reason string) {
	switch {
	case in.Draining:
		return false, ReasonDraining
	case !in.Attached:
		return false, ReasonDetached
	case !in.Quorum:
		return false, ReasonNoQuorum
	case in.Mode == ModeVRRP && !in.InstanceRunning:
		return false, ReasonNoInstance
	case in.Mode == ModeVRRP && !in.Master:
		return false, ReasonNotMaster
	}
	return true, ""
}

// Forward reports whether an ECMP virtual server's address is forwarded by
// this node's dataplane: while it is announced, and on while draining, so
// flows the router still sends during its convergence keep their real
// server. (VRRP-mode addresses follow the instance's role instead.)
func Forward(in Inputs) bool {
	if in.Mode != ModeECMP {
		return false
	}
	in.Draining = false
	ok, _ := Decide(in)
	return ok
}

// HostPrefix is the /32 or /128 announced for addr.
func HostPrefix(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen())
}

// Diff returns what to announce and what to withdraw to go from the set
// have to the set want, each sorted.
func Diff(have, want map[netip.Prefix]bool) (announce, withdraw []netip.Prefix) {
	for p := range want {
		if !have[p] {
			announce = append(announce, p)
		}
	}
	for p := range have {
		if !want[p] {
			withdraw = append(withdraw, p)
		}
	}
	cmp := func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	}
	slices.SortFunc(announce, cmp)
	slices.SortFunc(withdraw, cmp)
	return announce, withdraw
}
