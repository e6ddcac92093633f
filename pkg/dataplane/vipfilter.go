package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The vip_filter map: one bitmap with a bit set for every address that has
// a service (bpf/consts.h VIP_FILTER_*), so that the program sends frames to
// any other address to the kernel after one array lookup. A collision only
// costs a services lookup.
const (
	vipFilterShift = 12
	vipFilterMult  = 0x9e3779b1
)

// vipFilterBit is the bit of addr, as the program's may_be_vip computes it:
// the address's 32-bit words (little-endian loads, as the BPF program on
// x86 and arm64 does) XORed together, times vipFilterMult, top bits.
func vipFilterBit(addr netip.Addr) uint32 {
	a := addr16(addr)
	w := binary.LittleEndian.Uint32(a[0:4])
	if family(addr) == 6 {
		w ^= binary.LittleEndian.Uint32(a[4:8]) ^ binary.LittleEndian.Uint32(a[8:12]) ^ binary.LittleEndian.Uint32(a[12:16])
	}
	return (w * vipFilterMult) >> (32 - vipFilterShift)
}

// vipBitmap returns the filter for the given addresses.
func vipBitmap(addrs []netip.Addr) xdpvipVipBitmap {
	var b xdpvipVipBitmap
	for _, a := range addrs {
		bit := vipFilterBit(a)
		b.Bits[bit/64] |= 1 << (bit % 64)
	}
	return b
}

// writeVIPFilter rewrites vip_filter from the services programmed now.
// Bits of addresses that keep a service are set in the old and the new
// bitmap alike, so the program never misses one while it is rewritten.
func (s *lvsState) writeVIPFilter() error {
	addrs := make([]netip.Addr, 0, len(s.services))
	for id := range s.services {
		addrs = append(addrs, id.addr)
	}
	b := vipBitmap(addrs)
	if err := s.d.objs.VipFilter.Put(uint32(0), &b); err != nil {
		return fmt.Errorf("dataplane: write vip_filter: %w", err)
	}
	return nil
}
