package tests

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// TestVRRPUnicast: with unicast_src_ip and unicast_peer the nodes elect
// and fail over by unicast adverts, and an otherwise valid advert from an
// address that is not a listed peer is dropped and counted as
// unicast_peer (by the daemon on the raw socket, by XDP otherwise),
// changing nothing.
func TestVRRPUnicast(t *testing.T) {
	for _, plane := range []string{"none", "xdp"} {
		t.Run(plane, func(t *testing.T) {
			n := newLBNet(t)
			evil := n.net.AddHost("evil", "192.0.2.66/24")
			evilAddr := netip.MustParseAddr("192.0.2.66")
			conf := func(id string, prio int, src, peer netip.Addr) string {
				return VRRPConf(id, 51, prio, "1", "192.0.2.100/24", fmt.Sprintf(
					"    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }", vrrpPass, src, peer))
			}
			a := StartXdpvip(t, n.lvs1, conf("lvs1", 100, lvs1Addr, lvs2Addr), "--dataplane", plane)
			a.WaitState("VI_1", "MASTER", 8*time.Second)
			b := StartXdpvip(t, n.lvs2, conf("lvs2", 90, lvs2Addr, lvs1Addr), "--dataplane", plane)
			b.WaitState("VI_1", "BACKUP", 3*time.Second)
			testnet.Eventually(t, 3*time.Second, func() error {
				in := instanceOf(t, b)
				if in.Master != lvs1Addr.String() || in.AdvertsIn == 0 {
					return fmt.Errorf("lvs2 hears %q (%d adverts), want lvs1's unicast adverts", in.Master, in.AdvertsIn)
				}
				return nil
			})

			// A priority-254 advert from an unlisted source, sent to lvs2.
			adv := vrrp.Advert{Version: 2, Type: 1, VRID: 51, Priority: 254, AuthType: vrrp.AuthPass,
				AuthData: vrrp.PasswordBytes(vrrpPass), Interval: advertInt, Addrs: []netip.Addr{vipAddr}}
			msg, err := adv.Marshal(evilAddr, lvs2Addr)
			if err != nil {
				t.Fatal(err)
			}
			f := packet.IPFrame(n.lvs2.MAC(), evil.MAC(), evilAddr, lvs2Addr, packet.ProtoVRRP, vrrp.TTL, msg)
			before := instanceOf(t, b)
			for range 5 {
				sendFrames(t, evil, n.lvs2.MAC(), f)
			}
			testnet.Eventually(t, 3*time.Second, func() error {
				st := statusJSON(t, b)
				got := st.Instances[0].Drops["unicast_peer"]
				if plane == "xdp" {
					got = st.XDPDrops["eth0"]["unicast_peer"]
				}
				if got < 5 {
					return fmt.Errorf("unicast_peer drops %d, want 5 (status %+v)", got, st)
				}
				return nil
			})
			after := instanceOf(t, b)
			if after.Master != lvs1Addr.String() || after.Transitions != before.Transitions {
				t.Errorf("the unlisted advert changed lvs2: master %s, %d transitions (was %d)", after.Master, after.Transitions, before.Transitions)
			}

			// Failover over unicast.
			crash(t, a)
			n.net.SetLink(n.lvs1, false)
			b.WaitState("VI_1", "MASTER", masterDownInterval(90)+time.Second)
			if !HasAddr(t, n.lvs2, vipAddr.String()) {
				t.Error("VIP not on lvs2 after the failover")
			}
		})
	}
}
