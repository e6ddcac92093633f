package tests

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
	"github.com/xdpvip/xdpvip/pkg/config"
)

// TestIPVSDaemonInVM boots Debian's stock kernel (it has IPVS; this host's
// does not) and runs xdpvip itself there with --dataplane ipvs and the
// seed's configuration, in one boot:
//
//  1. ipvsadm -Ln shows exactly the seed's service, and `xdpvip lvs` the same;
//  2. a client's HTTP request through the VIP is answered by a real server
//     directly (the director counts packets in, none out);
//  3. a stopped real server leaves the table (then, with
//     inhibit_on_failure, is weighted 0) within the check bound, and comes
//     back when it listens again;
//  4. a reload that changes one weight changes only that entry, and
//     re-creates nothing; a reload that adds a TUN virtual server with every
//     tunnel keepalived knows (lb_kind/lvs_method TUN type ipip|gue|gre,
//     port, nocsum|csum|remcsum; an IPv6 real server behind the IPv4 VIP)
//     puts exactly those tunnels in the kernel (ipvsadm -Ln --tun-info),
//     and `xdpvip lvs --tun-info` prints the same lines;
//  5. SIGTERM removes the daemon's services, as keepalived does without
//     --dont-release-ipvs;
//
// and a service made by hand before the daemon started survives all of it.
// The guest prints one PASS or FAIL marker per check; it skips only when
// qemu cannot start.
func TestIPVSDaemonInVM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: apt-get download into the kernel cache and the guest's test setup")
	}
	confs := readGuestSeedConfigs(t)
	bin := buildStaticXdpvip(t)
	files := []ipvsvm.File{
		{Src: bin, Dst: "/xdpvip", Mode: 0o755},
		{Data: []byte(ipvsDaemonScript), Dst: "/daemon-vm.sh", Mode: 0o755},
		{Data: []byte(ipvsvm.SeedListing + "\n"), Dst: "/etc/xdpvip/expected-ipvsadm.txt"},
		{Data: []byte(guestTunListing), Dst: "/etc/xdpvip/expected-tun-info.txt"},
	}
	for name, c := range confs {
		files = append(files, ipvsvm.File{Data: []byte(c), Dst: "/etc/xdpvip/" + name + ".conf"})
	}

	start := time.Now()
	res := bootGuest(t, 3*time.Minute, ipvsvm.Options{
		Files:   files,
		Command: "/bin/sh /daemon-vm.sh",
		Timeout: 150 * time.Second,
	})
	checkGuestMarkers(t, res, ipvsDaemonChecks)
	t.Logf("harness total %v", time.Since(start).Round(time.Millisecond))
}

// ipvsDaemonChecks are the markers the guest script must print, in order.
var ipvsDaemonChecks = []string{
	"1-ipvsadm-seed-listing",
	"1-xdpvip-lvs-listing",
	"1-foreign-kept-after-start",
	"2-http-through-dr",
	"2-persistence",
	"2-dr-counters",
	"2-xdpvip-lvs-stats",
	"3-removed-when-down",
	"3-xdpvip-lvs-down",
	"3-back-when-up",
	"3-inhibit-reload-changes-nothing",
	"3-inhibited-when-down",
	"3-xdpvip-lvs-inhibited",
	"3-inhibit-back-when-up",
	"4-reload-changes-only-rs2",
	"4-reload-recreates-nothing",
	"4-foreign-kept-after-reload",
	"4-tun-reload",
	"4-tun-info-kernel",
	"4-tun-info-xdpvip",
	"5-sigterm-exits",
	"5-sigterm-removes-owned",
	"5-sigterm-removes-tun",
	"5-sigterm-removes-vip",
	"5-foreign-kept-after-stop",
}

