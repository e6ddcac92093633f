package tests

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// badAdvert is one kind of malformed or unauthenticated advert and the
// drop reason xdpvip must count it under.
type badAdvert struct {
	name   string
	reason string
	// build returns the VRRP payload for an advert from src to dst and
	// the IP TTL to send it with.
	build func(t *testing.T, src, dst netip.Addr) ([]byte, uint8)
}

// evilAdvert is a well-formed advert for the shared instance with
// priority 0 ("the MASTER is leaving"): if any bad variant built from it
// were accepted, the BACKUP would take over Skew_Time later, a transition
// that stays counted even after the real MASTER wins it back.
func evilAdvert() vrrp.Advert {
	return vrrp.Advert{
		Version: vrrp.Version2, Type: vrrp.TypeAdvertisement, VRID: vrrpVRID, Priority: vrrp.PriorityStop,
		AuthType: vrrp.AuthPass, AuthData: vrrp.PasswordBytes(vrrpPass),
		Interval: advertInt, Addrs: []netip.Addr{vipAddr},
	}
}

func marshalAdvert(t *testing.T, a vrrp.Advert, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := a.Marshal(src, dst)
	if err != nil {
		t.Fatalf("marshal %+v: %v", a, err)
	}
	return b
}

// fixV2Checksum recomputes a VRRPv2 checksum (over the message only, RFC
// 3768 §5.3.8) after the test edited the message. Bytes 6-7 hold it.
func fixV2Checksum(b []byte) {
	binary.BigEndian.PutUint16(b[6:8], 0)
	binary.BigEndian.PutUint16(b[6:8], packet.Checksum(b, 0))
}

var badAdverts = []badAdvert{
	{"truncated header", "truncated", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		return marshalAdvert(t, evilAdvert(), src, dst)[:vrrp.HeaderLen-2], vrrp.TTL
	}},
	{"truncated addresses", "truncated", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		// The header says one address; the message ends in its middle.
		return marshalAdvert(t, evilAdvert(), src, dst)[:vrrp.HeaderLen+2], vrrp.TTL
	}},
	{"trailing bytes", "length", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		// Four bytes more than one address and the password need.
		b := append(marshalAdvert(t, evilAdvert(), src, dst), 0, 0, 0, 0)
		fixV2Checksum(b)
		return b, vrrp.TTL
	}},
	{"ttl 64", "ttl", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		return marshalAdvert(t, evilAdvert(), src, dst), 64
	}},
	{"bad checksum", "checksum", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		b := marshalAdvert(t, evilAdvert(), src, dst)
		b[7] ^= 0x5a
		return b, vrrp.TTL
	}},
	{"version 3 to a v2 instance", "version", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		a := evilAdvert()
		a.Version, a.AuthType, a.AuthData = vrrp.Version3, 0, [8]byte{}
		return marshalAdvert(t, a, src, dst), vrrp.TTL
	}},
	{"version 1", "version", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		b := marshalAdvert(t, evilAdvert(), src, dst)
		b[0] = 1<<4 | vrrp.TypeAdvertisement
		fixV2Checksum(b)
		return b, vrrp.TTL
	}},
	{"wrong password", "auth", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		a := evilAdvert()
		a.AuthData = vrrp.PasswordBytes("654321")
		return marshalAdvert(t, a, src, dst), vrrp.TTL
	}},
	{"wrong password, priority 255", "auth", func(t *testing.T, src, dst netip.Addr) ([]byte, uint8) {
		a := evilAdvert()
		a.Priority = vrrp.PriorityOwner
		a.AuthData = vrrp.PasswordBytes("letmein")
		return marshalAdvert(t, a, src, dst), vrrp.TTL
	}},
}

// vrrpMulticastMAC is 224.0.0.18's Ethernet address.
var vrrpMulticastMAC = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}

