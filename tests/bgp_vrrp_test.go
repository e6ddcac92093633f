package tests

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// bgpVRRPConf: VI_1 holds the VIP by VRRP (lb1 MASTER 100, lb2 BACKUP 90)
// and the virtual server is announced over BGP only while VI_1 is MASTER.
func bgpVRRPConf(i int, h *testnet.Host) string {
	state, prio := "MASTER", 100
	if i > 0 {
		state, prio = "BACKUP", 90
	}
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
}
bgp {
    local_as 65010
    neighbor %[2]s {
        remote_as 65000
        hold_time 3
    }
}
vrrp_instance VI_1 {
    state %[3]s
    interface eth0
    virtual_router_id 61
    priority %[4]d
    advert_int 1
    virtual_ipaddress {
        %[5]s/32
    }
}
virtual_server %[5]s 80 {
    announce vrrp VI_1
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
%[6]s}
`, h.Name(), ecmpRouter, state, prio, ecmpVIP, labTCPReal("10.78.1.21", 1, "")+labTCPReal("10.78.1.22", 1, ""))
}

// TestBGPAnnounceVRRPFollowsMaster: with `announce vrrp VI_1` only the
// MASTER's route is at the router; SIGTERM on the MASTER withdraws its
// route before it leaves, and the new MASTER announces.
func TestBGPAnnounceVRRPFollowsMaster(t *testing.T) {
	l := newBGPLab(t, 2, false, bgpVRRPConf)
	lb1, lb2 := l.Nodes[0], l.Nodes[1]
	lb1.WaitState("VI_1", "MASTER", 10*time.Second)
	lb2.WaitState("VI_1", "BACKUP", 5*time.Second)
	l.WaitNextHops(1, 10*time.Second)
	if hops := l.NextHops(); hops[0] != "10.78.1.11" {
		t.Fatalf("next hops %v, want only the MASTER lb1", hops)
	}
	b := bgpStatus(t, lb2)
	if len(b.Routes) != 1 || b.Routes[0].Announced || b.Routes[0].Reason != "instance not MASTER" {
		t.Errorf("BACKUP's routes: %+v", b.Routes)
	}
	if body, err := l.getFrom(0, "/", 3*time.Second); err != nil || !strings.HasPrefix(body, "rs") {
		t.Errorf("through the MASTER: %q %v", body, err)
	}

	stopped := time.Now()
	lb1.Stop(syscall.SIGTERM)
	log := lb1.Proc.Log()
	wd := strings.Index(log, "draining: every route withdrawn")
	down := strings.LastIndex(log, "Peer Down")
	if wd < 0 || (down >= 0 && down < wd) {
		t.Errorf("SIGTERM did not withdraw before closing the session:\n%s", log)
	}
	lb2.WaitState("VI_1", "MASTER", 10*time.Second)
	testnet.Eventually(t, 10*time.Second, func() error {
		if hops := l.NextHops(); len(hops) != 1 || hops[0] != "10.78.1.12" {
			return fmt.Errorf("next hops %v, want only lb2", hops)
		}
		return nil
	})
	t.Logf("route moved to the new MASTER %v after SIGTERM on the old one", time.Since(stopped).Round(time.Millisecond))
	if body, err := l.getFrom(0, "/", 3*time.Second); err != nil || !strings.HasPrefix(body, "rs") {
		t.Errorf("through the new MASTER: %q %v", body, err)
	}
}
