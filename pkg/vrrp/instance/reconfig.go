package instance

import (
	"reflect"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// Unchanged reports whether instance a of configuration ca and b of cb
// are the same but for where they were written, what they track
// included: a reload keeps such an instance running untouched.
func Unchanged(ca, cb *config.Config, a, b *config.VRRPInstance) bool {
	return sameTracking(ca, cb, b) && sameInstance(a, b)
}

// OnlyPriorityChanged reports whether a and b differ in their configured
// priority alone: such an instance keeps running and gets BasePriority, as
// a keepalived reload does, instead of leaving and rejoining.
func OnlyPriorityChanged(ca, cb *config.Config, a, b *config.VRRPInstance) bool {
	return sameTracking(ca, cb, b) && onlyPriorityChanged(a, b)
}

// sameInstance reports whether two instance configurations are equal but
// for where they were written.
func sameInstance(a, b *config.VRRPInstance) bool {
	return reflect.DeepEqual(comparable(a), comparable(b))
}

// comparable is a copy of in without positions (its slices copied too).
func comparable(in *config.VRRPInstance) config.VRRPInstance {
	x := *in
	x.Pos = config.Pos{}
	strip := func(vs []config.VIP) []config.VIP {
		out := make([]config.VIP, len(vs))
		for i, v := range vs {
			v.Pos = config.Pos{}
			out[i] = v
		}
		return out
	}
	x.VIPs, x.ExcludedVIPs = strip(x.VIPs), strip(x.ExcludedVIPs)
	return x
}

// onlyPriorityChanged reports whether a and b differ in priority alone.
func onlyPriorityChanged(a, b *config.VRRPInstance) bool {
	x, y := comparable(a), comparable(b)
	if x.Priority == y.Priority || x.Priority == vrrp.PriorityOwner || y.Priority == vrrp.PriorityOwner {
		return false
	}
	x.Priority = y.Priority
	return reflect.DeepEqual(x, y)
}

// sameTracking reports whether what instance ic tracks is configured the
// same in both configurations (its scripts may have changed).
func sameTracking(a, b *config.Config, ic *config.VRRPInstance) bool {
	for _, ts := range ic.TrackScripts {
		x, y := a.Script(ts.Name), b.Script(ts.Name)
		if (x == nil) != (y == nil) {
			return false
		}
		if x != nil {
			xc, yc := *x, *y
			xc.Pos, yc.Pos = config.Pos{}, config.Pos{}
			if !reflect.DeepEqual(xc, yc) {
				return false
			}
		}
	}
	ga, gb := a.SyncGroup(ic.SyncGroup), b.SyncGroup(ic.SyncGroup)
	if (ga == nil) != (gb == nil) {
		return false
	}
	return ga == nil || reflect.DeepEqual(ga.Members, gb.Members)
}
