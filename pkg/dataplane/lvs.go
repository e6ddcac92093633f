package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/maglev"
)

// noReal is a real id that is never valid: Maglev slots without a real
// server hold it, and the program passes such frames.
const noReal = ^uint32(0)

// Service flags and real flags (enum svc_flag, enum real_flag in
// bpf/shared.h). The table limits are the maps' MaxEntries.
const (
	svcHashSrc = uint8(xdpvipSvcFlagSVC_F_HASH_SRC)
	svcPersist = uint8(xdpvipSvcFlagSVC_F_PERSIST)
	svcActive  = uint8(xdpvipSvcFlagSVC_F_ACTIVE)
	realValid  = uint8(xdpvipRealFlagREAL_F_VALID)
)

// svcIdent identifies a virtual server the XDP program can see.
type svcIdent struct {
	proto uint8
	addr  netip.Addr
	port  uint16
}

// svcEntry is one programmed service.
type svcEntry struct {
	id    uint32
	svc   lvs.Service
	value xdpvipSvcValue            // what services holds for it
	reals map[netip.AddrPort]uint32 // dest → real id
	// tunnels says how each real server of reals is reached (DR when
	// absent: reals reused from pins before the first Apply).
	tunnels map[netip.AddrPort]realTunnel
	sig     string    // the usable (key, weight) set of the current table
	table   *ebpf.Map // inner map currently in maglev_tables (nil when reused from pins)
	// unresolved are the real servers the last refresh found without a
	// usable neighbour entry (logged once, not at every refresh).
	unresolved map[netip.AddrPort]bool
}

// lvsState is the Go mirror of services, reals and maglev_tables.
type lvsState struct {
	d        *Dataplane
	services map[svcIdent]*svcEntry
	svcUsed  []bool // by service id, len = services' MaxEntries
	realUsed []bool // by real id, len = reals' MaxEntries
	nextReal uint32
	resolve  neighbours
	// links tells VLAN devices (nil without an interface: no VLAN
	// handling, frames keep their tags).
	links vlanLinks
	// fragWritten are the (VIP, protocol) pairs frag_services holds.
	fragWritten map[fragGroup]bool
}

// init rebuilds the id allocation from pinned maps, so that a restarted
// daemon gives every service and real server its previous id and the
// flows already pinned to them stay valid.
func (s *lvsState) init(d *Dataplane) error {
	s.d = d
	s.services = map[svcIdent]*svcEntry{}
	s.svcUsed = make([]bool, d.objs.Services.MaxEntries())
	s.realUsed = make([]bool, d.objs.Reals.MaxEntries())
	byID := map[uint32]*svcEntry{}
	var (
		k xdpvipSvcKey
		v xdpvipSvcValue
	)
	it := d.objs.Services.Iterate()
	for it.Next(&k, &v) {
		if int(v.Id) >= len(s.svcUsed) {
			continue
		}
		id := svcIdent{proto: k.Proto, addr: addrFrom16(k.Addr, k.Family), port: ntohs(k.Port)}
		e := &svcEntry{id: v.Id, value: v, reals: map[netip.AddrPort]uint32{}}
		e.svc.Key = lvs.ServiceKey{Proto: id.proto, Addr: id.addr, Port: id.port}
		s.services[id] = e
		s.svcUsed[v.Id] = true
		byID[v.Id] = e
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("dataplane: read pinned services: %w", err)
	}
	// Rewrite every pinned service with the flag from vip_state (a daemon
	// before SVC_F_ACTIVE did not set it) and its services_by_id entry
	// (which such a daemon did not have), so the VIPs they forward keep
	// forwarding.
	for id, e := range s.services {
		active, err := d.VIPActive(id.addr)
		if err != nil {
			return err
		}
		if err := s.writeServiceValue(id, e, active); err != nil {
			return err
		}
	}
	if err := s.writeVIPFilter(); err != nil {
		return err
	}
	if err := s.readFragServices(); err != nil {
		return err
	}
	if err := s.writeFragServices(); err != nil {
		return err
	}
	var r xdpvipReal
	for rid := uint32(0); int(rid) < len(s.realUsed); rid++ {
		if err := d.objs.Reals.Lookup(rid, &r); err != nil {
			return fmt.Errorf("dataplane: read pinned reals: %w", err)
		}
		if r.Family == 0 {
			continue
		}
		e := byID[r.SvcId]
		if e == nil {
			continue
		}
		s.realUsed[rid] = true
		e.reals[netip.AddrPortFrom(addrFrom16(r.Addr, r.Family), r.Port)] = rid
	}
	return nil
}

