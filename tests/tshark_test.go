package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// tshark checks xdpvip's adverts on the wire (issue 3, "Must show" item 4):
// a peer that runs no XDP captures them and Wireshark's VRRP dissector
// decodes them: VRRPv2 and v3, IPv4 and IPv6, each with a good checksum
// (v3's over the IPv4/IPv6 pseudo-header), the configured VRID, priority,
// interval and address list.

type tsharkCase struct {
	name      string
	version   int
	ipv6      bool
	vrid      int
	prio      int
	advertInt string   // as written in the config
	pass      string   // v2 PASS password
	vips      []string // virtual_ipaddress lines
	// wantInt is the interval field as tshark shows it: seconds in
	// vrrp.adver_int (v2), centiseconds in vrrp.short_adver_int (v3).
	wantInt string
}

// tsharkFields are the fields the test reads from each captured frame.
var tsharkFields = []string{
	"eth.src", "ip.src", "ip.dst", "ip.ttl", "ipv6.src", "ipv6.dst", "ipv6.hlim",
	"vrrp.version", "vrrp.type", "vrrp.virt_rtr_id", "vrrp.prio", "vrrp.addr_count",
	"vrrp.adver_int", "vrrp.short_adver_int", "vrrp.checksum", "vrrp.checksum.status",
	"vrrp.auth_type", "vrrp.auth_string", "vrrp.ip_addr", "vrrp.ipv6_addr",
}

func TestTsharkDecodesAdverts(t *testing.T) {
	testnet.Require(t)
	requireCommand(t, "tshark", "tshark")
	cases := []tsharkCase{
		{name: "v2-ipv4-pass", version: 2, vrid: 51, prio: 100, advertInt: "1", pass: "secret12",
			vips: []string{"192.0.2.100/24", "192.0.2.101/24"}, wantInt: "1"},
		{name: "v3-ipv4", version: 3, vrid: 52, prio: 150, advertInt: "0.1",
			vips: []string{"192.0.2.100/24"}, wantInt: "10"},
		{name: "v3-ipv6", version: 3, ipv6: true, vrid: 53, prio: 200, advertInt: "0.5",
			vips: []string{"2001:db8::100/64", "2001:db8::101/64"}, wantInt: "50"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runTshark(t, tc)
		})
	}
}

func runTshark(t *testing.T, tc tsharkCase) {
	n := testnet.New(t)
	sender := n.AddHost("lvs1", "192.0.2.11/24", testnet.WithAddr("2001:db8::11/64"))
	sniffer := n.AddHost("sniff", "192.0.2.50/24", testnet.WithAddr("2001:db8::50/64"))

	conf := KAConf("lvs1", tc.version, tc.vrid, tc.prio, tc.advertInt, tc.pass, strings.Join(tc.vips, "\n        "))
	x := StartXdpvip(t, sender, conf)
	x.WaitState("VI_1", "MASTER", 10*time.Second)

	const frames = 3
	pcap := filepath.Join(t.TempDir(), "vrrp.pcap")
	// -a duration bounds the capture if adverts stop; -c ends it normally.
	cap := sniffer.Start("tshark", "-q", "-i", sniffer.Iface(), "-c", fmt.Sprint(frames), "-a", "duration:30",
		"-f", "ip proto 112 or ip6 proto 112", "-F", "pcap", "-w", pcap)
	done := make(chan error, 1)
	go func() { done <- cap.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tshark capture: %v\n%s", err, cap.Log())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("tshark captured fewer than %d frames:\n%s", frames, cap.Log())
	}

	rows := decodeVRRP(t, sniffer, pcap)
	if len(rows) != frames {
		t.Fatalf("decoded %d frames, want %d", len(rows), frames)
	}
	var wantAddrs []string
	for _, v := range tc.vips {
		wantAddrs = append(wantAddrs, strings.SplitN(v, "/", 2)[0])
	}
	for i, r := range rows {
		check := func(field, want string) {
			t.Helper()
			if got := r[field]; got != want {
				t.Errorf("frame %d: %s = %q, want %q", i, field, got, want)
			}
		}
		check("eth.src", sender.MAC().String())
		if tc.ipv6 {
			// The source is the sender's link-local address (RFC 5798 §5.1.2.1).
			check("ipv6.src", linkLocal(t, sender))
			check("ipv6.dst", "ff02::12")
			check("ipv6.hlim", "255")
			check("vrrp.ipv6_addr", strings.Join(wantAddrs, ","))
			check("vrrp.ip_addr", "")
		} else {
			check("ip.src", sender.Addr(4).String())
			check("ip.dst", "224.0.0.18")
			check("ip.ttl", "255")
			check("vrrp.ip_addr", strings.Join(wantAddrs, ","))
			check("vrrp.ipv6_addr", "")
		}
		check("vrrp.version", fmt.Sprint(tc.version))
		check("vrrp.type", "1") // ADVERTISEMENT
		check("vrrp.virt_rtr_id", fmt.Sprint(tc.vrid))
		check("vrrp.prio", fmt.Sprint(tc.prio))
		check("vrrp.addr_count", fmt.Sprint(len(tc.vips)))
		// Wireshark's proto_checksum_status: 1 is "Good" (0 bad, 2 unverified).
		check("vrrp.checksum.status", "1")
		if tc.version == 2 {
			check("vrrp.adver_int", tc.wantInt)
			check("vrrp.auth_type", "1") // simple text password
			check("vrrp.auth_string", tc.pass)
		} else {
			check("vrrp.short_adver_int", tc.wantInt)
			check("vrrp.auth_type", "")
		}
	}
	t.Logf("tshark decoded %d VRRPv%d adverts from %s, checksum %s good: %v", len(rows), tc.version, sender.Name(), rows[0]["vrrp.checksum"], rows[0])

	// Control: the same capture with one priority byte changed must decode
	// with a bad checksum, so the check above can fail.
	bad := corruptFirstPriority(t, pcap, tc.ipv6)
	badRows := decodeVRRP(t, sniffer, bad)
	if len(badRows) != frames || badRows[0]["vrrp.checksum.status"] != "0" || badRows[1]["vrrp.checksum.status"] != "1" {
		t.Errorf("corrupted capture: checksum status %q then %q, want 0 (bad) then 1 (good)",
			badRows[0]["vrrp.checksum.status"], badRows[1]["vrrp.checksum.status"])
	}

	// The verbose decode says the same in words, and flags nothing.
	verbose, err := sniffer.Exec(context.Background(), "tshark", "-r", pcap, "-V", "-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-Y", "vrrp")
	if err != nil {
		t.Fatalf("tshark -V: %v\n%s", err, verbose)
	}
	text := string(verbose)
	for _, want := range []string{"Virtual Router Redundancy Protocol", "[Checksum Status: Good]", fmt.Sprintf("Version %d", tc.version)} {
		if c := strings.Count(text, want); c != frames {
			t.Errorf("tshark -V shows %q %d times, want %d:\n%s", want, c, frames, text)
		}
	}
	for _, bad := range []string{"Malformed", "Bad checksum", "[Checksum Status: Bad]", "Expert Info"} {
		if strings.Contains(text, bad) {
			t.Errorf("tshark -V reports %q:\n%s", bad, text)
		}
	}
}

