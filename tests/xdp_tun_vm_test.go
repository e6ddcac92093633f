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
	// IPv6: the LAN 2001:db8:a::/64, the real servers' 2001:db8:b::/64;
	// rs1 serves the IPv6 virtual server over ip6ip6 (ip6tnl0).
	tunVMVIP6    = "2001:db8:a::100"
	tunVMClient6 = "2001:db8:a::50"
	tunVMRouter6 = "2001:db8:a::fe"
	tunVMRS16    = "2001:db8:b::11"
	tunVMPort6   = 8080 // rs1's httpd on 80 is IPv4 only
)

// tunVMConfig is node name's configuration: VRRPv3 instances holding the
// VIPs, a TUN virtual server over rs1 (IP-in-IP, the virtual server's
// lb_kind) and rs2 (GUE on tunVMGUE, its own lvs_method), and an IPv6 one
// over rs1 (IPv6-in-IPv6).
func tunVMConfig(name string, priority int) string {
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
    vrrp_version 3
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
vrrp_instance V6 {
    state BACKUP
    interface eth0
    virtual_router_id 62
    priority %[2]d
    advert_int 1
    virtual_ipaddress {
        %[7]s/128
    }
}
virtual_server %[7]s %[9]d {
    delay_loop 1
    lb_algo rr
    lb_kind TUN
    protocol TCP
    real_server %[8]s %[9]d {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`, name, priority, tunVMVIP, tunVMRS1, tunVMRS2, tunVMGUE, tunVMVIP6, tunVMRS16, tunVMPort6)
}

// tunVMChecks are the markers the guest script prints whatever the
// dataplane; tunVMGUECheck is added when the configuration carries GUE.
var tunVMChecks = []string{
	"0-ipip-decap",
	"0-gue-decap",
	"0-ip6ip6-decap",
	"1-lb1-master",
	"1-lb2-backup",
	"2-both-real-servers",
	"2-client-address-kept",
	"2-replies-direct",
	"2-dataplane-counted",
	"2-encapsulated",
	"2-ipv6-tun",
	"2-ipv6-replies-direct",
	"2-ipv6-encapsulated",
	"2-ipv6-dataplane-counted",
	"3-lb2-takes-over",
	"3-tun-through-lb2",
	"3-ipv6-through-lb2",
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
//  0. the network: an IP-in-IP, a GUE and an IPv6-in-IPv6 packet built by
//     hand on lb1 reach the real servers, which answer the client
//     directly through the router (so what follows tests the director,
//     not the lab);
//  1. lb1 is elected MASTER (of the IPv4 and IPv6 instances), lb2 BACKUP;
//  2. the client's HTTP requests to the VIP are answered by both real
//     servers, which see the client's address; every reply segment the
//     client receives comes from the router's MAC (straight from the real
//     servers, not through a director); rs2 receives GUE (UDP datagrams);
//     lb1's dataplane counts packets for both; the same for the IPv6
//     virtual server and rs1 over ip6ip6;
//  3. after lb1's SIGTERM, lb2 is MASTER and still tunnels to both (and
//     to rs1 for the IPv6 VIP);
//  4. a real server whose health check fails (its httpd stopped) leaves
//     lb2's table and every request goes to the other.
//
// When the XDP dataplane skips TUN real servers the guest runs steps 1-4
// on kernel IPVS (--dataplane ipvs) instead, so the network is still
// checked, and the test fails naming what the daemon logged; it fails too
// when the parser does not carry rs2's GUE tunnel. It skips only when
// qemu cannot start.
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
		t.Errorf("the XDP dataplane skipped the TUN real servers (lb1 logged %q): steps 1-4 passed on kernel IPVS instead", m[1])
	}
	if !gue {
		t.Error("the configuration parser ignores `lvs_method TUN type gue port 6080`: rs2 was reached over IP-in-IP, GUE on the wire not checked")
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
VIP6=` + tunVMVIP6 + `
CL6=` + tunVMClient6 + `
RT6=` + tunVMRouter6 + `
RS16=` + tunVMRS16 + `
PORT6=` + fmt.Sprint(tunVMPort6) + `
ST() { ip netns exec $1 /xdpvip status --json --control-socket /run/$1.sock; }
state() { ST $1 | tr -d ' \n' | grep -q "\"name\":\"$2\",[^}]*\"state\":\"$3\""; }
# both NODE STATE: NODE's IPv4 and IPv6 instances are in STATE.
both() { state $1 V4 $2 && state $1 V6 $2; }
mac() { ip -n $1 -br link show dev $2 | awk '{print $3}'; }
sysctl_in() { ip netns exec $1 sh -c "echo $3 >/proc/sys/$2"; }
# cable BR NS IF ADDR/LEN ADDR6/LEN: a veth from bridge BR to NS's IF with
# ADDR and ADDR6 (no duplicate address detection in the namespaces: the
# addresses, link-local ones included, are usable at once).
cable() {
	if [ ! -e /run/netns/$2 ]; then
		ip netns add $2
		ip -n $2 link set lo up
		for c in all default; do sysctl_in $2 net/ipv6/conf/$c/accept_dad 0; done
	fi
	ip link add v$2$3 type veth peer name $3 netns $2
	ip link set v$2$3 master $1 up
	ip -n $2 addr add $4 dev $3
	ip -n $2 addr add $5 dev $3 nodad
	ip -n $2 link set $3 up
}
# sniff_start NAME: the client's capture of segments from VIP:80 into /tmp/NAME.
sniff_start() {
	rm -f /tmp/$1.ready
	ip netns exec client /tunprobe sniff -i eth0 -from "$VIP:80,[$VIP6]:$PORT6" -for 60s -ready /tmp/$1.ready >/tmp/$1 2>&1 &
	sniff_pid=$!
	waitfor 5000 test -e /tmp/$1.ready || echo "sniffer $1 did not start"
}
sniff_stop() { sleep 0.3; kill $sniff_pid 2>/dev/null; wait $sniff_pid 2>/dev/null; }
# tun_sniff_start NAME / tun_sniff_stop: the router's capture of the
# tunnelled packets arriving from the directors, into /tmp/NAME.
tun_sniff_start() {
	rm -f /tmp/$1.ready
	ip netns exec router /tunprobe sniff -i eth0 -tunnels -gue $GUEPORT -from "$VIP:80" -for 60s -ready /tmp/$1.ready >/tmp/$1 2>&1 &
	tun_sniff_pid=$!
	waitfor 5000 test -e /tmp/$1.ready || echo "sniffer $1 did not start"
}
tun_sniff_stop() { sleep 0.3; kill $tun_sniff_pid 2>/dev/null; wait $tun_sniff_pid 2>/dev/null; }
get6() { body=$(ip netns exec client timeout 3 wget -q -O - "http://[$VIP6]:$PORT6/cgi-bin/who" 2>/dev/null) && [ -n "$body" ]; }
# requests N [6]: N HTTP requests to the VIP (the IPv6 one with 6);
# counts the answers of each real server in $n_rs1 $n_rs2, the others in
# $n_bad ($bodies lists them) and those whose real server saw another peer
# than the client in $n_foreign.
#
# spread MIN MAX: at least MIN requests to the IPv4 VIP, more (up to MAX)
# until both real servers answered: the XDP dataplane picks a real server
# by a hash of the flow (Maglev), not in turn as IPVS's rr, so a few
# requests can all land on one. $i is the number made.
requests() {
	n_rs1=0; n_rs2=0; n_bad=0; n_foreign=0; bodies=""
	getter=get; peer=$CL
	[ "${2:-}" = 6 ] && { getter=get6; peer="[$CL6]"; }
	i=0
	while [ $i -lt $1 ] || [ $i -lt ${max:-0} -a \( $n_rs1 = 0 -o $n_rs2 = 0 \) ]; do
		i=$((i+1))
		if $getter; then
			case "$body" in
			"rs1 remote="*) n_rs1=$((n_rs1+1)) ;;
			"rs2 remote="*) n_rs2=$((n_rs2+1)) ;;
			*) n_bad=$((n_bad+1)); bodies="$bodies|$body" ;;
			esac
			case "$body" in
			*" remote=$peer") ;;
			*) n_foreign=$((n_foreign+1)); bodies="$bodies|$body" ;;
			esac
		else
			n_bad=$((n_bad+1)); bodies="$bodies|(no answer)"
		fi
	done
}
spread() { max=$2; requests $1; max=0; }
# in_table NODE RS:PORT: RS:PORT is an active real server in NODE's table.
in_table() { ip netns exec $1 /xdpvip lvs --control-socket /run/$1.sock | grep -F -- "-> $2 " | grep -vq DOWN; }
not_in_table() { ! in_table "$@"; }
udp_in() { ip netns exec $1 awk '/^Udp: [0-9]/ {print $2}' /proc/net/snmp; }
lvs_line() { ip netns exec $1 /xdpvip lvs --stats --control-socket /run/$1.sock | grep -F -- "-> $2 "; }
# counted NODE RS:PORT: NODE's dataplane counted packets for RS:PORT
# (within 5 s: kernel IPVS shows its counters at its 2 s estimator ticks).
counted() { waitfor 5000 counted_now "$@"; }
counted_now() { lvs_line $1 $2 | awk '{for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+$/ && $i > 0) ok = 1} END {exit !ok}'; }
# up NODE: NODE's daemon wrote its pid file, or it is gone.
up() { eval "p=\$proc_$1"; test -s /run/$1.pid || ! kill -0 $p; }
start_lbs() {
	for n in lb1 lb2; do
		rm -f /run/$n.pid
		ip netns exec $n /xdpvip run -f /etc/xdpvip/$n.conf --control-socket /run/$n.sock --pid-file /run/$n.pid \
			--bpf-dir /sys/fs/bpf/$n --dataplane $1 --xdp-mode generic >/tmp/$n.log 2>&1 &
		eval "proc_$n=\$!"
	done
	for n in lb1 lb2; do
		# The BPF verifier is slow under TCG: allow a minute.
		if waitfor 60000 up $n && test -s /run/$n.pid; then
			echo "$n started with --dataplane $1 (${took} ms)"
			continue
		fi
		# Nothing after this can pass: say why and stop (the missing
		# markers fail the test).
		echo "$n did not start with --dataplane $1 (${took} ms; $(pidof xdpvip | wc -w) xdpvip processes running):"
		tail -n 40 /tmp/$n.log
		exit 1
	done
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
cable br0 client eth0 $CL/24 $CL6/64
cable br0 lb1 eth0 10.0.0.1/24 2001:db8:a::1/64
cable br0 lb2 eth0 10.0.0.2/24 2001:db8:a::2/64
cable br0 router eth0 $RT/24 $RT6/64
cable br1 router eth1 10.0.2.254/24 2001:db8:b::fe/64
cable br1 rs1 eth0 $RS1/24 $RS16/64
cable br1 rs2 eth0 $RS2/24 2001:db8:b::12/64
sysctl_in router net/ipv4/ip_forward 1
sysctl_in router net/ipv6/conf/all/forwarding 1
for n in router client; do sysctl_in $n net/ipv4/conf/all/rp_filter 0; sysctl_in $n net/ipv4/conf/default/rp_filter 0; done
# The directors' routes to the real servers name their own address as the
# source: IPv6 source selection would otherwise pick the VIP (added later,
# same prefix length in common), whose health checks rs1 answers locally
# (the VIP is on its lo) and whose ip6ip6 packets it drops (a tunnel from
# one of its own addresses).
for i in 1 2; do
	ip -n lb$i route add 10.0.2.0/24 via $RT src 10.0.0.$i
	ip -n lb$i -6 route add 2001:db8:b::/64 via $RT6 src 2001:db8:a::$i
done
for n in rs1 rs2; do
	ip -n $n route add default via 10.0.2.254
	ip -n $n -6 route add default via 2001:db8:b::fe
	ip -n $n addr add $VIP/32 dev lo
	ip -n $n link set tunl0 up
	for i in all default tunl0 eth0; do sysctl_in $n net/ipv4/conf/$i/rp_filter 0; done
	start_http $n
done
ip netns exec rs2 ip fou add port $GUEPORT gue
# rs1 is also the IPv6 virtual server's real server, over ip6ip6.
ip -n rs1 addr add $VIP6/128 dev lo
ip -n rs1 link set ip6tnl0 up
nsenter --net=/run/netns/rs1 httpd -f -p "[::]:$PORT6" -h /srv/rs1 &
waitfor 5000 ip netns exec rs1 timeout 3 wget -q -O /dev/null "http://[::1]:$PORT6/cgi-bin/who" || echo "IPv6 httpd in rs1 does not answer"
RTMAC=$(mac router eth0)
LB1MAC=$(mac lb1 eth0); LB2MAC=$(mac lb2 eth0)
echo "router $RTMAC lb1 $LB1MAC lb2 $LB2MAC"

echo "== 0: hand-built tunnel packets from lb1"
sniff_start sniff0
ip netns exec lb1 /tunprobe send -mode ipip -to $RS1 -src $CL -dst $VIP -sport 40001
ip netns exec lb1 /tunprobe send -mode gue -port $GUEPORT -to $RS2 -src $CL -dst $VIP -sport 40002
ip netns exec lb1 /tunprobe send -mode ip6ip6 -to $RS16 -src $CL6 -dst $VIP6 -dport $PORT6 -sport 40003
waitfor 3000 grep -q "dst=$CL:40002 mac=$RTMAC flags=SA" /tmp/sniff0
waitfor 3000 grep -q "dst=\[$CL6\]:40003 mac=$RTMAC flags=SA" /tmp/sniff0
sniff_stop
cat /tmp/sniff0
check 0-ipip-decap "rs1 answered an IP-in-IP SYN with a SYN-ACK from $VIP through the router" grep -q "dst=$CL:40001 mac=$RTMAC flags=SA" /tmp/sniff0
check 0-gue-decap "rs2 answered a GUE SYN with a SYN-ACK from $VIP through the router" grep -q "dst=$CL:40002 mac=$RTMAC flags=SA" /tmp/sniff0
check 0-ip6ip6-decap "rs1 answered an IPv6-in-IPv6 SYN with a SYN-ACK from $VIP6 through the router" grep -q "dst=\[$CL6\]:40003 mac=$RTMAC flags=SA" /tmp/sniff0

mount -t bpf bpf /sys/fs/bpf
DP=xdp
start_lbs $DP
echo "== 1: election ($DP)"
waitfor 30000 state lb1 V4 MASTER
waitfor 10000 state lb1 V6 MASTER
# The XDP dataplane's words for a real server it does not forward (today's,
# and those of the DR-only program before TUN).
skipped='not forwardable in XDP, skipping|only DR real servers'
if grep -qE "$skipped" /tmp/lb1.log; then
	echo "XDPVIP-TUN-VM: NO-XDP-TUN: $(grep -m1 -E "$skipped" /tmp/lb1.log)"
	stop_lbs
	DP=ipvs
	# Kernel IPVS picks the ip6ip6 outer source with ipv6_dev_get_saddr,
	# not the route's src: the VIP (seen at the router), which rs1's
	# ip6tnl0 refuses as a tunnel from one of its own addresses. A tunnel
	# bound to rs1's address that allows it takes those packets.
	ip -n rs1 -6 tunnel add ipvs6 mode ip6ip6 local $RS16 allow-localremote
	ip -n rs1 link set ipvs6 up
	start_lbs $DP
	echo "== 1: election again ($DP)"
	waitfor 30000 state lb1 V4 MASTER
	waitfor 10000 state lb1 V6 MASTER
fi
if both lb1 MASTER && ST lb1 | grep -q "\"dataplane\": *\"$DP\""; then
	pass 1-lb1-master "lb1 MASTER of both instances; dataplane $DP"
else
	fail 1-lb1-master "lb1 not MASTER of both instances with dataplane $DP"
fi
waitfor 5000 state lb2 V6 BACKUP
check 1-lb2-backup "lb2 BACKUP of both" both lb2 BACKUP

echo "== 2: TUN through lb1 ($DP)"
# The health checks bring both real servers in.
waitfor 15000 in_table lb1 $RS1:80; waitfor 15000 in_table lb1 $RS2:80
ip netns exec lb1 /xdpvip lvs --control-socket /run/lb1.sock
u0=$(udp_in rs2)
sniff_start sniff2
tun_sniff_start tun2
spread 12 30
sniff_stop
tun_sniff_stop
u1=$(udp_in rs2)
echo "tunnelled packets at the router:"; sort /tmp/tun2 | sed 's/ len=[0-9]*//' | uniq -c
kind2=ipip; [ "$GUE" = 1 ] && kind2=gue
t1=$(grep -c "^tun kind=ipip src=10.0.0.1 dst=$RS1 mac=$LB1MAC " /tmp/tun2)
t2=$(grep -c "^tun kind=$kind2 src=10.0.0.1 dst=$RS2 mac=$LB1MAC " /tmp/tun2)
tall=$(grep -c "^tun " /tmp/tun2)
check 2-encapsulated "at the router, from lb1 (10.0.0.1, $LB1MAC): $t1 ipip packets to rs1, $t2 $kind2 to rs2, of $tall tunnelled" [ $t1 -gt 0 -a $t2 -gt 0 -a $((t1+t2)) = $tall ]
check 2-both-real-servers "$i requests: rs1 $n_rs1, rs2 $n_rs2, other $n_bad$bodies" [ $n_rs1 -gt 0 -a $n_rs2 -gt 0 -a $n_bad = 0 ]
check 2-client-address-kept "answers whose real server saw another peer than the client $CL: $n_foreign" [ $n_foreign = 0 -a $((n_rs1+n_rs2)) -gt 0 ]
segs=$(grep -c "^seg " /tmp/sniff2); indirect=$(grep "^seg " /tmp/sniff2 | grep -vc "mac=$RTMAC")
check 2-replies-direct "$segs reply segments from $VIP:80 at the client, $indirect not from the router's MAC $RTMAC" [ $segs -gt 0 -a "$indirect" = 0 ]
[ "$indirect" = 0 ] || grep "^seg " /tmp/sniff2 | grep -v "mac=$RTMAC"
if [ "$GUE" = 1 ]; then
	check 2-gue-to-rs2 "rs2 received $((u1-u0)) UDP datagrams (GUE) for $n_rs2 connections" [ $((u1-u0)) -ge $n_rs2 -a $n_rs2 -gt 0 ]
else
	echo "rs2 received $((u1-u0)) UDP datagrams (GUE not configured: IP-in-IP)"
fi
ip netns exec lb1 /xdpvip lvs --stats --control-socket /run/lb1.sock
if counted lb1 $RS1:80 && counted lb1 $RS2:80; then
	pass 2-dataplane-counted "lb1's $DP dataplane counted packets for rs1 and rs2"
else
	fail 2-dataplane-counted "lb1's $DP dataplane did not count packets for both real servers"
fi
waitfor 15000 in_table lb1 "[$RS16]:$PORT6"
sniff_start sniff6
tun_sniff_start tun6
requests 4 6
sniff_stop
tun_sniff_stop
echo "tunnelled packets at the router:"; sort /tmp/tun6 | sed 's/ len=[0-9]*//' | uniq -c
# The outer source is lb1's own address (its route's src) — except on
# kernel IPVS, which takes the VIP (see above).
src6=2001:db8:a::1; [ $DP = ipvs ] && src6=$VIP6
t6=$(grep -c "^tun kind=ip6ip6 src=$src6 dst=$RS16 mac=$LB1MAC " /tmp/tun6)
# (IPv6 outer headers only: the IPv4 connections' last segments may still
# be on their way.)
tall=$(grep -cE "^tun kind=[^ ]+ src=[^ ]*:" /tmp/tun6)
check 2-ipv6-encapsulated "at the router, from lb1 ($src6, $LB1MAC): $t6 ip6ip6 packets to rs1, of $tall tunnelled" [ $t6 -gt 0 -a $t6 = $tall ]
check 2-ipv6-tun "4 requests to [$VIP6]:$PORT6: rs1 $n_rs1 (seeing the client $CL6: $((n_rs1-n_foreign))), other $n_bad$bodies" [ $n_rs1 = 4 -a $n_foreign = 0 ]
segs=$(grep -c "^seg " /tmp/sniff6); indirect=$(grep "^seg " /tmp/sniff6 | grep -vc "mac=$RTMAC")
check 2-ipv6-replies-direct "$segs reply segments from [$VIP6]:$PORT6 at the client, $indirect not from the router's MAC" [ $segs -gt 0 -a "$indirect" = 0 ]
if counted lb1 "[$RS16]:$PORT6"; then
	pass 2-ipv6-dataplane-counted "lb1's $DP dataplane counted packets for [$RS16]:$PORT6"
else
	fail 2-ipv6-dataplane-counted "lb1's $DP dataplane counted no packets for [$RS16]:$PORT6"
fi

echo "== 3: lb1 leaves"
kill $(cat /run/lb1.pid)
if waitfor 20000 both lb2 MASTER; then
	pass 3-lb2-takes-over "lb2 MASTER of both ${took} ms after lb1's SIGTERM"
else
	fail 3-lb2-takes-over "lb2 not MASTER of both 20 s after lb1's SIGTERM"
fi
ip -n client neigh flush dev eth0
waitfor 10000 get
spread 6 30
check 3-tun-through-lb2 "$i requests through lb2: rs1 $n_rs1, rs2 $n_rs2, other $n_bad$bodies" [ $n_rs1 -gt 0 -a $n_rs2 -gt 0 -a $n_bad = 0 ]
requests 3 6
check 3-ipv6-through-lb2 "3 requests to [$VIP6]:$PORT6 through lb2: rs1 $n_rs1, other $n_bad$bodies" [ $n_rs1 = 3 -a $n_foreign = 0 ]

echo "== 4: rs2's health check fails"
stop_http rs2
if waitfor 15000 not_in_table lb2 $RS2:80; then
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
