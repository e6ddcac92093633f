package dataplane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Flow is an established flow of the flow table in terms every node
// shares: addresses and ports, not the node's own real-server ids. Nodes
// behind ECMP exchange them (pkg/flowsync) so a flow the router moves to
// another node keeps its real server even when that node's Maglev table
// would pick another one (a real server was added meanwhile).
type Flow struct {
	Client netip.AddrPort
	VIP    netip.AddrPort
	Proto  uint8 // lvs.ProtoTCP or lvs.ProtoUDP
	Real   netip.AddrPort
}

// Flows lists the flow table, at most max entries (0: all).
func (d *Dataplane) Flows(max int) ([]Flow, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	var (
		k   xdpvipFlowKey
		v   xdpvipFlowValue
		out []Flow
	)
	reals := map[uint32]netip.AddrPort{}
	it := d.objs.Flows.Iterate()
	for it.Next(&k, &v) {
		real, ok := reals[v.RealId]
		if !ok {
			var r xdpvipReal
			if err := d.objs.Reals.Lookup(v.RealId, &r); err != nil || r.Flags&realValid == 0 || r.SvcId != v.SvcId {
				continue
			}
			real = netip.AddrPortFrom(addrOf(r.Addr, r.Family), r.Port)
			reals[v.RealId] = real
		}
		out = append(out, Flow{
			Client: netip.AddrPortFrom(addrOf(k.Src, k.Family), ntohs(k.Sport)),
			VIP:    netip.AddrPortFrom(addrOf(k.Dst, k.Family), ntohs(k.Dport)),
			Proto:  k.Proto, Real: real,
		})
		if max > 0 && len(out) >= max {
			break
		}
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("dataplane: reading flows: %w", err)
	}
	return out, nil
}

func addrOf(b [16]byte, fam uint8) netip.Addr {
	if fam == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

// PinFlows adds flows learnt from another node to the flow table, each
// pinned to its real server, unless the flow is already there or the
// service or real server is not programmed here. It returns how many were
// added.
func (d *Dataplane) PinFlows(flows []Flow) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, ErrClosed
	}
	added := 0
	var errs []error
	for _, f := range flows {
		vip, client := f.VIP.Addr().Unmap(), f.Client.Addr().Unmap()
		if family(vip) != family(client) {
			continue
		}
		e := d.lvs.services[svcIdent{proto: f.Proto, addr: vip, port: f.VIP.Port()}]
		if e == nil {
			continue
		}
		rid, ok := e.reals[netip.AddrPortFrom(f.Real.Addr().Unmap(), f.Real.Port())]
		if !ok {
			continue
		}
		k := xdpvipFlowKey{Src: addr16(client), Dst: addr16(vip), Sport: htons(f.Client.Port()), Dport: htons(f.VIP.Port()),
			Proto: f.Proto, Family: family(vip)}
		v := xdpvipFlowValue{RealId: rid, SvcId: e.id}
		err := d.objs.Flows.Update(&k, &v, ebpf.UpdateNoExist)
		switch {
		case err == nil:
			added++
		case errors.Is(err, ebpf.ErrKeyExist):
		default:
			errs = append(errs, fmt.Errorf("dataplane: pin flow %v: %w", f.Client, err))
		}
	}
	return added, errors.Join(errs...)
}