// guestTunVS is the virtual server the "tun" configuration adds to
// "weight3": TUN real servers with each tunnel, inherited from lb_kind or
// their own (no checkers: they stay up), and guestTunListing what
// `ipvsadm -Ln --tun-info` (ipvsadm 1.31) lists for it.
const guestTunVS = `
virtual_server 192.168.12.212 53 {
    lb_algo rr
    lb_kind TUN type gue port 6080
    protocol UDP
    real_server 10.2.0.1 53 {
    }
    real_server 10.2.0.2 53 {
        lvs_method TUN type gue port 6081 csum
    }
    real_server 10.2.0.3 53 {
        lvs_method TUN port 6082 remcsum type gue
    }
    real_server 10.2.0.4 53 {
        lvs_method TUN type gre csum
    }
    real_server 10.2.0.5 53 {
        lvs_method TUN
    }
    real_server 2001:db8::6 53 {
        lvs_method TUN type gre
    }
}
`

const guestTunListing = `UDP  192.168.12.212:53 rr
  -> 10.2.0.1:53                  Tunnel  gue:6080:-c   1      0          0
  -> 10.2.0.2:53                  Tunnel  gue:6081:+c   1      0          0
  -> 10.2.0.3:53                  Tunnel  gue:6082:r+c  1      0          0
  -> 10.2.0.4:53                  Tunnel  gre:+c        1      0          0
  -> 10.2.0.5:53                  Tunnel  ipip          1      0          0
  -> [2001:db8::6]:53             Tunnel  gre:-c        1      0          0
`

// guestSeedConfigs adapts the seed's configuration for the guest: the
// addresses and interface stay (the guest's namespaces use them), the
// checks get connect_timeout 1, retry 1 and delay_before_retry 1 (with the
// seed's delay_loop 1) so that a failure is seen within 3 s. It returns
// "seed", "inhibit" (rs1 with inhibit_on_failure), "weight3" (that, and
// rs2 with weight 3) and "tun" (that, and guestTunVS).
func guestSeedConfigs(seed string) (map[string]string, error) {
	edits := []struct{ old, new string }{
		{"connect_timeout 3", "connect_timeout 1"},
		{"nb_get_retry 3", "retry 1"},
		{"delay_before_retry 3", "delay_before_retry 1"},
	}
	base := seed
	if !strings.Contains(base, "delay_loop 1 ") {
		return nil, errors.New("seed: no delay_loop 1")
	}
	for _, e := range edits {
		if n := strings.Count(base, e.old); n != 2 {
			return nil, fmt.Errorf("seed: %q appears %d times; want once per real server", e.old, n)
		}
		base = strings.ReplaceAll(base, e.old, e.new)
	}
	const rs1, rs2 = "real_server 192.168.28.103 80 {", "real_server 192.168.28.104 80 {"
	if strings.Count(base, rs1) != 1 || strings.Count(base, rs2) != 1 {
		return nil, errors.New("seed: real servers 192.168.28.103 and .104 not found once each")
	}
	inhibit := strings.Replace(base, rs1, rs1+"\n        inhibit_on_failure", 1)
	i := strings.Index(inhibit, rs2)
	j := strings.Index(inhibit[i:], "weight 1")
	if j < 0 {
		return nil, errors.New("seed: rs2 has no weight 1")
	}
	weight3 := inhibit[:i+j] + "weight 3" + inhibit[i+j+len("weight 1"):]
	return map[string]string{"seed": base, "inhibit": inhibit, "weight3": weight3, "tun": weight3 + guestTunVS}, nil
}

// readGuestSeedConfigs is guestSeedConfigs of examples/seed-master.conf.
func readGuestSeedConfigs(t *testing.T) map[string]string {
	t.Helper()
	seed, err := os.ReadFile("../examples/seed-master.conf")
	if err != nil {
		t.Fatal(err)
	}
	confs, err := guestSeedConfigs(string(seed))
	if err != nil {
		t.Fatal(err)
	}
	return confs
}

