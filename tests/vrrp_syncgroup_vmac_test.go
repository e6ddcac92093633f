package tests

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// syncGroupConf is a node with two instances in one vrrp_sync_group; VI_1
// tracks a script (weight 0: failure means FAULT) that checks for flag.
func syncGroupConf(routerID string, prio int, flag string) string {
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
}
vrrp_script chk_flag {
    script "/bin/test -e %[3]s"
    interval 0.2
    fall 1
    rise 1
}
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %[2]d
    advert_int 1
    track_script {
        chk_flag
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority %[2]d
    advert_int 1
    virtual_ipaddress {
        192.0.2.101/24
    }
}
`, routerID, prio, flag)
}

// TestVRRPSyncGroup: the members of a vrrp_sync_group change state
// together. When VI_1 on the MASTER faults (its tracked script fails),
// VI_2 there goes to FAULT too although nothing is wrong with it, and the
// peer takes both VIPs; when the script recovers, both come back together.
func TestVRRPSyncGroup(t *testing.T) {
	n := newLBNet(t)
	dir := t.TempDir()
	flag1, flag2 := filepath.Join(dir, "lvs1-ok"), filepath.Join(dir, "lvs2-ok")
	touchFile(t, flag1)
	touchFile(t, flag2)
	a := StartXdpvip(t, n.lvs1, syncGroupConf("lvs1", 100, flag1))
	a.WaitState("VI_1", "MASTER", 8*time.Second)
	a.WaitState("VI_2", "MASTER", 2*time.Second)
	b := StartXdpvip(t, n.lvs2, syncGroupConf("lvs2", 90, flag2))
	b.WaitState("VI_1", "BACKUP", 3*time.Second)
	b.WaitState("VI_2", "BACKUP", 3*time.Second)

	removeFile(t, flag1)
	a.WaitState("VI_1", "FAULT", 3*time.Second)
	a.WaitState("VI_2", "FAULT", 2*time.Second)
	b.WaitState("VI_1", "MASTER", 3*time.Second)
	b.WaitState("VI_2", "MASTER", 3*time.Second)
	for _, vip := range []string{"192.0.2.100", "192.0.2.101"} {
		if HasAddr(t, n.lvs1, vip) || !HasAddr(t, n.lvs2, vip) {
			t.Errorf("%s is not on lvs2 only while lvs1's group is in FAULT", vip)
		}
	}

	touchFile(t, flag1)
	// Out of FAULT both members return to BACKUP, then preempt the lower
	// priority peer together.
	a.WaitState("VI_1", "MASTER", 8*time.Second)
	a.WaitState("VI_2", "MASTER", 3*time.Second)
	b.WaitState("VI_1", "BACKUP", 3*time.Second)
	b.WaitState("VI_2", "BACKUP", 3*time.Second)
	if st, _ := a.Instance("VI_2"); st.SyncGroup != "G1" {
		t.Errorf("VI_2 reports sync group %q, want G1", st.SyncGroup)
	}
}

// TestVRRPUseVMAC: with use_vmac the MASTER puts the VIP on a macvlan
// named vrrp.51 with the VRRP virtual MAC 00:00:5e:00:01:33, announces it
// from there, and the client's neighbour entry for the VIP holds the
// virtual MAC — so after a failover the client's entry does not even need
// to change. The macvlan is removed when the daemon stops.
func TestVRRPUseVMAC(t *testing.T) {
	n := newLBNet(t)
	vmac, _ := net.ParseMAC("00:00:5e:00:01:33")
	conf := func(id string, prio int) string {
		return VRRPConf(id, 51, prio, "1", "192.0.2.100/24", "    use_vmac")
	}
	a := StartXdpvip(t, n.lvs1, conf("lvs1", 100), "--dataplane", "none")
	a.WaitState("VI_1", "MASTER", 8*time.Second)
	b := StartXdpvip(t, n.lvs2, conf("lvs2", 90), "--dataplane", "none")
	b.WaitState("VI_1", "BACKUP", 3*time.Second)

	out := n.lvs1.MustExec("ip", "-o", "addr", "show", "dev", "vrrp.51")
	if !bytes.Contains(out, []byte(" 192.0.2.100/24")) {
		t.Fatalf("VIP not on vrrp.51: %s", out)
	}
	link := n.lvs1.MustExec("ip", "-o", "link", "show", "dev", "vrrp.51")
	if !bytes.Contains(link, []byte("00:00:5e:00:01:33")) || !bytes.Contains(link, []byte("macvlan")) && !bytes.Contains(link, []byte("@eth0")) {
		t.Errorf("vrrp.51 is not a macvlan on eth0 with the virtual MAC: %s", link)
	}
	ping(t, n.client, vipAddr)
	nb, err := n.client.Neigh(vipAddr)
	if err != nil || !bytes.Equal(nb.MAC, vmac) {
		t.Fatalf("client neighbour for the VIP %v (%v), want the virtual MAC %s (lvs1 %s, lvs2 %s; lvs1 eth0 %s)", nb, err, vmac,
			n.lvs1.MAC(), n.lvs2.MAC(), n.lvs1.MustExec("sysctl", "net.ipv4.conf.eth0.arp_ignore", "net.ipv4.conf.eth0.arp_filter"))
	}

	t0 := time.Now()
	a.Stop(syscallTERM)
	b.WaitState("VI_1", "MASTER", 3*time.Second)
	t.Logf("takeover %v after the stop", time.Since(t0))
	testnet.Eventually(t, 3*time.Second, func() error {
		if _, err := n.lvs1.Exec(ctxBG(), "ip", "link", "show", "dev", "vrrp.51"); err == nil {
			return fmt.Errorf("vrrp.51 still on lvs1 after its daemon stopped")
		}
		return nil
	})
	ping(t, n.client, vipAddr)
	nb, err = n.client.Neigh(vipAddr)
	if err != nil || !bytes.Equal(nb.MAC, vmac) {
		t.Errorf("after the failover the client's entry is %v (%v), want still %s", nb, err, vmac)
	}
}