func (s *lvsState) closeTables() {
	for _, e := range s.services {
		if e.table != nil {
			e.table.Close()
			e.table = nil
		}
	}
}

// Name implements lvs.Backend.
func (d *Dataplane) Name() string { return "xdp" }

// SetVIPActive marks vip as owned by this node (MASTER) or not. Only frames
// to an active VIP are forwarded; everything else goes to the kernel. The
// state is kept in vip_state and mirrored into the SVC_F_ACTIVE flag of
// each of the VIP's services, which is what the program reads.
func (d *Dataplane) SetVIPActive(vip netip.Addr, active bool) error {
	vip = vip.Unmap()
	if !vip.IsValid() {
		return fmt.Errorf("%w: invalid VIP", ErrBadService)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := xdpvipVipKey{Addr: addr16(vip), Family: family(vip)}
	if active {
		if err := d.objs.VipState.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("dataplane: activate %v: %w", vip, err)
		}
	} else if err := d.objs.VipState.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("dataplane: deactivate %v: %w", vip, err)
	}
	var errs []error
	for id, e := range d.lvs.services {
		if id.addr == vip {
			errs = append(errs, d.lvs.writeServiceValue(id, e, active))
		}
	}
	errs = append(errs, d.lvs.writeFragServices())
	return errors.Join(errs...)
}

// writeServiceValue writes e's services entry with SVC_F_ACTIVE as active.
func (s *lvsState) writeServiceValue(id svcIdent, e *svcEntry, active bool) error {
	v := e.value
	v.Flags &^= svcActive
	if active {
		v.Flags |= svcActive
	}
	k := svcKey(id)
	// services_by_id first: a flow whose entry it does not match yet
	// takes the services path, which is always right.
	if err := s.d.objs.ServicesById.Put(e.id, &xdpvipSvcSlot{Key: k, Value: v}); err != nil {
		return fmt.Errorf("dataplane: write service %v:%d by id: %w", id.addr, id.port, err)
	}
	if err := s.d.objs.Services.Put(&k, &v); err != nil {
		return fmt.Errorf("dataplane: write service %v:%d: %w", id.addr, id.port, err)
	}
	e.value = v
	return nil
}

// VIPActive reports whether the program forwards vip's traffic (state
// that survives a daemon restart in the pinned map).
func (d *Dataplane) VIPActive(vip netip.Addr) (bool, error) {
	vip = vip.Unmap()
	k := xdpvipVipKey{Addr: addr16(vip), Family: family(vip)}
	var v uint8
	err := d.objs.VipState.Lookup(&k, &v)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dataplane: VIP state of %v: %w", vip, err)
	}
	return v == 1, nil
}

// Apply implements lvs.Backend: afterwards the program forwards exactly
// the given services. Fwmark services and NAT real servers cannot be done
// in XDP, nor TUN real servers with remcsum; they are skipped with a log
// line. TUN real servers (IP-in-IP, GUE, GRE) are encapsulated. A real
// server whose MAC (DR) or next hop (TUN) is not (yet) in the neighbour
// cache stays out of the Maglev table until the cache resolves it in the
// background and says so (Apply never waits for the network).
func (d *Dataplane) Apply(services []lvs.Service) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return d.applyLocked(services)
}