// TestGuestSeedConfigs checks, without qemu, that the guest's three
// configurations are the seed's with only the intended changes.
func TestGuestSeedConfigs(t *testing.T) {
	confs := readGuestSeedConfigs(t)
	type rsWant struct {
		addr    string
		weight  int
		inhibit bool
	}
	tests := []struct {
		name string
		want []rsWant
	}{
		{"seed", []rsWant{{"192.168.28.103", 1, false}, {"192.168.28.104", 1, false}}},
		{"inhibit", []rsWant{{"192.168.28.103", 1, true}, {"192.168.28.104", 1, false}}},
		{"weight3", []rsWant{{"192.168.28.103", 1, true}, {"192.168.28.104", 3, false}}},
	}
	t.Run("tun", func(t *testing.T) {
		cfg, diags, err := config.Parse("tun.conf", []byte(confs["tun"]))
		_, seedDiags, _ := config.Parse("weight3.conf", []byte(confs["weight3"]))
		if err != nil || len(diags) != len(seedDiags) || len(cfg.VirtualServers) != 2 {
			t.Fatalf("want weight3's diagnostics only and two virtual servers: %v %v", err, diags)
		}
		if confs["tun"] != confs["weight3"]+guestTunVS {
			t.Error("tun is not weight3 plus the TUN virtual server")
		}
		var got []string
		for _, rs := range cfg.VirtualServers[1].RealServers {
			got = append(got, config.Forwarding(rs.Method, rs.Tunnel))
		}
		want := []string{"TUN type gue port 6080 nocsum", "TUN type gue port 6081 csum", "TUN type gue port 6082 remcsum",
			"TUN type gre csum", "TUN type ipip", "TUN type gre nocsum"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("real servers' tunnels %q, want %q", got, want)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := config.Parse(tt.name+".conf", []byte(confs[tt.name]))
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Instances) != 1 || cfg.Instances[0].Interface != "eth0" || len(cfg.VirtualServers) != 1 {
				t.Fatalf("want the seed's one instance on eth0 and one virtual server; got %d, %d", len(cfg.Instances), len(cfg.VirtualServers))
			}
			vs := cfg.VirtualServers[0]
			if vs.DelayLoop != time.Second || vs.Scheduler != "wrr" || vs.Method != config.MethodDR || vs.PersistenceTimeout != 50*time.Second {
				t.Errorf("virtual server %+v; want the seed's wrr DR persistent 50, delay_loop 1", vs)
			}
			if len(vs.RealServers) != len(tt.want) {
				t.Fatalf("%d real servers; want %d", len(vs.RealServers), len(tt.want))
			}
			for i, w := range tt.want {
				rs := vs.RealServers[i]
				if rs.Addr.String() != w.addr || rs.Weight != w.weight || rs.InhibitOnFailure != w.inhibit {
					t.Errorf("real server %d: %s weight %d inhibit %v; want %+v", i, rs.Addr, rs.Weight, rs.InhibitOnFailure, w)
				}
				if len(rs.Checkers) != 1 {
					t.Fatalf("real server %s: %d checkers; want its TCP_CHECK", rs.Addr, len(rs.Checkers))
				}
				c := rs.Checkers[0]
				if c.ConnectTimeout != time.Second || c.Retry != 1 || c.DelayBeforeRetry != time.Second || c.ConnectPort != 80 {
					t.Errorf("real server %s: check timeout %v retry %d delay_before_retry %v port %d; want 1s, 1, 1s, 80",
						rs.Addr, c.ConnectTimeout, c.Retry, c.DelayBeforeRetry, c.ConnectPort)
				}
			}
		})
	}
}

func TestParseGuestChecks(t *testing.T) {
	tests := []struct {
		name    string
		console string
		want    map[string]guestCheck
	}{
		{"empty", "", map[string]guestCheck{}},
		{"pass and fail", "noise\nXDPVIP-DAEMON-VM: PASS a-b: took 20 ms\nXDPVIP-DAEMON-VM: FAIL c: \n",
			map[string]guestCheck{"a-b": {"PASS", "took 20 ms"}, "c": {"FAIL", ""}}},
		{"a fail is kept", "XDPVIP-DAEMON-VM: FAIL x: first\nXDPVIP-DAEMON-VM: PASS x: second\n",
			map[string]guestCheck{"x": {"FAIL", "first"}}},
		{"not at line start", "  XDPVIP-DAEMON-VM: PASS y: z\nXDPVIP-DAEMON-VM: MAYBE w: v\n", map[string]guestCheck{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseGuestChecks(tt.console)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
			for k, w := range tt.want {
				if got[k] != w {
					t.Errorf("%s: got %+v; want %+v", k, got[k], w)
				}
			}
		})
	}
}

