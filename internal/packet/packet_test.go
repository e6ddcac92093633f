package packet

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
)

func TestChecksumKnownVectors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want uint16
	}{
		// An IPv4 header with its checksum field zeroed; checksum 0xb861.
		{"ipv4 header", "450000730000400040110000c0a80001c0a800c7", 0xb861},
		// RFC 1071 §3 example words 0001 f203 f4f5 f6f7: sum ddf2, checksum 220d.
		{"rfc1071", "0001f203f4f5f6f7", 0x220d},
		{"odd length", "01", 0xfeff},
		{"empty", "", 0xffff},
	}
	for _, tt := range tests {
		b, err := hex.DecodeString(tt.hex)
		if err != nil {
			t.Fatal(err)
		}
		if got := Checksum(b, 0); got != tt.want {
			t.Errorf("%s: Checksum = %#04x, want %#04x", tt.name, got, tt.want)
		}
	}
}

// verifies reports whether data (with its checksum in place) sums to 0xffff.
func verifies(data []byte, initial uint32) bool { return Checksum(data, initial) == 0 }

func TestFrames(t *testing.T) {
	mac1, _ := net.ParseMAC("02:00:00:00:00:01")
	mac2, _ := net.ParseMAC("02:00:00:00:00:02")
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		udp      bool
		payload  []byte
	}{
		{"tcp4", netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("192.0.2.10:80"), false, []byte("GET / HTTP/1.0\r\n\r\n")},
		{"udp4 odd", netip.MustParseAddrPort("192.0.2.1:5353"), netip.MustParseAddrPort("192.0.2.10:53"), true, []byte{1, 2, 3}},
		{"tcp6", netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::10]:443"), false, nil},
		{"udp6", netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::10]:2"), true, []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f []byte
			proto := ProtoTCP
			if tt.udp {
				proto = ProtoUDP
				f = UDPFrame(mac2, mac1, tt.src, tt.dst, tt.payload)
			} else {
				f = TCPFrame(mac2, mac1, tt.src, tt.dst, SYN, tt.payload)
			}
			if string(f[0:6]) != string(mac2) || string(f[6:12]) != string(mac1) {
				t.Fatalf("MACs wrong: % x", f[:12])
			}
			var l4 []byte
			if tt.src.Addr().Is4() {
				if binary.BigEndian.Uint16(f[12:14]) != EtherTypeIPv4 {
					t.Fatal("ethertype")
				}
				ip := f[EthernetLen:]
				if !verifies(ip[:IPv4Len], 0) {
					t.Error("IPv4 header checksum does not verify")
				}
				if int(binary.BigEndian.Uint16(ip[2:4])) != len(ip) || ip[9] != proto {
					t.Errorf("IPv4 length %d (frame %d) proto %d", binary.BigEndian.Uint16(ip[2:4]), len(ip), ip[9])
				}
				l4 = ip[IPv4Len:]
			} else {
				ip := f[EthernetLen:]
				if int(binary.BigEndian.Uint16(ip[4:6])) != len(ip)-IPv6Len || ip[6] != proto {
					t.Errorf("IPv6 payload length / next header wrong")
				}
				l4 = ip[IPv6Len:]
			}
			if !verifies(l4, PseudoHeaderSum(tt.src.Addr(), tt.dst.Addr(), proto, len(l4))) {
				t.Error("L4 checksum does not verify")
			}
			if binary.BigEndian.Uint16(l4[0:2]) != tt.src.Port() || binary.BigEndian.Uint16(l4[2:4]) != tt.dst.Port() {
				t.Error("ports wrong")
			}
		})
	}
}
