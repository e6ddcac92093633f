package lvs

import (
	"math"
	"net/netip"
	"time"
)

// Rates turns two listings taken dt apart into one whose counters are
// per-second rates, as `ipvsadm -Ln --rate` shows them: Conns becomes CPS,
// InPkts InPPS, OutPkts OutPPS, InBytes InBPS and OutBytes OutBPS. Services
// and real servers are matched by address and port (a virtual server or
// real server that is new in after starts from zero); a counter that went
// backwards (the dataplane restarted) counts as a fresh start.
func Rates(before, after []ServiceView, dt time.Duration) []ServiceView {
	if dt <= 0 {
		dt = time.Second
	}
	// Matched on what a listing shows (Key does not travel in JSON).
	type skey struct {
		proto  string
		addr   netip.Addr
		port   uint16
		fwmark uint32
		family uint8
	}
	type dkey struct {
		svc  skey
		addr netip.Addr
		port uint16
	}
	keyOf := func(v *ServiceView) skey { return skey{v.Protocol, v.Addr, v.Port, v.Fwmark, v.Family} }
	old := map[skey]Counters{}
	oldDest := map[dkey]Counters{}
	for i := range before {
		k := keyOf(&before[i])
		old[k] = before[i].Counters
		for _, d := range before[i].Dests {
			oldDest[dkey{k, d.Addr, d.Port}] = d.Counters
		}
	}
	out := make([]ServiceView, len(after))
	for i, v := range after {
		k := keyOf(&v)
		v.Counters = rate(old[k], v.Counters, dt)
		dests := make([]DestView, len(v.Dests))
		for j, d := range v.Dests {
			d.Counters = rate(oldDest[dkey{k, d.Addr, d.Port}], d.Counters, dt)
			dests[j] = d
		}
		v.Dests = dests
		out[i] = v
	}
	return out
}

func rate(a, b Counters, dt time.Duration) Counters {
	per := func(x, y uint64) uint64 {
		if y < x {
			x = 0
		}
		return uint64(math.Round(float64(y-x) / dt.Seconds()))
	}
	return Counters{
		Conns: per(a.Conns, b.Conns), InPkts: per(a.InPkts, b.InPkts), OutPkts: per(a.OutPkts, b.OutPkts),
		InBytes: per(a.InBytes, b.InBytes), OutBytes: per(a.OutBytes, b.OutBytes),
	}
}