// TestVRRPBadInput sends crafted adverts from a third host at the BACKUP,
// to the VRRP group and to its own address. Each is dropped, counted under
// its reason in `xdpvip status --json` (in the instance's drops when
// adverts come from the raw socket, in xdp_drops[eth0] when the XDP
// program drops them first), and changes neither the BACKUP's state nor
// the master it follows. A valid advert sent the same way at the end is
// accepted, so the drops are the daemon's doing, not the path's.
func TestVRRPBadInput(t *testing.T) {
	cases := []struct {
		name  string
		flags []string
		xdp   bool
	}{
		{name: "socket", flags: []string{"--dataplane", "none"}},
		{name: "xdp", xdp: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln := newLBNet(t)
			evil := ln.net.AddHost("evil", "192.0.2.66/24")
			evilAddr := evil.Addr(4)
			n1 := StartXdpvip(t, ln.lvs1, instConf{routerID: "lvs1", priority: 100}.String(), tc.flags...)
			n2 := StartXdpvip(t, ln.lvs2, instConf{routerID: "lvs2", priority: 90}.String(), tc.flags...)
			n1.WaitState(vrrpInstance, "MASTER", masterDownInterval(100)+5*time.Second)
			n2.WaitState(vrrpInstance, "BACKUP", 3*advertInt)

			// counts reads the drop counters where this dataplane keeps them,
			// and the instance's own (which XDP must leave alone).
			counts := func(st daemon.Status) (drops, instDrops map[string]uint64) {
				in := st.Instances[0]
				if !tc.xdp {
					return in.Drops, in.Drops
				}
				return st.XDPDrops["eth0"], in.Drops
			}
			checkBackup := func(ctx string, st daemon.Status) {
				t.Helper()
				in := st.Instances[0]
				if in.State != "BACKUP" || in.Master != lvs1Addr.String() || in.MasterPriority != 100 {
					t.Fatalf("after %s: lvs2 is %s following %s (priority %d), want BACKUP following %s (priority 100)",
						ctx, in.State, in.Master, in.MasterPriority, lvs1Addr)
				}
			}
			st := statusJSON(t, n2)
			if tc.xdp && st.XDPDrops["eth0"] == nil {
				t.Fatalf("status has no xdp_drops for eth0: %+v", st.XDPDrops)
			}
			checkBackup("start", st)
			transitions := st.Instances[0].Transitions

			const copies = 3
			dsts := []struct {
				ip  netip.Addr
				mac net.HardwareAddr
			}{{vrrp.Group4, vrrpMulticastMAC}, {lvs2Addr, ln.lvs2.MAC()}}
			for _, ba := range badAdverts {
				before, instBefore := counts(st)
				for _, d := range dsts {
					payload, ttl := ba.build(t, evilAddr, d.ip)
					f := packet.IPFrame(d.mac, evil.MAC(), evilAddr, d.ip, packet.ProtoVRRP, ttl, payload)
					for range copies {
						sendFrames(t, evil, d.mac, f)
					}
				}
				want := uint64(copies * len(dsts))
				// Every case is checked, so one failure shows all of them.
				if err := testnet.Poll(5*time.Second, func() error {
					st = statusJSON(t, n2)
					drops, _ := counts(st)
					if got := drops[ba.reason] - before[ba.reason]; got != want {
						return fmt.Errorf("%s: %d more drops counted as %q, want %d (counters %v)", ba.name, got, ba.reason, want, drops)
					}
					return nil
				}); err != nil {
					t.Error(err)
				}
				drops, instDrops := counts(st)
				for reason, n := range drops {
					if reason != ba.reason && n != before[reason] {
						t.Errorf("%s: also counted as %q (%d -> %d)", ba.name, reason, before[reason], n)
					}
				}
				if tc.xdp {
					for reason, n := range instDrops {
						if n != instBefore[reason] {
							t.Errorf("%s: reached the daemon through XDP: instance drops %q %d -> %d", ba.name, reason, instBefore[reason], n)
						}
					}
				}
				checkBackup(ba.name, st)
				if n := st.Instances[0].Transitions; n != transitions {
					t.Fatalf("%s: lvs2 made %d transitions", ba.name, n-transitions)
				}
			}
			// An accepted priority-0 advert makes a takeover Skew_Time later.
			holdState(t, n2, "BACKUP", skewTime(90)+specMargin)
			st = statusJSON(t, n2)
			if in := st.Instances[0]; in.Transitions != transitions {
				t.Errorf("lvs2 made %d transitions during the bad input", in.Transitions-transitions)
			}
			if !HasAddr(t, ln.lvs1, vipAddr.String()) || HasAddr(t, ln.lvs2, vipAddr.String()) {
				t.Error("VIP not on lvs1 only after the bad input")
			}
			if st := instanceOf(t, n1); st.State != "MASTER" {
				t.Errorf("lvs1 is %s after the bad input, want MASTER", st.State)
			}
			t.Logf("drop counters: %v", func() map[string]uint64 { d, _ := counts(st); return d }())

			// Control: the same path with a valid advert is heard. lvs1's
			// next advert wins lvs2 back, so send one before each look.
			ok := evilAdvert()
			ok.Priority = 254
			f := packet.IPFrame(ln.lvs2.MAC(), evil.MAC(), evilAddr, lvs2Addr, packet.ProtoVRRP, vrrp.TTL, marshalAdvert(t, ok, evilAddr, lvs2Addr))
			testnet.Eventually(t, 5*time.Second, func() error {
				sendFrames(t, evil, ln.lvs2.MAC(), f)
				in := instanceOf(t, n2)
				if in.Master != evilAddr.String() || in.MasterPriority != 254 {
					return fmt.Errorf("lvs2 follows %s (priority %d) after a valid advert from %s, want it (254)", in.Master, in.MasterPriority, evilAddr)
				}
				return nil
			})
		})
	}
}
