package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
)

// Addresses of the guest's TUN lab: a LAN (client, lb1, lb2, the
// router's eth0) and the real servers' subnet behind the router.
const (
	tunVMVIP    = "10.0.0.100"
	tunVMClient = "10.0.0.50"
	tunVMRouter = "10.0.0.254"
	tunVMRS1    = "10.0.2.11" // IP-in-IP
	tunVMRS2    = "10.0.2.12" // GUE
	tunVMGUE    = 6080
)

// tunVMConfig is node name's configuration: a VRRP instance holding the
// VIP and a TUN virtual server over rs1 (IP-in-IP, the virtual server's
// lb_kind) and rs2 (GUE on tunVMGUE, its own lvs_method).
func tunVMConfig(name string, priority int) string {
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
}
vrrp_instance V4 {
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority %[2]d
    advert_int 1
    virtual_ipaddress {
        %[3]s/32
    }
}
virtual_server %[3]s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind TUN
    protocol TCP
    real_server %[4]s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server %[5]s 80 {
        weight 1
        lvs_method TUN type gue port %[6]d
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`, name, priority, tunVMVIP, tunVMRS1, tunVMRS2, tunVMGUE)
}

// tunVMChecks are the markers the guest script prints whatever the
// dataplane; tunVMGUECheck is added when the configuration carries GUE.
var tunVMChecks = []string{
	"0-ipip-decap",
	"0-gue-decap",
	"1-lb1-master",
	"1-lb2-backup",
	"2-both-real-servers",
	"2-client-address-kept",
	"2-replies-direct",
	"2-dataplane-counted",
	"3-lb2-takes-over",
	"3-tun-through-lb2",
	"4-rs2-removed",
	"4-only-rs1",
}

const tunVMGUECheck = "2-gue-to-rs2"

// tunVMNoXDPTUN is the guest's note that the XDP dataplane skipped the
// TUN real servers, followed by the daemon's log line.
var tunVMNoXDPTUN = regexp.MustCompile(`(?m)^XDPVIP-TUN-VM: NO-XDP-TUN: (.*)$`)

// TestXDPTunnelOnDebianKernel boots Debian 12's stock kernel (6.1: it has
// ipip, fou and ip6_tunnel; this host's has none) and runs two xdpvip
// daemons with --dataplane xdp in front of two TUN real servers behind a
// router, one IP-in-IP and one GUE:
//
//  0. the network: an IP-in-IP and a GUE packet built by hand on lb1
//     reach the real servers, which answer the client directly through
//     the router (so what follows tests the director, not the lab);
//  1. lb1 is elected MASTER, lb2 BACKUP;
//  2. the client's HTTP requests to the VIP are answered by both real
//     servers, which see the client's address; every reply segment the
//     client receives comes from the router's MAC (straight from the real
//     servers, not through a director); rs2 receives GUE (UDP datagrams);
//     lb1's dataplane counts packets for both;
//  3. after lb1's SIGTERM, lb2 is MASTER and still tunnels to both;
//  4. a real server whose health check fails (its httpd stopped) leaves
//     lb2's table and every request goes to the other.
//
// When the XDP dataplane skips TUN real servers (its encapsulation not
// built yet) the guest runs steps 1-4 on kernel IPVS (--dataplane ipvs)
// instead, and the test, having checked those, skips naming the missing
// piece. It skips only when qemu cannot start.
func TestXDPTunnelOnDebianKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: apt-get download into the kernel cache and the guest's test setup")
	}
	bin := buildStaticXdpvip(t)
	probe := buildStaticCommand(t, "./tunprobe", "tunprobe")
	gue := configCarriesGUE(t, bin)
	files := []ipvsvm.File{
		{Src: bin, Dst: "/xdpvip", Mode: 0o755},
		{Src: probe, Dst: "/tunprobe", Mode: 0o755},
		{Data: []byte(tunVMScript), Dst: "/xdp-tun-vm.sh", Mode: 0o755},
		{Data: []byte(tunVMConfig("lb1", 150)), Dst: "/etc/xdpvip/lb1.conf"},
		{Data: []byte(tunVMConfig("lb2", 100)), Dst: "/etc/xdpvip/lb2.conf"},
	}
	want := append([]string(nil), tunVMChecks...)
	if gue {
		want = append(want, tunVMGUECheck)
	}
	start := time.Now()
	res := bootGuest(t, 4*time.Minute, ipvsvm.Options{
		Files:    files,
		Modules:  append(append([]string{}, ipvsvm.DefaultModules...), ipvsvm.TunnelModules...),
		Command:  fmt.Sprintf("GUE=%d /bin/sh /xdp-tun-vm.sh", map[bool]int{false: 0, true: 1}[gue]),
		MemoryMB: 1024,
		Timeout:  200 * time.Second,
	})
	checkGuestMarkers(t, res, want)
	t.Logf("guest run %v, harness total %v", res.Elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	if m := tunVMNoXDPTUN.FindStringSubmatch(res.Console); m != nil {
		t.Skipf("the XDP dataplane has no TUN encapsulation yet (pkg/dataplane; lb1 logged %q): steps 1-4 passed on kernel IPVS instead", m[1])
	}
	if !gue {
		t.Skip("the configuration parser ignores `lvs_method TUN type gue port 6080` (lvs.Dest.Tunnel not parsed yet): rs2 was reached over IP-in-IP, GUE on the wire not checked")
	}
}

// configCarriesGUE says whether xdpvip reads rs2's `type gue port 6080`
// (check-config passes without saying it ignores them).
func configCarriesGUE(t *testing.T, bin string) bool {
	t.Helper()
	f := filepath.Join(t.TempDir(), "lb1.conf")
	if err := os.WriteFile(f, []byte(tunVMConfig("lb1", 150)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "check-config", "-f", f).CombinedOutput()
	if err != nil {
		t.Fatalf("xdpvip check-config of the guest's configuration: %v\n%s", err, out)
	}
	return !strings.Contains(string(out), "ignored by xdpvip")
}

// tunVMScript runs in the guest (busybox sh, iproute2's ip). $GUE is 1
// when the configuration tunnels to rs2 with GUE.
var tunVMScript = "set -u\n" + guestShellLib + `VIP=` + tunVMVIP + `
CL=` + tunVMClient + `
RT=` + tunVMRouter + `
RS1=` + tunVMRS1 + `
RS2=` + tunVMRS2 + `
GUEPORT=` + fmt.Sprint(tunVMGUE) + `
ST() { ip netns exec $1 /xdpvip status --json --control-socket /run/$1.sock; }
state() { ST $1 | tr -d ' \n' | grep -q "\"name\":\"$2\",[^}]*\"state\":\"$3\""; }
mac() { ip -n $1 -br link show dev $2 | awk '{print $3}'; }
# cable BR NS IF ADDR/LEN: a veth from bridge BR to NS's IF with ADDR.
cable() {
	[ -e /run/netns/$2 ] || { ip netns add $2; ip -n $2 link set lo up; }
	ip link add v$2$3 type veth peer name $3 netns $2
	ip link set v$2$3 master $1 up
	ip -n $2 addr add $4 dev $3
	ip -n $2 link set $3 up
}
sysctl_in() { ip netns exec $1 sh -c "echo $3 >/proc/sys/$2"; }
# sniff_start NAME: the client's capture of segments from VIP:80 into /tmp/NAME.
sniff_start() {
	rm -f /tmp/$1.ready
	ip netns exec client /tunprobe sniff -i eth0 -from $VIP -sport 80 -for 60s -ready /tmp/$1.ready >/tmp/$1 2>&1 &
	sniff_pid=$!
	waitfor 5000 test -e /tmp/$1.ready || echo "sniffer $1 did not start"
}
sniff_stop() { sleep 0.3; kill $sniff_pid 2>/dev/null; wait $sniff_pid 2>/dev/null; }
# requests N: N HTTP requests to the VIP; counts the answers of each real
# server in $n_rs1 $n_rs2, the others in $n_bad ($bodies lists them) and
# those whose real server saw another peer than the client in $n_foreign.
requests() {
	n_rs1=0; n_rs2=0; n_bad=0; n_foreign=0; bodies=""
	i=0
	while [ $i -lt $1 ]; do
		i=$((i+1))
		if get; then
			case "$body" in
			"rs1 remote="*) n_rs1=$((n_rs1+1)) ;;
			"rs2 remote="*) n_rs2=$((n_rs2+1)) ;;
			*) n_bad=$((n_bad+1)); bodies="$bodies|$body" ;;
			esac
			case "$body" in
			*" remote=$CL") ;;
			*) n_foreign=$((n_foreign+1)); bodies="$bodies|$body" ;;
			esac
		else
			n_bad=$((n_bad+1)); bodies="$bodies|(no answer)"
		fi
	done
}
# in_table NODE RS: RS is an active real server in NODE's table.
in_table() { ip netns exec $1 /xdpvip lvs --control-socket /run/$1.sock | grep -E -- "-> $2:80" | grep -vq DOWN; }
not_in_table() { ! in_table "$@"; }
udp_in() { ip netns exec $1 awk '/^Udp: [0-9]/ {print $2}' /proc/net/snmp; }
lvs_line() { ip netns exec $1 /xdpvip lvs --stats --control-socket /run/$1.sock | grep -E -- "-> $2:80"; }
# counted NODE RS: NODE's dataplane counted packets for RS.
counted() { lvs_line $1 $2 | awk '{for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+$/ && $i > 0) ok = 1} END {exit !ok}'; }
start_lbs() {
	for n in lb1 lb2; do
		rm -f /run/$n.pid
		ip netns exec $n /xdpvip run -f /etc/xdpvip/$n.conf --control-socket /run/$n.sock --pid-file /run/$n.pid \
			--bpf-dir /sys/fs/bpf/$n --dataplane $1 --xdp-mode generic >/tmp/$n.log 2>&1 &
	done
	waitfor 20000 test -s /run/lb1.pid
	waitfor 20000 test -s /run/lb2.pid
}
no_daemon() { ! pidof xdpvip; }
stop_lbs() {
	for n in lb1 lb2; do
		[ -s /run/$n.pid ] && kill $(cat /run/$n.pid) 2>/dev/null
	done
	waitfor 10000 no_daemon
	for n in lb1 lb2; do ip -n $n link set eth0 xdp off 2>/dev/null; ip -n $n link set eth0 xdpgeneric off 2>/dev/null; done
	rm -rf /sys/fs/bpf/lb1 /sys/fs/bpf/lb2
}