func (d *Dataplane) applyLocked(services []lvs.Service) error {
	s := &d.lvs
	want := map[svcIdent]lvs.Service{}
	for _, svc := range services {
		if svc.Key.Fwmark != 0 {
			d.log.Warn("xdp dataplane: fwmark services are not supported, skipping", "fwmark", svc.Key.Fwmark)
			continue
		}
		if svc.Key.Proto != lvs.ProtoTCP && svc.Key.Proto != lvs.ProtoUDP {
			d.log.Warn("xdp dataplane: only TCP and UDP services, skipping", "proto", svc.Key.Proto)
			continue
		}
		addr := svc.Key.Addr.Unmap()
		if !addr.IsValid() {
			return fmt.Errorf("%w: invalid VIP", ErrBadService)
		}
		want[svcIdent{proto: svc.Key.Proto, addr: addr, port: svc.Key.Port}] = svc
	}
	var errs []error
	for id, e := range s.services {
		if _, ok := want[id]; !ok {
			errs = append(errs, s.removeService(id, e))
		}
	}
	for id, svc := range want {
		errs = append(errs, s.applyService(id, svc))
	}
	errs = append(errs, s.writeVIPFilter(), s.writeFragServices())
	d.keepNeighbours()
	return errors.Join(errs...)
}

func (s *lvsState) removeService(id svcIdent, e *svcEntry) error {
	d := s.d
	k := svcKey(id)
	var errs []error
	if err := d.objs.Services.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("dataplane: delete service: %w", err))
	}
	if err := d.objs.MaglevTables.Delete(e.id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("dataplane: delete table: %w", err))
	}
	if err := d.objs.ServicesById.Put(e.id, &xdpvipSvcSlot{}); err != nil {
		errs = append(errs, fmt.Errorf("dataplane: clear service id %d: %w", e.id, err))
	}
	for ap, rid := range e.reals {
		errs = append(errs, s.freeReal(rid))
		delete(e.reals, ap)
	}
	if e.table != nil {
		e.table.Close()
	}
	s.svcUsed[e.id] = false
	delete(s.services, id)
	return errors.Join(errs...)
}

func svcKey(id svcIdent) xdpvipSvcKey {
	return xdpvipSvcKey{Addr: addr16(id.addr), Port: htons(id.port), Proto: id.proto, Family: family(id.addr)}
}

func (s *lvsState) applyService(id svcIdent, svc lvs.Service) error {
	d := s.d
	e := s.services[id]
	if e == nil {
		sid, ok := firstFree(s.svcUsed, 0)
		if !ok {
			return fmt.Errorf("%w: more than %d services", ErrTableFull, len(s.svcUsed))
		}
		s.svcUsed[sid] = true
		e = &svcEntry{id: sid, reals: map[netip.AddrPort]uint32{}}
		s.services[id] = e
	}
	e.svc = svc

	// Real servers: allocate ids, drop the ones no longer listed.
	wantReals := map[netip.AddrPort]lvs.Dest{}
	tunnels := map[netip.AddrPort]realTunnel{}
	for _, dst := range svc.Dests {
		t, why := forwarding(dst)
		if why != "" {
			d.log.Warn("xdp dataplane: real server not forwardable in XDP, skipping: "+why, "vip", id.addr, "rs", dst.Addr,
				"method", dst.Method, "tunnel", dst.Tunnel.Type, "csum", dst.Tunnel.Csum)
			continue
		}
		a := dst.Addr.Unmap()
		// A tunnel carries either family in either (IPVS's mixed-family
		// TUN); direct routing sends the frame itself.
		if t.typ == tunNone && family(a) != family(id.addr) {
			return fmt.Errorf("%w: real server %v of %v is another family", ErrBadService, a, id.addr)
		}
		ap := netip.AddrPortFrom(a, dst.Port)
		wantReals[ap] = dst
		tunnels[ap] = t
	}
	e.tunnels = tunnels
	var errs []error
	for ap, rid := range e.reals {
		if _, ok := wantReals[ap]; !ok {
			errs = append(errs, s.freeReal(rid))
			delete(e.reals, ap)
		}
	}
	for ap := range wantReals {
		if _, ok := e.reals[ap]; ok {
			continue
		}
		rid, ok := s.allocReal()
		if !ok {
			return fmt.Errorf("%w: more than %d real servers", ErrTableFull, len(s.realUsed))
		}
		e.reals[ap] = rid
	}
	if err := s.refreshService(id, e); err != nil {
		errs = append(errs, err)
	}

	// The service entry last, so the program never sees it without a table.
	v := xdpvipSvcValue{Id: e.id, RingSize: d.m}
	switch {
	case svc.PersistenceTimeout > 0:
		v.Flags |= svcPersist
		v.PersistTimeoutS = uint32((svc.PersistenceTimeout + time.Second - 1) / time.Second)
	case svc.Scheduler == "sh":
		v.Flags |= svcHashSrc
	}
	e.value = v
	active, err := d.VIPActive(id.addr)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, s.writeServiceValue(id, e, active))
	return errors.Join(errs...)
}

