package vrrpnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ipv4Packet builds an IPv4 header (IHL words) followed by payload.
func ipv4Packet(ihlWords int, ttl uint8, src, dst string, payload []byte) []byte {
	b := make([]byte, ihlWords*4+len(payload))
	b[0] = 0x40 | byte(ihlWords)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[8] = ttl
	b[9] = Protocol
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	copy(b[ihlWords*4:], payload)
	return b
}

func TestParseIPv4(t *testing.T) {
	payload := []byte{0x21, 51, 100, 1, 0, 1, 0xaa, 0xbb}
	withOptions := ipv4Packet(6, 255, "192.0.2.1", "224.0.0.18", payload)
	padded := append(ipv4Packet(5, 255, "192.0.2.1", "224.0.0.18", payload), 0, 0, 0) // trailing bytes beyond total length
	tests := []struct {
		name    string
		in      []byte
		want    ipv4Header
		payload []byte
		err     error
	}{
		{"plain", ipv4Packet(5, 255, "192.0.2.1", "224.0.0.18", payload),
			ipv4Header{255, Protocol, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")}, payload, nil},
		{"options skipped", withOptions,
			ipv4Header{255, Protocol, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")}, payload, nil},
		{"ttl as received", ipv4Packet(5, 64, "198.51.100.1", "198.51.100.2", payload),
			ipv4Header{64, Protocol, netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}, payload, nil},
		{"bytes past total length dropped", padded,
			ipv4Header{255, Protocol, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")}, payload, nil},
		{"empty", nil, ipv4Header{}, nil, io.ErrUnexpectedEOF},
		{"short header", make([]byte, 19), ipv4Header{}, nil, io.ErrUnexpectedEOF},
		{"version 6", append([]byte{0x65}, make([]byte, 39)...), ipv4Header{}, nil, ErrBadIPv4Header},
		{"ihl 4", append([]byte{0x44}, make([]byte, 19)...), ipv4Header{}, nil, ErrBadIPv4Header},
		{"ihl past end", append([]byte{0x4f}, make([]byte, 30)...), ipv4Header{}, nil, io.ErrUnexpectedEOF},
		{"total length inside header", func() []byte {
			b := ipv4Packet(5, 255, "192.0.2.1", "224.0.0.18", payload)
			binary.BigEndian.PutUint16(b[2:4], 10)
			return b
		}(), ipv4Header{}, nil, ErrBadIPv4Header},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := parseIPv4(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !errors.Is(err, ErrBadIPv4Header) {
					t.Fatalf("err = %v, want %v (and ErrBadIPv4Header)", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.want || !bytes.Equal(p, tc.payload) {
				t.Errorf("got %+v %x, want %+v %x", h, p, tc.want, tc.payload)
			}
		})
	}
}

func FuzzParseIPv4(f *testing.F) {
	f.Add(ipv4Packet(5, 255, "192.0.2.1", "224.0.0.18", []byte{0x21, 1, 2, 3}))
	f.Add(ipv4Packet(15, 1, "192.0.2.1", "192.0.2.2", nil))
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := parseIPv4(b)
		if err != nil {
			if !errors.Is(err, ErrBadIPv4Header) {
				t.Fatalf("error %v does not wrap ErrBadIPv4Header", err)
			}
			return
		}
		ihl := int(b[0]&0x0f) * 4
		if len(p) > len(b)-ihl || !h.Src.Is4() || !h.Dst.Is4() {
			t.Fatalf("inconsistent result %+v payload %d bytes from %d", h, len(p), len(b))
		}
		// Re-encoding the header with the payload parses back to the same.
		again := append(append([]byte(nil), b[:ihl]...), p...)
		binary.BigEndian.PutUint16(again[2:4], uint16(len(again)))
		h2, p2, err := parseIPv4(again)
		if err != nil || h2 != h || !bytes.Equal(p2, p) {
			t.Fatalf("round trip: %+v %x %v, want %+v %x", h2, p2, err, h, p)
		}
	})
}

func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = int32(level)
	h.Type = int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestParseControl(t *testing.T) {
	pkt4 := make([]byte, 12)
	binary.NativeEndian.PutUint32(pkt4[0:4], 7)
	copy(pkt4[8:12], []byte{224, 0, 0, 18})
	pkt6 := make([]byte, 20)
	g := GroupV6.As16()
	copy(pkt6, g[:])
	binary.NativeEndian.PutUint32(pkt6[16:20], 9)
	hop := make([]byte, 4)
	binary.NativeEndian.PutUint32(hop, 255)
	ts := make([]byte, 16)
	binary.NativeEndian.PutUint64(ts[0:8], 1_780_000_000)
	binary.NativeEndian.PutUint64(ts[8:16], 123_456_789)
	badTS := make([]byte, 16)
	binary.NativeEndian.PutUint64(badTS[0:8], 1)
	binary.NativeEndian.PutUint64(badTS[8:16], 2e9)

	tests := []struct {
		name string
		oob  []byte
		want cmsgInfo
	}{
		{"none", nil, cmsgInfo{HopLimit: -1}},
		{"v4 pktinfo", cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pkt4), cmsgInfo{Ifindex: 7, Dst: GroupV4, HopLimit: -1}},
		{"v6 pktinfo + hoplimit", append(cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pkt6), cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hop)...),
			cmsgInfo{Ifindex: 9, Dst: GroupV6, HopLimit: 255}},
		{"short pktinfo ignored", cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pkt4[:8]), cmsgInfo{HopLimit: -1}},
		{"v4 pktinfo + timestamp", append(cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pkt4), cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts)...),
			cmsgInfo{Ifindex: 7, Dst: GroupV4, HopLimit: -1, Stamp: time.Unix(1_780_000_000, 123_456_789)}},
		{"bad timestamp ignored", cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, badTS), cmsgInfo{HopLimit: -1}},
		{"short timestamp ignored", cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts[:8]), cmsgInfo{HopLimit: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseControl(tc.oob)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := parseControl([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}); err == nil {
		t.Errorf("garbage control data: no error")
	}
}

func FuzzParseControl(f *testing.F) {
	pkt4 := make([]byte, 12)
	f.Add(cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pkt4))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseControl(b)
		if err == nil && info.Dst.IsValid() && !info.Dst.Is4() && !info.Dst.Is6() {
			t.Fatalf("bad destination %v", info.Dst)
		}
	})
}