echo "== network"
ip link add br0 type bridge; ip link set br0 up
ip link add br1 type bridge; ip link set br1 up
cable br0 client eth0 $CL/24
cable br0 lb1 eth0 10.0.0.1/24
cable br0 lb2 eth0 10.0.0.2/24
cable br0 router eth0 $RT/24
cable br1 router eth1 10.0.2.254/24
cable br1 rs1 eth0 $RS1/24
cable br1 rs2 eth0 $RS2/24
sysctl_in router net/ipv4/ip_forward 1
for n in router client; do sysctl_in $n net/ipv4/conf/all/rp_filter 0; sysctl_in $n net/ipv4/conf/default/rp_filter 0; done
for n in lb1 lb2; do ip -n $n route add 10.0.2.0/24 via $RT; done
for n in rs1 rs2; do
	ip -n $n route add default via 10.0.2.254
	ip -n $n addr add $VIP/32 dev lo
	ip -n $n link set tunl0 up
	for i in all default tunl0 eth0; do sysctl_in $n net/ipv4/conf/$i/rp_filter 0; done
	start_http $n
done
ip netns exec rs2 ip fou add port $GUEPORT gue
RTMAC=$(mac router eth0)
LB1MAC=$(mac lb1 eth0); LB2MAC=$(mac lb2 eth0)
echo "router $RTMAC lb1 $LB1MAC lb2 $LB2MAC"