// refreshService looks up the service's real servers, writes their entries
// and rebuilds its Maglev table when the usable set changed.
func (s *lvsState) refreshService(id svcIdent, e *svcEntry) error {
	d := s.d
	weights := map[netip.AddrPort]int{}
	for _, dst := range e.svc.Dests {
		weights[netip.AddrPortFrom(dst.Addr.Unmap(), dst.Port)] = dst.Weight
	}
	var (
		entries []maglev.Entry
		ids     []uint32
		errs    []error
	)
	aps := make([]netip.AddrPort, 0, len(e.reals))
	for ap := range e.reals {
		aps = append(aps, ap)
	}
	slices.SortFunc(aps, func(a, b netip.AddrPort) int { return a.Compare(b) })
	unresolved := map[netip.AddrPort]bool{}
	for _, ap := range aps {
		rid := e.reals[ap]
		r := xdpvipReal{SvcId: e.id, Addr: addr16(ap.Addr()), Family: family(ap.Addr()), Port: ap.Port()}
		var err error
		if t := e.tunnels[ap]; t.typ != tunNone {
			err = s.resolveTunnel(&r, ap.Addr(), t, family(id.addr))
		} else {
			var mac net.HardwareAddr
			var ifindex int
			if mac, ifindex, err = s.resolve.Lookup(ap.Addr()); err == nil {
				copy(r.Mac[:], mac)
				r.Ifindex, r.Vlan = s.egress(ifindex)
				r.Flags = realValid
			}
		}
		if err != nil {
			r = xdpvipReal{SvcId: e.id, Addr: r.Addr, Family: r.Family, Port: r.Port}
			if !e.unresolved[ap] {
				d.log.Warn("xdp dataplane: real server not resolved yet", "rs", ap.Addr(), "err", err)
			}
			unresolved[ap] = true
		} else if e.unresolved[ap] {
			d.log.Info("xdp dataplane: real server resolved", "rs", ap.Addr(), "mac", net.HardwareAddr(r.Mac[:]).String())
		}
		if err := d.objs.Reals.Put(rid, &r); err != nil {
			errs = append(errs, fmt.Errorf("dataplane: write real %v: %w", ap, err))
			continue
		}
		if r.Flags&realValid != 0 && weights[ap] > 0 {
			entries = append(entries, maglev.Entry{Key: ap.String(), Weight: uint32(weights[ap])})
			ids = append(ids, rid)
		}
	}
	e.unresolved = unresolved
	// Never empty, so an empty table is written once, not at every refresh.
	var sig strings.Builder
	fmt.Fprintf(&sig, "M=%d;", d.m)
	for i, en := range entries {
		fmt.Fprintf(&sig, "%s=%d/%d;", en.Key, en.Weight, ids[i])
	}
	if sig.String() == e.sig {
		return errors.Join(errs...)
	}
	if err := s.writeTable(e, entries, ids); err != nil {
		errs = append(errs, fmt.Errorf("dataplane: table for %v:%d: %w", id.addr, id.port, err))
	} else {
		e.sig = sig.String()
	}
	return errors.Join(errs...)
}

