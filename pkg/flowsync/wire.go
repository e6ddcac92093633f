// Package flowsync exchanges established flows between load balancers
// behind ECMP (as Katran- and vc5-style designs do): every node tells its
// peers which real server each of its flows is pinned to, and pins the
// flows it hears about in its own flow table. When the router moves a flow
// to another node, that node keeps the flow's real server even if its
// Maglev table changed meanwhile (a real server added or removed).
package flowsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/xdpvip/xdpvip/pkg/dataplane"
)

// A datagram:
//
//	0      4        5      6
//	+------+--------+------+------------------------+
//	| XVFS | ver 1  | N    | N records              |
//	+------+--------+------+------------------------+
//
// A record (56 bytes; the three addresses are of one family, IPv4 in the
// first 4 bytes of 16):
//
//	0      1       2          18     20         36     38         54     56
//	+------+-------+----------+------+----------+------+----------+------+
//	|proto |family | client   | port | vip      | port | real     | port |
//	+------+-------+----------+------+----------+------+----------+------+
//
// Ports are big endian.
const (
	headerLen  = 6
	recordLen  = 56
	version    = 1
	MaxRecords = 24 // 6 + 24*56 = 1350 bytes: one Ethernet frame
)

var magic = [4]byte{'X', 'V', 'F', 'S'}

// Sentinel errors of Unmarshal.
var (
	ErrBadMagic   = errors.New("flowsync: not a flow-sync datagram")
	ErrBadVersion = errors.New("flowsync: unknown version")
	ErrBadRecord  = errors.New("flowsync: bad record")
)

// Marshal encodes at most MaxRecords flows into one datagram; flows whose
// addresses are not of one family are skipped. It returns the datagram
// and how many of flows it consumed.
func Marshal(flows []dataplane.Flow) ([]byte, int) {
	b := make([]byte, headerLen, headerLen+MaxRecords*recordLen)
	copy(b, magic[:])
	b[4] = version
	n, used := 0, 0
	for _, f := range flows {
		if n == MaxRecords {
			break
		}
		used++
		c, v, r := f.Client.Addr().Unmap(), f.VIP.Addr().Unmap(), f.Real.Addr().Unmap()
		if !c.IsValid() || c.Is4() != v.Is4() || v.Is4() != r.Is4() {
			continue
		}
		rec := make([]byte, recordLen)
		rec[0] = f.Proto
		rec[1] = 6
		if c.Is4() {
			rec[1] = 4
		}
		put := func(off int, a netip.Addr, port uint16) {
			if a.Is4() {
				a4 := a.As4()
				copy(rec[off:], a4[:])
			} else {
				a16 := a.As16()
				copy(rec[off:], a16[:])
			}
			binary.BigEndian.PutUint16(rec[off+16:], port)
		}
		put(2, c, f.Client.Port())
		put(20, v, f.VIP.Port())
		put(38, r, f.Real.Port())
		b = append(b, rec...)
		n++
	}
	b[5] = byte(n)
	return b, used
}

// Unmarshal decodes a datagram.
func Unmarshal(b []byte) ([]dataplane.Flow, error) {
	if len(b) < headerLen {
		return nil, io.ErrUnexpectedEOF
	}
	if [4]byte(b[:4]) != magic {
		return nil, ErrBadMagic
	}
	if b[4] != version {
		return nil, fmt.Errorf("%w %d", ErrBadVersion, b[4])
	}
	n := int(b[5])
	if n > MaxRecords {
		return nil, fmt.Errorf("%w: %d records, at most %d", ErrBadRecord, n, MaxRecords)
	}
	if len(b) < headerLen+n*recordLen {
		return nil, io.ErrUnexpectedEOF
	}
	if len(b) > headerLen+n*recordLen {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(b)-headerLen-n*recordLen)
	}
	out := make([]dataplane.Flow, 0, n)
	for i := range n {
		rec := b[headerLen+i*recordLen : headerLen+(i+1)*recordLen]
		fam := rec[1]
		if fam != 4 && fam != 6 {
			return nil, fmt.Errorf("%w %d: family %d", ErrBadRecord, i, fam)
		}
		get := func(off int) (netip.AddrPort, error) {
			var a netip.Addr
			if fam == 4 {
				for _, z := range rec[off+4 : off+16] {
					if z != 0 {
						return netip.AddrPort{}, fmt.Errorf("%w %d: IPv4 address with trailing bytes", ErrBadRecord, i)
					}
				}
				a = netip.AddrFrom4([4]byte(rec[off : off+4]))
			} else {
				a = netip.AddrFrom16([16]byte(rec[off : off+16]))
			}
			return netip.AddrPortFrom(a, binary.BigEndian.Uint16(rec[off+16:])), nil
		}
		var f dataplane.Flow
		var err error
		f.Proto = rec[0]
		if f.Client, err = get(2); err != nil {
			return nil, err
		}
		if f.VIP, err = get(20); err != nil {
			return nil, err
		}
		if f.Real, err = get(38); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}
