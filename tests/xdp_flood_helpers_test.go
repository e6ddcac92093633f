package tests

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/netlab"
	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// Helpers of the VRRP flood test (xdp_flood_test.go): the flood's frames,
// trafgen as the generator, and keepalived's own counters (its stats dump
// and its raw socket's drop counter) for the baseline.

// floodKind is one kind of frame in the flood and the XDP drop reason it
// must be counted under.
type floodKind struct {
	reason string
	frame  []byte
}

// floodFrames are the flood's frames from src (srcMAC) to the VRRP group,
// one per kind, built with the project's encoders:
//   - a well-formed VRRPv3 advert for a VRID nobody here serves (the
//     issue's "foreign VRID", what a busy shared segment carries);
//   - an advert for the served VRID with priority 254 and a wrong
//     checksum: accepted, it would make both nodes see a better MASTER;
//   - an advert for the served VRID cut inside its header.
func floodFrames(vrid uint8, src netip.Addr, srcMAC net.HardwareAddr, vip netip.Addr) ([]floodKind, error) {
	foreign := vrrp.Advert{Version: vrrp.Version3, Type: vrrp.TypeAdvertisement, VRID: vrid + 100, Priority: 200,
		Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}}
	own := foreign
	own.VRID, own.Priority = vrid, 254
	fb, err := foreign.Marshal(src, vrrp.Group4)
	if err != nil {
		return nil, fmt.Errorf("foreign advert: %w", err)
	}
	ob, err := own.Marshal(src, vrrp.Group4)
	if err != nil {
		return nil, fmt.Errorf("own advert: %w", err)
	}
	bad := append([]byte(nil), ob...)
	bad[7] ^= 0x5a // bytes 6-7: checksum
	short := ob[:vrrp.HeaderLen-2]
	frame := func(b []byte) []byte {
		return packet.IPFrame(vrrpMulticastMAC, srcMAC, src, vrrp.Group4, packet.ProtoVRRP, vrrp.TTL, b)
	}
	return []floodKind{
		{reason: "vrid", frame: frame(fb)},
		{reason: "checksum", frame: frame(bad)},
		{reason: "truncated", frame: frame(short)},
	}, nil
}

// flood is trafgen sending frames out of one host's interface.
type flood struct {
	proc  *testnet.Process
	start time.Time
}

// startFlood runs trafgen in h's namespace on cpus CPUs (one forked sender
// each), at the highest rate it can, sending frames round robin. It must
// be called on the lab starter's thread (see labStarter).
func startFlood(t testing.TB, h *testnet.Host, cpus int, frames [][]byte) *flood {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "flood.trafgen")
	if err := os.WriteFile(cfg, []byte(netlab.TrafgenConfig(frames)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := h.Start("trafgen", netlab.TrafgenArgs(h.Iface(), cfg, cpus)...)
	return &flood{proc: p, start: time.Now()}
}

// Stop interrupts trafgen, waits for it and returns the frames it sent.
func (f *flood) Stop(t testing.TB) uint64 {
	t.Helper()
	if f.proc.Exited() {
		t.Fatalf("trafgen exited early:\n%s", f.proc.Log())
	}
	n, err := netlab.StopTrafgen(f.proc, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startKeepalivedTmp is StartKeepalived with TMPDIR set to the instance's
// own directory, where keepalived writes its stats dump (keepalived.stats),
// so several keepalived on one machine do not share /tmp's. Call it on
// the lab starter's thread.
func startKeepalivedTmp(t testing.TB, host *testnet.Host, conf string) *KA {
	t.Helper()
	return startKA(t, host, conf, true)
}

// kaStats are the counters of keepalived's stats dump for one instance.
type kaStats struct {
	AdvertsIn, AdvertsOut uint64 // "Advertisements: Received / Sent"
	BecameMaster          uint64 // "Became master"
}

// errNoKAInstance is returned when the stats dump does not list the instance.
var errNoKAInstance = errors.New("instance not in keepalived's stats dump")

// parseKAStats reads one instance's counters from keepalived.stats:
//
//	VRRP Instance: VI_1
//	  Advertisements:
//	    Received: 41
//	    Sent: 0
//	  Became master: 0
//	  ...
func parseKAStats(dump, instance string) (kaStats, error) {
	var st kaStats
	found, section := false, ""
	sc := bufio.NewScanner(strings.NewReader(dump))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "VRRP Instance:"); ok {
			if found {
				break // the next instance
			}
			found = strings.TrimSpace(name) == instance
			continue
		}
		if !found {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		if val == "" {
			section = key
			continue
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			continue
		}
		switch {
		case section == "Advertisements" && key == "Received":
			st.AdvertsIn = n
		case section == "Advertisements" && key == "Sent":
			st.AdvertsOut = n
		case key == "Became master":
			st.BecameMaster = n
		}
	}
	if !found {
		return st, fmt.Errorf("%q: %w", instance, errNoKAInstance)
	}
	return st, nil
}

// Stats asks keepalived for its stats dump (SIGUSR2, `keepalived
// --signum=STATS`) and reads instance's counters from it.
func (k *KA) Stats(instance string) (kaStats, error) {
	path := filepath.Join(k.Dir, "keepalived.stats")
	_ = os.Remove(path)
	if err := k.Proc.Signal(syscall.SIGUSR2); err != nil {
		return kaStats{}, err
	}
	var st kaStats
	err := testnet.Poll(5*time.Second, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		st, err = parseKAStats(string(b), instance)
		return err
	})
	return st, err
}

// rawDrops sums the drop counters of the raw sockets for IP protocol proto
// in h's namespace (/proc/net/raw: the local port column is the protocol,
// the last column the drops): the frames the kernel had for the socket
// but threw away because its receive queue was full.
func rawDrops(t testing.TB, h *testnet.Host, proto int) uint64 {
	t.Helper()
	out := h.MustExec("cat", "/proc/net/raw")
	n, err := parseRawDrops(string(out), proto)
	if err != nil {
		t.Fatalf("%s: /proc/net/raw: %v\n%s", h.Name(), err, out)
	}
	return n
}

// errNoRawSocket is returned when no raw socket for the protocol exists.
var errNoRawSocket = errors.New("no raw socket for the protocol")

// parseRawDrops parses /proc/net/raw:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
//	112: 00000000:0070 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123 2 0000000000000000 0
func parseRawDrops(text string, proto int) (uint64, error) {
	var sum uint64
	found := false
	for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 13 {
			continue
		}
		_, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil || int(p) != proto {
			continue
		}
		d, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("drops column %q: %w", f[len(f)-1], err)
		}
		sum += d
		found = true
	}
	if !found {
		return 0, fmt.Errorf("protocol %d: %w", proto, errNoRawSocket)
	}
	return sum, nil
}