echo "== 0: hand-built tunnel packets from lb1"
sniff_start sniff0
ip netns exec lb1 /tunprobe send -mode ipip -to $RS1 -src $CL -dst $VIP -sport 40001
ip netns exec lb1 /tunprobe send -mode gue -port $GUEPORT -to $RS2 -src $CL -dst $VIP -sport 40002
waitfor 3000 grep -q "dst=$CL:40002 mac=$RTMAC flags=SA" /tmp/sniff0
sniff_stop
cat /tmp/sniff0
check 0-ipip-decap "rs1 answered an IP-in-IP SYN with a SYN-ACK from $VIP through the router" grep -q "dst=$CL:40001 mac=$RTMAC flags=SA" /tmp/sniff0
check 0-gue-decap "rs2 answered a GUE SYN with a SYN-ACK from $VIP through the router" grep -q "dst=$CL:40002 mac=$RTMAC flags=SA" /tmp/sniff0

mount -t bpf bpf /sys/fs/bpf
DP=xdp
start_lbs $DP
echo "== 1: election ($DP)"
waitfor 30000 state lb1 V4 MASTER
if grep -q "only DR real servers" /tmp/lb1.log; then
	echo "XDPVIP-TUN-VM: NO-XDP-TUN: $(grep -m1 'only DR real servers' /tmp/lb1.log)"
	stop_lbs
	DP=ipvs
	start_lbs $DP
	echo "== 1: election again ($DP)"
	waitfor 30000 state lb1 V4 MASTER
