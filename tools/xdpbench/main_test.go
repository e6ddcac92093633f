package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

const snmpSample = `Ip: Forwarding DefaultTTL InReceives InHdrErrors
Ip: 2 64 4678144 0
Icmp: InMsgs InErrors
Icmp: 0 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 12 3456789 0 12 0 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 7 0 0 0 0 0 0 0
`

func TestParseSNMP(t *testing.T) {
	for _, tc := range []struct {
		text, proto, field string
		want               uint64
		wantErr            bool
	}{
		{snmpSample, "Udp", "NoPorts", 3456789, false},
		{snmpSample, "Udp", "InDatagrams", 12, false},
		{snmpSample, "UdpLite", "NoPorts", 7, false}, // not confused with Udp
		{snmpSample, "Ip", "InReceives", 4678144, false},
		{snmpSample, "Udp", "NoSuchField", 0, true},
		{snmpSample, "Tcp", "InSegs", 0, true},
		{"Udp: InDatagrams NoPorts\nUdp: 1\n", "Udp", "NoPorts", 0, true},   // short values line
		{"Udp: InDatagrams NoPorts\nUdp: 1 x\n", "Udp", "NoPorts", 0, true}, // not a number
		{"", "Udp", "NoPorts", 0, true},
	} {
		got, err := parseSNMP(tc.text, tc.proto, tc.field)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseSNMP(%s %s) = %d, %v; want %d, error %v", tc.proto, tc.field, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := parseSNMP(snmpSample, "Udp", "Nope"); !errors.Is(err, ErrNoSNMPField) {
		t.Errorf("missing field: %v, want ErrNoSNMPField", err)
	}
}

func FuzzParseSNMP(f *testing.F) {
	f.Add(snmpSample, "Udp", "NoPorts")
	f.Add("Udp: a\nUdp: 1\n", "Udp", "a")
	f.Fuzz(func(t *testing.T, text, proto, field string) {
		_, _ = parseSNMP(text, proto, field)
	})
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr bool
	}{
		{nil, false},
		{[]string{"--duration", "2s", "--flows", "8", "--generator", "trafgen", "--cpus", "2"}, false},
		{[]string{"--mode", "generic"}, false},
		{[]string{"--duration", "1ms"}, true},
		{[]string{"--flows", "0"}, true},
		{[]string{"--flows", "5000"}, true},
		{[]string{"--cpus", "0"}, true},
		{[]string{"--mode", "offload"}, true},
		{[]string{"--generator", "pktgen"}, true},
		{[]string{"--warmup", "-1s"}, true},
		{[]string{"--no-such-flag"}, true},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseFlags(%q) = %+v, %v; want error %v", tc.args, o, err, tc.wantErr)
		}
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.generator != "live" || o.cpus != 1 || o.flows != 64 || o.mode != "native" {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

var (
	lbMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	genMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
)

func TestUDPFrames(t *testing.T) {
	dst := netip.AddrPortFrom(vipAddr, vipPort)
	frames := udpFrames(4, lbMAC, genMAC, genAddr.Addr(), firstSrcPort, dst)
	if len(frames) != 4 {
		t.Fatalf("%d frames, want 4", len(frames))
	}
	const ip, udp = packet.EthernetLen, packet.EthernetLen + 20
	for i, f := range frames {
		if len(f) != 60 {
			t.Errorf("frame %d: %d bytes, want 60", i, len(f))
			continue
		}
		if !bytes.Equal(f[0:6], lbMAC) || !bytes.Equal(f[6:12], genMAC) {
			t.Errorf("frame %d: MACs % x -> % x", i, f[6:12], f[0:6])
		}
		if f[ip+9] != 17 || !bytes.Equal(f[ip+16:ip+20], vipAddr.AsSlice()) {
			t.Errorf("frame %d: protocol %d to %v", i, f[ip+9], f[ip+16:ip+20])
		}
		sport := uint16(f[udp])<<8 | uint16(f[udp+1])
		dport := uint16(f[udp+2])<<8 | uint16(f[udp+3])
		if sport != firstSrcPort+uint16(i) || dport != vipPort {
			t.Errorf("frame %d: ports %d -> %d, want %d -> %d", i, sport, dport, firstSrcPort+i, vipPort)
		}
	}
}

func TestForeignAdvertFrame(t *testing.T) {
	f, err := foreignAdvertFrame(foreignVRID, genMAC, genAddr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	const ip = packet.EthernetLen
	ihl := int(f[ip]&0x0f) * 4
	if f[ip+8] != vrrp.TTL || f[ip+9] != vrrp.Protocol {
		t.Fatalf("TTL %d, protocol %d", f[ip+8], f[ip+9])
	}
	a, err := vrrp.Decode(f[ip+ihl:], genAddr.Addr(), vrrp.Group4)
	if err != nil {
		t.Fatalf("the advert does not decode: %v", err)
	}
	if a.VRID != foreignVRID || a.Version != vrrp.Version3 {
		t.Errorf("decoded %+v, want VRRPv3 VRID %d", a, foreignVRID)
	}
}

// TestLiveProgram runs the generator's program with prog.Run (not in live
// mode): it must overwrite the frame's MACs with the template's and ask
// for a redirect.
func TestLiveProgram(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading a BPF program needs root")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	tmpl := udpFrames(1, lbMAC, genMAC, genAddr.Addr(), firstSrcPort, netip.AddrPortFrom(vipAddr, vipPort))[0]
	prog, err := liveProgram(7, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	const xdpRedirect = 4
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"rewritten by XDP_TX", append(append(append([]byte(nil), genMAC...), lbMAC...), tmpl[12:]...)},
		{"unchanged", append([]byte(nil), tmpl...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]byte, len(tc.in))
			ret, err := prog.Run(&ebpf.RunOptions{Data: tc.in, DataOut: out})
			if err != nil {
				t.Fatal(err)
			}
			if ret != xdpRedirect {
				t.Errorf("verdict %d, want XDP_REDIRECT", ret)
			}
			if !bytes.Equal(out, tmpl) {
				t.Errorf("frame after the program:\n% x\nwant\n% x", out, tmpl)
			}
		})
	}
	if _, err := liveProgram(7, []byte{1, 2, 3}); err == nil {
		t.Error("a template without Ethernet addresses was accepted")
	}
}
