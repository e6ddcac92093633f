package dataplane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Fragments carry no ports (the first one does, the others do not), so
// the program cannot find their service by port: it sends every fragment
// to a VIP by frag_services, the one service of that (VIP, protocol), and
// a hash of the client address, so all fragments of a datagram reach the
// same real server, which reassembles it. A VIP with several services of
// one protocol has no entry: its fragments go to the kernel.

// fragGroup is a (VIP, protocol) pair.
type fragGroup struct {
	addr  netip.Addr
	proto uint8
}

func fragKey(g fragGroup) xdpvipFragKey {
	return xdpvipFragKey{Addr: addr16(g.addr), Proto: g.proto, Family: family(g.addr)}
}

// writeFragServices makes frag_services hold, for each (VIP, protocol)
// with exactly one service, that service's current value, and nothing
// else. Called after every change of the services or their flags.
func (s *lvsState) writeFragServices() error {
	only := map[fragGroup]*svcEntry{}
	count := map[fragGroup]int{}
	for id, e := range s.services {
		g := fragGroup{addr: id.addr, proto: id.proto}
		count[g]++
		only[g] = e
	}
	var errs []error
	want := map[fragGroup]bool{}
	for g, n := range count {
		if n != 1 {
			continue
		}
		want[g] = true
		k := fragKey(g)
		if err := s.d.objs.FragServices.Put(&k, &only[g].value); err != nil {
			errs = append(errs, fmt.Errorf("dataplane: write fragment service %v/%d: %w", g.addr, g.proto, err))
		}
	}
	for g := range s.fragWritten {
		if want[g] {
			continue
		}
		k := fragKey(g)
		if err := s.d.objs.FragServices.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("dataplane: delete fragment service %v/%d: %w", g.addr, g.proto, err))
			want[g] = true // still there: retry next time
		}
	}
	s.fragWritten = want
	return errors.Join(errs...)
}

// readFragServices fills fragWritten from the pinned map, so a restarted
// daemon deletes entries it no longer wants.
func (s *lvsState) readFragServices() error {
	s.fragWritten = map[fragGroup]bool{}
	var (
		k xdpvipFragKey
		v xdpvipSvcValue
	)
	it := s.d.objs.FragServices.Iterate()
	for it.Next(&k, &v) {
		s.fragWritten[fragGroup{addr: addrFrom16(k.Addr, k.Family), proto: k.Proto}] = true
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("dataplane: read pinned fragment services: %w", err)
	}
	return nil
}
