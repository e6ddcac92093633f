package tests

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
)

// Addresses of the guest's XDP lab (one bridge: lb1, lb2, rs1, client).
const (
	xdpVMVIP   = "10.0.0.100"
	xdpVMRS    = "10.0.0.11"
	xdpVMVIPs4 = 124 // VIPs of the IPv4 instance: a 516-byte v3 checksum
	xdpVMVIPs6 = 30  // VIPs of the IPv6 instance: a 528-byte v3 checksum
)

// xdpVMConfig is node name's configuration: an IPv4 instance with
// xdpVMVIPs4 VIPs (the first is the virtual server's), an IPv6 one with
// xdpVMVIPs6, both VRRPv3, and one DR virtual server over rs1.
func xdpVMConfig(name string, priority int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n    vrrp_version 3\n}\n", name)
	fmt.Fprintf(&b, "vrrp_instance V4 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority %d\n    advert_int 1\n    virtual_ipaddress {\n        %s/32\n", priority, xdpVMVIP)
	for i := 1; i < xdpVMVIPs4; i++ {
		fmt.Fprintf(&b, "        10.0.1.%d/32\n", i)
	}
	b.WriteString("    }\n}\n")
	fmt.Fprintf(&b, "vrrp_instance V6 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 52\n    priority %d\n    advert_int 1\n    virtual_ipaddress {\n", priority)
	for i := 1; i <= xdpVMVIPs6; i++ {
		fmt.Fprintf(&b, "        2001:db8:1::%x/128\n", i)
	}
	b.WriteString("    }\n}\n")
	fmt.Fprintf(&b, `virtual_server %s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server %s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`, xdpVMVIP, xdpVMRS)
	return b.String()
}

// xdpDaemonChecks are the markers the guest script must print.
var xdpDaemonChecks = []string{
	"1-lb1-master-xdp",
	"1-lb2-backup",
	"1-lb2-adverts-through-xdp",
	"1-no-checksum-drops",
	"1-vips-only-on-lb1",
	"2-http-through-xdp-dr",
	"2-xdp-forwarded",
	"3-lb2-takes-over",
	"3-http-through-lb2",
}