// linkLocal is the link-local address of the host's interface.
func linkLocal(t *testing.T, h *testnet.Host) string {
	t.Helper()
	out := h.MustExec("ip", "-6", "-o", "addr", "show", "dev", h.Iface(), "scope", "link")
	// "2: eth0    inet6 fe80::1/64 scope link ..."
	f := strings.Fields(string(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "inet6" {
			return strings.SplitN(f[i+1], "/", 2)[0]
		}
	}
	t.Fatalf("%s has no link-local address: %q", h.Name(), out)
	return ""
}

// decodeVRRP reads a capture with tshark and returns each VRRP frame's
// tsharkFields by name. The v3 checksum covers the pseudo-header, as RFC
// 5798 says (Wireshark's default; the option is set to say so).
func decodeVRRP(t *testing.T, h *testnet.Host, pcap string) []map[string]string {
	t.Helper()
	if _, err := os.Stat(pcap); err != nil {
		t.Fatalf("no capture file: %v", err)
	}
	args := []string{"-r", pcap, "-Y", "vrrp", "-o", "vrrp.v3_checksum_as_in_v2:FALSE",
		"-T", "fields", "-E", "separator=|", "-E", "aggregator=,", "-E", "occurrence=a"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	out, err := h.Exec(context.Background(), "tshark", args...)
	if err != nil {
		t.Fatalf("tshark decode: %v\n%s", err, out)
	}
	var rows []map[string]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" || strings.HasPrefix(line, "Running as user") {
			continue
		}
		vals := strings.Split(line, "|")
		if len(vals) != len(tsharkFields) {
			t.Fatalf("tshark line has %d fields, want %d: %q", len(vals), len(tsharkFields), line)
		}
		r := map[string]string{}
		for i, f := range tsharkFields {
			r[f] = vals[i]
		}
		rows = append(rows, r)
	}
	return rows
}

// corruptFirstPriority writes a copy of a libpcap capture whose first
// frame has its VRRP priority byte inverted, and returns its path.
func corruptFirstPriority(t *testing.T, pcap string, ipv6 bool) string {
	t.Helper()
	b, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	// libpcap file: 24-byte file header, then per frame a 16-byte record
	// header and the frame: Ethernet (14), IPv4 (IHL*4) or IPv6 (40), VRRP
	// (0: version/type, 1: VRID, 2: priority).
	const frame = 24 + 16
	if len(b) < frame+14+40+3 {
		t.Fatalf("capture too short: %d bytes", len(b))
	}
	ipLen := 40
	if !ipv6 {
		ipLen = int(b[frame+14]&0x0f) * 4
	}
	b[frame+14+ipLen+2] ^= 0xff
	out := filepath.Join(t.TempDir(), "corrupt.pcap")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
