package vrrpnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// cmsgInfo is what the transport reads from a datagram's control messages.
type cmsgInfo struct {
	Ifindex  int
	Dst      netip.Addr
	HopLimit int // -1 when absent
	// Stamp is the SO_TIMESTAMPNS receive time; zero when absent.
	Stamp time.Time
}

// parseControl reads IP_PKTINFO / IPV6_PKTINFO and IPV6_HOPLIMIT / IP_TTL.
//
// struct in_pktinfo (IP_PKTINFO), host byte order for the index:
//
//	offset  size  field
//	0       4     ipi_ifindex
//	4       4     ipi_spec_dst (local address)
//	8       4     ipi_addr     (header destination address)
//
// struct in6_pktinfo (IPV6_PKTINFO):
//
//	0       16    ipi6_addr    (destination address)
//	16      4     ipi6_ifindex
//
// IPV6_HOPLIMIT and IP_TTL carry one host-order int (4 bytes).
//
// SCM_TIMESTAMPNS (SO_TIMESTAMPNS) carries a struct timespec of
// CLOCK_REALTIME, host order: tv_sec and tv_nsec, 8 bytes each on 64-bit.
func parseControl(oob []byte) (cmsgInfo, error) {
	info := cmsgInfo{HopLimit: -1}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return info, fmt.Errorf("vrrpnet: control messages: %w", err)
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12:
			info.Ifindex = int(int32(binary.NativeEndian.Uint32(m.Data[0:4])))
			info.Dst = netip.AddrFrom4([4]byte(m.Data[8:12]))
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL && len(m.Data) >= 4:
			info.HopLimit = int(int32(binary.NativeEndian.Uint32(m.Data[0:4])))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 20:
			info.Dst = netip.AddrFrom16([16]byte(m.Data[0:16]))
			info.Ifindex = int(binary.NativeEndian.Uint32(m.Data[16:20]))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			info.HopLimit = int(int32(binary.NativeEndian.Uint32(m.Data[0:4])))
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16:
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			if sec > 0 && nsec >= 0 && nsec < 1e9 {
				info.Stamp = time.Unix(sec, nsec)
			}
		}
	}
	return info, nil
}