// writeTable builds the Maglev table into a new inner map and swaps it in
// with one update of maglev_tables (atomic for the program).
func (s *lvsState) writeTable(e *svcEntry, entries []maglev.Entry, ids []uint32) error {
	d := s.d
	slots := make([]uint32, d.m)
	for i := range slots {
		slots[i] = noReal
	}
	if len(entries) > 0 {
		tab, err := maglev.Build(entries, d.m)
		if err != nil {
			return err
		}
		for i, idx := range tab {
			if idx >= 0 {
				slots[i] = ids[idx]
			}
		}
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "maglev_ring",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: d.m,
	})
	if err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	keys := make([]uint32, d.m)
	for i := range keys {
		keys[i] = uint32(i)
	}
	if _, err := m.BatchUpdate(keys, slots, nil); err != nil {
		for i := range keys {
			if err := m.Put(keys[i], slots[i]); err != nil {
				m.Close()
				return fmt.Errorf("fill table: %w", err)
			}
		}
	}
	if err := d.objs.MaglevTables.Put(e.id, m); err != nil {
		m.Close()
		return fmt.Errorf("swap table: %w", err)
	}
	if e.table != nil {
		e.table.Close()
	}
	e.table = m
	return nil
}

func (s *lvsState) allocReal() (uint32, bool) {
	rid, ok := firstFree(s.realUsed, s.nextReal)
	if !ok {
		return 0, false
	}
	s.realUsed[rid] = true
	s.nextReal = (rid + 1) % uint32(len(s.realUsed))
	return rid, true
}

// freeReal clears a real server's entry: flows pinned to it fall back to
// the Maglev table.
func (s *lvsState) freeReal(rid uint32) error {
	s.realUsed[rid] = false
	if err := s.d.objs.Reals.Put(rid, &xdpvipReal{}); err != nil {
		return fmt.Errorf("dataplane: clear real %d: %w", rid, err)
	}
	return nil
}

// firstFree returns the first false index at or after start, wrapping.
func firstFree(used []bool, start uint32) (uint32, bool) {
	n := uint32(len(used))
	for i := uint32(0); i < n; i++ {
		j := (start + i) % n
		if !used[j] {
			return j, true
		}
	}
	return 0, false
}

// Stats implements lvs.Backend: per real server, packets, bytes and new
// flows forwarded by the program (summed over CPUs). Replies bypass the
// load balancer in DR, so the Out counters are zero.
func (d *Dataplane) Stats() ([]lvs.ServiceStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []lvs.ServiceStats
	for _, e := range d.lvs.services {
		st := lvs.ServiceStats{Key: e.svc.Key}
		aps := make([]netip.AddrPort, 0, len(e.reals))
		for ap := range e.reals {
			aps = append(aps, ap)
		}
		slices.SortFunc(aps, func(a, b netip.AddrPort) int { return a.Compare(b) })
		for _, ap := range aps {
			var per []xdpvipRealCounters
			if err := d.objs.RealStats.Lookup(e.reals[ap], &per); err != nil {
				return nil, fmt.Errorf("dataplane: real stats: %w", err)
			}
			ds := lvs.DestStats{Addr: ap.Addr(), Port: ap.Port()}
			for _, c := range per {
				ds.PktsIn += c.Packets
				ds.BytesIn += c.Bytes
				ds.Conns += c.NewFlows
			}
			st.Conns += ds.Conns
			st.PktsIn += ds.PktsIn
			st.BytesIn += ds.BytesIn
			st.Dests = append(st.Dests, ds)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b lvs.ServiceStats) int {
		if c := a.Key.Addr.Compare(b.Key.Addr); c != 0 {
			return c
		}
		if a.Key.Port != b.Key.Port {
			return int(a.Key.Port) - int(b.Key.Port)
		}
		return int(a.Key.Proto) - int(b.Key.Proto)
	})
	return out, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
func ntohs(v uint16) uint16 { return htons(v) }

var _ lvs.Backend = (*Dataplane)(nil)