fi
if state lb1 V4 MASTER && ST lb1 | grep -q "\"dataplane\": *\"$DP\""; then
	pass 1-lb1-master "lb1 MASTER; dataplane $DP"
else
	fail 1-lb1-master "lb1 not MASTER with dataplane $DP"
fi
waitfor 5000 state lb2 V4 BACKUP
check 1-lb2-backup "lb2 BACKUP" state lb2 V4 BACKUP

echo "== 2: TUN through lb1 ($DP)"
# The health checks bring both real servers in.
waitfor 15000 in_table lb1 $RS1; waitfor 15000 in_table lb1 $RS2
ip netns exec lb1 /xdpvip lvs --control-socket /run/lb1.sock
u0=$(udp_in rs2)
sniff_start sniff2
requests 12
sniff_stop
u1=$(udp_in rs2)
check 2-both-real-servers "12 requests: rs1 $n_rs1, rs2 $n_rs2, other $n_bad$bodies" [ $n_rs1 -ge 3 -a $n_rs2 -ge 3 -a $n_bad = 0 ]
check 2-client-address-kept "answers whose real server saw another peer than the client $CL: $n_foreign" [ $n_foreign = 0 -a $((n_rs1+n_rs2)) -gt 0 ]
segs=$(grep -c "dst=$CL:" /tmp/sniff2); direct=$(grep -c "mac=$RTMAC" /tmp/sniff2)
check 2-replies-direct "$segs reply segments from $VIP:80 at the client, $direct from the router's MAC $RTMAC" [ $segs -gt 0 -a "$segs" = "$direct" ]
if [ "$GUE" = 1 ]; then
	check 2-gue-to-rs2 "rs2 received $((u1-u0)) UDP datagrams (GUE) for $n_rs2 connections" [ $((u1-u0)) -ge $n_rs2 -a $n_rs2 -gt 0 ]
else
	echo "rs2 received $((u1-u0)) UDP datagrams (GUE not configured: IP-in-IP)"
fi
ip netns exec lb1 /xdpvip lvs --stats --control-socket /run/lb1.sock
if counted lb1 $RS1 && counted lb1 $RS2; then
	pass 2-dataplane-counted "lb1's $DP dataplane counted packets for rs1 and rs2"
else
	fail 2-dataplane-counted "lb1's $DP dataplane did not count packets for both real servers"
fi

echo "== 3: lb1 leaves"
kill $(cat /run/lb1.pid)
if waitfor 20000 state lb2 V4 MASTER; then
	pass 3-lb2-takes-over "lb2 MASTER ${took} ms after lb1's SIGTERM"
else
	fail 3-lb2-takes-over "lb2 not MASTER 20 s after lb1's SIGTERM"
fi
ip -n client neigh flush dev eth0
waitfor 10000 get
requests 8
check 3-tun-through-lb2 "8 requests through lb2: rs1 $n_rs1, rs2 $n_rs2, other $n_bad$bodies" [ $n_rs1 -ge 2 -a $n_rs2 -ge 2 -a $n_bad = 0 ]

echo "== 4: rs2's health check fails"
stop_http rs2
if waitfor 15000 not_in_table lb2 $RS2; then
	pass 4-rs2-removed "rs2 out of lb2's table ${took} ms after its httpd stopped"
else
	fail 4-rs2-removed "rs2 still in lb2's table 15 s after its httpd stopped"
fi
ip netns exec lb2 /xdpvip lvs --control-socket /run/lb2.sock
requests 6
check 4-only-rs1 "6 requests: rs1 $n_rs1, rs2 $n_rs2, other $n_bad$bodies" [ $n_rs1 = 6 ]

stop_lbs
echo "--- lb1 log"; tail -n 30 /tmp/lb1.log
echo "--- lb2 log"; tail -n 30 /tmp/lb2.log
exit $fails
`