// ipvsDaemonScript runs in the guest's root namespace. It builds a bridge
// with four namespaces: lvs (the director: xdpvip, the VIP by VRRP on
// eth0), rs1 and rs2 (the VIP on lo with arp_ignore=1/arp_announce=2,
// busybox httpd with a CGI that names the server and the client address
// it sees) and client. Times come from /proc/uptime (10 ms resolution).
const ipvsDaemonScript = "set -u\n" + guestShellLib + `VIP=192.168.12.211
RS1=192.168.28.103
RS2=192.168.28.104
CL=192.168.28.50
CONF=/etc/xdpvip/keepalived.conf
SOCK=/run/xdpvip.sock
# Check bound: delay_loop*(retry+1) + connect_timeout = 1*2+1 s, plus margin.
BOUND_MS=3000
LIMIT_MS=5000
IPVS() { ip netns exec lvs /usr/sbin/ipvsadm "$@"; }
XL() { c=$1; shift; ip netns exec lvs /xdpvip $c --control-socket $SOCK "$@"; }
listing() { IPVS -Ln "$@" | sed 's/ *$//'; }
# block KEY LISTING-CMD...: the lines of service KEY (addr:port) in a listing
block() { k=$1; shift; "$@" | sed 's/ *$//' | awk -v k="$k" '$1 ~ /^(TCP|UDP|SCTP|FWM)$/ {p = ($2 == k)} p'; }
# norm: a listing without the connection columns, which age on their own
norm() { listing | awk '$1 == "->" {print substr($0, 1, 48); next} {print}'; }
has_service() { listing | grep -q "^TCP  $VIP:80 "; }
rs_gone() { ! block $VIP:80 listing | grep -q -- "-> $1:80 "; }
rs_weight() { block $VIP:80 listing | grep -qE -- "-> $1:80 +Route +$2 "; }
vip_on_lvs() { ip -n lvs -4 addr show dev eth0 | grep -q " $VIP/32 "; }
reloaded() { XL status --json | grep -qE "\"reloads\": *$1,"; }
dead() { ! kill -0 $dpid 2>/dev/null; }
# within NAME WHAT CMD...: check NAME passes if CMD succeeds within 10 s and
# LIMIT_MS; WHAT says what CMD waits for.
within() {
	n=$1; d=$2; shift 2
	if waitfor 10000 "$@"; then
		check $n "$d ${took} ms later (limit ${LIMIT_MS} ms)" [ $took -le $LIMIT_MS ]
	else
		fail $n "$d: not after ${took} ms"
	fi
}
# rs1_stop_start DOWN WHAT COND LVS PATTERN UP: stop rs1's server; check
# DOWN: COND (eval'd; WHAT says it) holds within the check bound; check LVS:
# xdpvip lvs lists rs1 as "Route PATTERN"; start the server; check UP: rs1
# is back with weight 1 within the bound.
rs1_stop_start() {
	stop_http rs1
	within $1 "rs1 $2 after its server stopped (bound ${BOUND_MS} ms + margin)" eval "$3"
	listing
	XL lvs | tee /tmp/xl-$4
	check $4 "xdpvip lvs lists rs1 as Route $5" grep -qE -- "-> $RS1:80 +Route +$5" /tmp/xl-$4
	start_http rs1
	within $6 "rs1 weight 1 after its server started" rs_weight $RS1 1
}

echo "== network"
bridge lvs:192.168.28.101 rs1:$RS1 rs2:$RS2 client:$CL
ip -n client route add $VIP/32 dev eth0
for ns in rs1 rs2; do
	dr_real_server $ns
	start_http $ns
done
IPVS -A -t 10.9.9.9:81 -s rr
foreign=$(block 10.9.9.9:81 listing)
echo "hand-made service: $foreign"

echo "== 1: xdpvip --dataplane ipvs with the seed's configuration"
cp /etc/xdpvip/seed.conf $CONF
ip netns exec lvs /xdpvip run -f $CONF --control-socket $SOCK --pid-file /run/xdpvip.pid \
	--bpf-dir /run/xdpvip-bpf --dataplane ipvs --log-level debug >/tmp/xdpvip.log 2>&1 &
# ip netns exec forks and waits: signal the daemon by its pid file,
# wait for ip (whose status is the daemon's).
ipx=$!
waitfor 10000 test -s /run/xdpvip.pid
dpid=$(cat /run/xdpvip.pid)
waitfor 20000 has_service
echo "service in the kernel ${took} ms after start"
{ listing | head -n 3; block $VIP:80 listing; } >/tmp/got
check 1-ipvsadm-seed-listing "ipvsadm -Ln shows the seed's service" diff /etc/xdpvip/expected-ipvsadm.txt /tmp/got
{ echo "xdpvip Virtual Server (dataplane ipvs)"; tail -n +2 /etc/xdpvip/expected-ipvsadm.txt; } >/tmp/want-xl
XL lvs | sed 's/ *$//' >/tmp/got-xl
check 1-xdpvip-lvs-listing "xdpvip lvs lists what ipvsadm does" diff /tmp/want-xl /tmp/got-xl
check 1-foreign-kept-after-start "$foreign" [ "$(block 10.9.9.9:81 listing)" = "$foreign" ]
listing

echo "== 2: HTTP through IPVS DR"
waitfor 15000 vip_on_lvs && echo "VIP on the director ${took} ms after the service" || echo "VIP not on the director"
if waitfor 20000 get; then
	case "$body" in
	rs[12]" remote=$CL") pass 2-http-through-dr "answered by '$body' ${took} ms after the VIP" ;;
	*) fail 2-http-through-dr "real server saw '$body'; want rs1 or rs2 with remote=$CL" ;;
	esac
else
	fail 2-http-through-dr "no answer through $VIP in ${took} ms"
	echo "--- diagnostics"
	ip -n client neigh; ip -n client route; ip -n lvs addr show dev eth0; ip -n lvs neigh; ip -s -n lvs link show eth0
	IPVS -Lnc
	ip netns exec client timeout 3 wget -O - http://$VIP/cgi-bin/who
	ip netns exec client timeout 3 wget -O - http://$RS1/cgi-bin/who
	ip netns exec lvs timeout 3 wget -O - http://$RS1/cgi-bin/who
fi
first=$body
same=0
for i in 1 2 3 4; do get && [ "$body" = "$first" ] && same=$((same+1)); done
check 2-persistence "4 more requests answered by the same server: $same" [ $same = 4 ]
stats_agree() {
	block $VIP:80 listing --stats >/tmp/st-ipvsadm
	block $VIP:80 XL lvs --stats >/tmp/st-xl
	set -- $(head -n 1 /tmp/st-ipvsadm)
	conns=${3:-0} inpkts=${4:-0} outpkts=${5:-0}
	[ "$conns" -ge 5 ] && cmp -s /tmp/st-ipvsadm /tmp/st-xl
}
waitfor 10000 stats_agree
cat /tmp/st-ipvsadm
check 2-dr-counters "conns $conns, packets in $inpkts, out $outpkts" [ "$conns" -ge 5 -a "$inpkts" -gt 0 -a "$outpkts" = 0 ]
check 2-xdpvip-lvs-stats "xdpvip lvs --stats equals ipvsadm -Ln --stats" eval '[ -s /tmp/st-ipvsadm ] && cmp /tmp/st-ipvsadm /tmp/st-xl'
[ -s /tmp/st-xl ] || XL lvs --stats

echo "== 3: a real server that stops listening"
rs_weight $RS1 1 && rs1_before=yes || rs1_before=no
rs1_stop_start 3-removed-when-down "removed (listed before: $rs1_before)" '[ $rs1_before = yes ] && rs_gone $RS1' 3-xdpvip-lvs-down '- .*DOWN' 3-back-when-up
before=$(norm)
cp /etc/xdpvip/inhibit.conf $CONF
kill -HUP $dpid
waitfor 10000 reloaded 1 && r1=yes || r1=no
check 3-inhibit-reload-changes-nothing "reloaded: $r1; adding inhibit_on_failure changed nothing in the kernel" [ $r1 = yes -a "$(norm)" = "$before" ]
rs1_stop_start 3-inhibited-when-down 'weighted 0' 'rs_weight $RS1 0' 3-xdpvip-lvs-inhibited '0 .*DOWN inhibited' 3-inhibit-back-when-up

echo "== 4: reload with rs2 weight 3"
before=$(norm)
stats_before=$(block $VIP:80 listing --stats)
cp /etc/xdpvip/weight3.conf $CONF
kill -HUP $dpid
waitfor 10000 reloaded 2 && r2=yes || r2=no
waitfor 5000 rs_weight $RS2 3
after=$(norm)
want=$(echo "$before" | sed "/-> $RS2:80 /s/Route   1 /Route   3 /")
check 4-reload-changes-only-rs2 "reloaded: $r2; only rs2's weight differs" [ $r2 = yes -a "$after" = "$want" -a "$after" != "$before" ]
[ "$after" = "$want" ] || { echo "before:"; echo "$before"; echo "after:"; echo "$after"; }
stats_after=$(block $VIP:80 listing --stats)
check 4-reload-recreates-nothing "service and real-server counters kept" [ "$stats_after" = "$stats_before" ]
[ "$stats_after" = "$stats_before" ] || { echo "$stats_before"; echo "$stats_after"; }
check 4-foreign-kept-after-reload "$foreign" [ "$(block 10.9.9.9:81 listing)" = "$foreign" ]
listing
TUNVS=192.168.12.212:53
has_tun() { listing | grep -q "^UDP  $TUNVS "; }
cp /etc/xdpvip/tun.conf $CONF
kill -HUP $dpid
waitfor 10000 reloaded 3 && r3=yes || r3=no
waitfor 5000 has_tun && tun=yes || tun=no
check 4-tun-reload "reloaded: $r3; the TUN virtual server is in the kernel: $tun" [ $r3 = yes -a $tun = yes ]
block $TUNVS listing --tun-info >/tmp/tun-ipvsadm
block $TUNVS XL lvs --tun-info >/tmp/tun-xl
cat /tmp/tun-ipvsadm
check 4-tun-info-kernel "ipvsadm -Ln --tun-info lists every tunnel as configured" diff /etc/xdpvip/expected-tun-info.txt /tmp/tun-ipvsadm
check 4-tun-info-xdpvip "xdpvip lvs --tun-info equals ipvsadm -Ln --tun-info" diff /tmp/tun-ipvsadm /tmp/tun-xl

echo "== 5: SIGTERM"
has_service && owned=yes || owned=no
vip_on_lvs && vip_before=yes || vip_before=no
kill -TERM $dpid
if waitfor 10000 dead; then
	wait $ipx
	rc=$?
	check 5-sigterm-exits "xdpvip exited with $rc ${took} ms after SIGTERM" [ $rc = 0 ]
else
	fail 5-sigterm-exits "xdpvip still running ${took} ms after SIGTERM"
fi
listing
check 5-sigterm-removes-owned "the daemon's service (there before: $owned) is gone" eval '[ $owned = yes ] && ! has_service'
check 5-sigterm-removes-tun "the daemon's TUN service (there before: $tun) is gone" eval '[ $tun = yes ] && ! has_tun'
check 5-sigterm-removes-vip "the VIP (there before: $vip_before) left the director's eth0" eval '[ $vip_before = yes ] && ! vip_on_lvs'
check 5-foreign-kept-after-stop "$foreign" [ "$(block 10.9.9.9:81 listing)" = "$foreign" ]

echo "== xdpvip log (tail)"
tail -n 60 /tmp/xdpvip.log
for ns in rs1 rs2; do stop_http $ns; done
echo "$fails check(s) failed"
[ $fails -gt 100 ] && fails=100
exit $fails
`