// TestFloodParsers checks the parsers of trafgen's summary, keepalived's
// stats dump and /proc/net/raw on samples of their real output.
func TestFloodParsers(t *testing.T) {
	t.Parallel()
	trafgen := []struct {
		out  string
		want uint64
		err  bool
	}{
		{"Running! Hang up with ^C!\n\n     2227968 packets outgoing\n   102486528 bytes outgoing\n", 2227968, false},
		{"     0 packets outgoing\n", 0, false},
		{"Running! Hang up with ^C!\n", 0, true},
		{"12 bytes outgoing\n", 0, true},
	}
	for _, tc := range trafgen {
		got, err := netlab.ParseTrafgenSent(tc.out)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseTrafgenSent(%q) = %d, %v; want %d, error %v", tc.out, got, err, tc.want, tc.err)
		}
	}

	dump := `VRRP Instance: VI_0
  Advertisements:
    Received: 7
    Sent: 9
  Became master: 5
VRRP Instance: VI_1
  Advertisements:
    Received: 41
    Sent: 3
  Became master: 2
  Released master: 1
  Packet Errors:
    Length: 0
    TTL: 0
`
	for _, tc := range []struct {
		inst string
		want kaStats
		err  bool
	}{
		{"VI_1", kaStats{AdvertsIn: 41, AdvertsOut: 3, BecameMaster: 2}, false},
		{"VI_0", kaStats{AdvertsIn: 7, AdvertsOut: 9, BecameMaster: 5}, false},
		{"VI_2", kaStats{}, true},
	} {
		got, err := parseKAStats(dump, tc.inst)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseKAStats(%s) = %+v, %v; want %+v, error %v", tc.inst, got, err, tc.want, tc.err)
		}
	}

	raw := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		"112: 00000000:0070 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 31337\n" +
		"112: 00000000:0070 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 5\n" +
		"255: 00000000:00FF 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4244 2 0000000000000000 99\n"
	for _, tc := range []struct {
		proto int
		want  uint64
		err   bool
	}{{112, 31342, false}, {255, 99, false}, {1, 0, true}} {
		got, err := parseRawDrops(raw, tc.proto)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseRawDrops(%d) = %d, %v; want %d, error %v", tc.proto, got, err, tc.want, tc.err)
		}
	}
}

// FuzzFloodParsers: the parsers never panic on arbitrary text.
func FuzzFloodParsers(f *testing.F) {
	f.Add("     2227968 packets outgoing\n")
	f.Add("VRRP Instance: VI_1\n  Advertisements:\n    Received: 41\n")
	f.Add("sl\n112: 00000000:0070 00000000:0000 07 0:0 0:0 0 0 0 1 2 0 5\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = netlab.ParseTrafgenSent(s)
		_, _ = parseKAStats(s, "VI_1")
		_, _ = parseRawDrops(s, 112)
	})
}