// TestXDPDaemonOnDebianKernel boots Debian 12's stock kernel (6.1) and
// runs two xdpvip daemons with --dataplane xdp in it, on one bridge with a
// real server and a client:
//
//  1. lb1 (priority 150) is elected MASTER and lb2 BACKUP, with lb2's
//     adverts received through the XDP program (v3 adverts with 124 IPv4
//     and 30 IPv6 addresses, checksummed in chunks) and no checksum drops;
//     every VIP is on lb1 only;
//  2. the client's HTTP request to the VIP is forwarded by lb1's XDP
//     program (DR) and answered by rs1 directly;
//  3. after lb1's SIGTERM (priority 0), lb2 is MASTER and forwards.
//
// It skips only when qemu cannot start.
func TestXDPDaemonOnDebianKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: apt-get download into the kernel cache and the guest's test setup")
	}
	bin := buildStaticXdpvip(t)
	files := []ipvsvm.File{
		{Src: bin, Dst: "/xdpvip", Mode: 0o755},
		{Data: []byte(xdpDaemonScript), Dst: "/xdp-daemon-vm.sh", Mode: 0o755},
		{Data: []byte(xdpVMConfig("lb1", 150)), Dst: "/etc/xdpvip/lb1.conf"},
		{Data: []byte(xdpVMConfig("lb2", 100)), Dst: "/etc/xdpvip/lb2.conf"},
	}
	start := time.Now()
	res := bootGuest(t, 4*time.Minute, ipvsvm.Options{
		Files:    files,
		Command:  "/bin/sh /xdp-daemon-vm.sh",
		MemoryMB: 1024,
		Timeout:  200 * time.Second,
	})
	checkGuestMarkers(t, res, xdpDaemonChecks)
	t.Logf("guest run %v, harness total %v", res.Elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// xdpDaemonScript runs in the guest (busybox sh, iproute2's ip).
var xdpDaemonScript = "set -u\n" + guestShellLib + `VIP=` + xdpVMVIP + `
RS=` + xdpVMRS + `
CL=10.0.0.50
ST() { ip netns exec $1 /xdpvip status --json --control-socket /run/$1.sock; }
# state NODE INSTANCE STATE: NODE's instance INSTANCE is in STATE.
state() { ST $1 | tr -d ' \n' | grep -q "\"name\":\"$2\",[^}]*\"state\":\"$3\""; }
# field NODE INSTANCE KEY: the number KEY of NODE's instance INSTANCE.
field() { ST $1 | tr -d ' \n' | sed 's/},{/}\n{/g' | grep "\"name\":\"$2\"" | sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p"; }
nvips() { ip -n $1 addr show dev eth0 | grep -cE " (10\.0\.1\.[0-9]+/32|$VIP/32|2001:db8:1::[0-9a-f]+/128) "; }

echo "== network"
bridge lb1:10.0.0.1 lb2:10.0.0.2 rs1:$RS client:$CL
dr_real_server rs1
start_http rs1
mount -t bpf bpf /sys/fs/bpf
for n in lb1 lb2; do
	ip netns exec $n /xdpvip run -f /etc/xdpvip/$n.conf --control-socket /run/$n.sock --pid-file /run/$n.pid \
		--bpf-dir /sys/fs/bpf/$n --dataplane xdp --xdp-mode generic >/tmp/$n.log 2>&1 &
done
waitfor 20000 test -s /run/lb1.pid
waitfor 20000 test -s /run/lb2.pid

echo "== 1: election"
if waitfor 30000 state lb1 V4 MASTER && waitfor 30000 state lb1 V6 MASTER; then
	if ST lb1 | grep -q '"dataplane": *"xdp"'; then
		pass 1-lb1-master-xdp "lb1 MASTER of both instances ${took} ms later; dataplane xdp"
	else
		fail 1-lb1-master-xdp "lb1 MASTER but its dataplane is not xdp"
	fi
else
	fail 1-lb1-master-xdp "lb1 not MASTER of both instances"
fi
sleep 3
if state lb2 V4 BACKUP && state lb2 V6 BACKUP; then pass 1-lb2-backup "lb2 BACKUP of both"; else fail 1-lb2-backup "lb2 not BACKUP of both"; fi
in4=$(field lb2 V4 adverts_in); in6=$(field lb2 V6 adverts_in)
if [ "${in4:-0}" -gt 0 ] && [ "${in6:-0}" -gt 0 ] && ST lb2 | tr -d ' \n' | grep -q '"receive":"xdp'; then
	pass 1-lb2-adverts-through-xdp "lb2 received $in4 IPv4 and $in6 IPv6 adverts through XDP"
else
	fail 1-lb2-adverts-through-xdp "lb2 adverts in: IPv4 ${in4:-?}, IPv6 ${in6:-?}"
fi
ck=$(ST lb2 | tr -d ' \n' | sed -n 's/.*"xdp_drops".*"checksum":\([0-9]*\).*/\1/p')
check 1-no-checksum-drops "lb2's XDP checksum drops: ${ck:-none reported}" [ "${ck:-x}" = 0 ]
n1=$(nvips lb1); n2=$(nvips lb2)
check 1-vips-only-on-lb1 "VIPs on lb1: $n1, on lb2: $n2" [ "$n1" = ` + fmt.Sprint(xdpVMVIPs4+xdpVMVIPs6) + ` -a "$n2" = 0 ]

echo "== 2: DR through lb1's XDP program"
ip -n client route add $VIP/32 dev eth0
if waitfor 20000 get; then
	check 2-http-through-xdp-dr "answered '$body' ${took} ms" [ "$body" = "rs1 remote=$CL" ]
else
	fail 2-http-through-xdp-dr "no answer through $VIP in ${took} ms"
	ip -n client neigh
fi
ip netns exec lb1 /xdpvip lvs --stats --control-socket /run/lb1.sock >/tmp/lvs1
cat /tmp/lvs1
if grep -E -- "-> $RS:80" /tmp/lvs1 | awk '{for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+$/ && $i > 0) ok = 1} END {exit !ok}'; then
	pass 2-xdp-forwarded "lb1's XDP program counted packets for rs1"
else
	fail 2-xdp-forwarded "no packets counted for rs1"
fi

echo "== 3: lb1 leaves"
kill $(cat /run/lb1.pid)
if waitfor 20000 state lb2 V4 MASTER; then
	check 3-lb2-takes-over "lb2 MASTER ${took} ms after lb1's SIGTERM" true
else
	fail 3-lb2-takes-over "lb2 not MASTER 20 s after lb1's SIGTERM"
fi
ip -n client neigh flush dev eth0
if waitfor 20000 get; then
	check 3-http-through-lb2 "answered '$body' ${took} ms" [ "$body" = "rs1 remote=$CL" ]
else
	fail 3-http-through-lb2 "no answer through lb2 in ${took} ms"
fi
kill $(cat /run/lb2.pid) 2>/dev/null
sleep 1
echo "--- lb1 log"; tail -n 30 /tmp/lb1.log
echo "--- lb2 log"; tail -n 30 /tmp/lb2.log
exit $fails
`
