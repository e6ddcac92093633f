package tests

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/ipvsvm"
)

// bootGuest boots Debian's stock kernel under qemu with o (the
// accelerator from $XDPVIP_IPVSVM_ACCEL), logs the guest console and
// returns the result. It skips when not root (the kernel cache is filled
// with apt-get download) or when qemu cannot start a guest, and fails the
// test when the guest prints no result.
func bootGuest(t *testing.T, timeout time.Duration, o ipvsvm.Options) *ipvsvm.Result {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: apt-get download into the kernel cache and the guest's test setup")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	o.Accel = os.Getenv("XDPVIP_IPVSVM_ACCEL")
	o.Logf = t.Logf
	res, err := ipvsvm.Run(ctx, o)
	if errors.Is(err, ipvsvm.ErrQEMUUnavailable) {
		t.Skipf("qemu cannot start the guest: %v", err)
	}
	if res != nil {
		t.Logf("guest console (%s, %v):\n%s", res.Accel, res.Elapsed.Round(time.Millisecond), res.Console)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// buildGuestTest compiles a package's tests into a static binary for the
// guest and returns its path.
func buildGuestTest(t *testing.T, pkgDir, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: apt-get download into the kernel cache and the guest's test setup")
	}
	bin := t.TempDir() + "/" + name
	if err := ipvsvm.BuildStaticTest(pkgDir, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildStaticXdpvip builds a static (CGO_ENABLED=0) xdpvip for the guest
// and returns its path.
func buildStaticXdpvip(t *testing.T) string {
	t.Helper()
	return buildStaticCommand(t, "../cmd/xdpvip", "xdpvip")
}

// buildStaticCommand builds the command in pkgDir (relative to tests/)
// statically (CGO_ENABLED=0) for the guest and returns its path.
func buildStaticCommand(t *testing.T, pkgDir, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, pkgDir)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building a static %s: %v\n%s", name, err, out)
	}
	return bin
}

// checkGuestMarkers fails the test unless the guest printed a PASS marker
// for every check in want, no marker for any other check, and exited 0.
func checkGuestMarkers(t *testing.T, res *ipvsvm.Result, want []string) {
	t.Helper()
	results := parseGuestChecks(res.Console)
	for _, name := range want {
		switch r, ok := results[name]; {
		case !ok:
			t.Errorf("check %s printed no result", name)
		case r.verdict != "PASS":
			t.Errorf("check %s: %s %s", name, r.verdict, r.detail)
		default:
			t.Logf("check %s: PASS %s", name, r.detail)
		}
	}
	for name, r := range results {
		if !slices.Contains(want, name) {
			t.Errorf("unexpected check %s: %s %s", name, r.verdict, r.detail)
		}
	}
	if res.ExitCode != 0 {
		t.Errorf("guest script exit %d", res.ExitCode)
	}
}

type guestCheck struct{ verdict, detail string }

var guestCheckLine = regexp.MustCompile(`(?m)^XDPVIP-DAEMON-VM: (PASS|FAIL) (\S+): ?(.*)$`)

// parseGuestChecks reads the script's markers; a check printed twice
// keeps a FAIL.
func parseGuestChecks(console string) map[string]guestCheck {
	out := map[string]guestCheck{}
	for _, m := range guestCheckLine.FindAllStringSubmatch(console, -1) {
		if prev, ok := out[m[2]]; ok && prev.verdict == "FAIL" {
			continue
		}
		out[m[2]] = guestCheck{verdict: m[1], detail: m[3]}
	}
	return out
}

// guestShellLib is what both daemon guest scripts start with (busybox
// sh): iproute2's ip, the PASS/FAIL markers parseGuestChecks reads (check
// counts failures in $fails), waitfor, a bridge of namespaces, a DR real
// server's VIP, its httpd, and a client's request through the VIP. Times
// come from /proc/uptime (10 ms resolution).
const guestShellLib = `# iproute2's ip: busybox's applet has no netns support.
ip() { /usr/sbin/ip "$@"; }
fails=0
pass() { n=$1; shift; echo "XDPVIP-DAEMON-VM: PASS $n: $*"; }
fail() { n=$1; shift; echo "XDPVIP-DAEMON-VM: FAIL $n: $*"; fails=$((fails+1)); }
check() { n=$1; d=$2; shift 2; if "$@"; then pass $n "$d"; else fail $n "$d"; fi; }
now_ms() { awk '{printf "%d\n", $1*1000}' /proc/uptime; }
# waitfor MS CMD...: run CMD until it succeeds or MS ms passed; $took is the time taken.
waitfor() {
	lim=$1; shift; s=$(now_ms)
	while :; do
		if "$@" >/dev/null 2>&1; then took=$(( $(now_ms) - s )); return 0; fi
		took=$(( $(now_ms) - s ))
		[ $took -gt $lim ] && return 1
		sleep 0.05
	done
}
# bridge NS:ADDR...: bridge br0 and, for each NS, a namespace whose eth0
# (ADDR/24) is a veth on br0.
bridge() {
	ip link add br0 type bridge
	ip link set br0 up
	for spec in "$@"; do
		ns=${spec%%:*}; addr=${spec#*:}
		ip netns add $ns
		ip link add v$ns type veth peer name eth0 netns $ns
		ip link set v$ns master br0 up
		ip -n $ns link set lo up
		ip -n $ns addr add $addr/24 dev eth0
		ip -n $ns link set eth0 up
	done
}
# dr_real_server NS: $VIP on NS's lo, with arp_ignore=1 and arp_announce=2.
dr_real_server() {
	ip -n $1 addr add $VIP/32 dev lo
	ip netns exec $1 sh -c 'for i in all eth0; do echo 1 >/proc/sys/net/ipv4/conf/$i/arp_ignore; echo 2 >/proc/sys/net/ipv4/conf/$i/arp_announce; done'
}
# start_http NS: busybox httpd in NS with a CGI that names NS and the
# client address it sees; stop_http NS stops it.
start_http() {
	mkdir -p /srv/$1/cgi-bin
	cat >/srv/$1/cgi-bin/who <<EOF
#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "$1 remote=\$REMOTE_ADDR"
EOF
	chmod 755 /srv/$1/cgi-bin/who
	nsenter --net=/run/netns/$1 httpd -f -p 0.0.0.0:80 -h /srv/$1 &
	eval "http_$1=\$!"
	waitfor 5000 ip netns exec $1 timeout 3 wget -q -O /dev/null http://127.0.0.1/cgi-bin/who || echo "httpd in $1 does not answer"
}
stop_http() { eval "p=\$http_$1"; kill $p; wait $p 2>/dev/null; }
# busybox 1.35's wget -T crashes; bound it with timeout instead.
get() { body=$(ip netns exec client timeout 3 wget -q -O - http://$VIP/cgi-bin/who 2>/dev/null) && [ -n "$body" ]; }
`
