#!/usr/bin/env bash
# Installs the package that tools/package.sh built, checks it as an
# operator would, and removes it: files in place, `xdpvip version`,
# `xdpvip check-config` on the shipped example, the unit accepted by
# systemd-analyze verify, lintian without errors, an existing
# /etc/keepalived/keepalived.conf untouched, and nothing left after purge.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t bin/xdpvip_*_amd64.deb | head -1)
fail() { echo "package-test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
if dpkg-query -W -f='${Status}' xdpvip 2>/dev/null | grep -q "install ok installed"; then
  fail "xdpvip is already installed on this machine; not touching it"
fi

# keepalived's configuration must survive install and removal.
conf=/etc/keepalived/keepalived.conf
made_conf=
if [ ! -e "$conf" ]; then
  mkdir -p /etc/keepalived
  printf '! package-test sentinel\nglobal_defs {\n    router_id PKGTEST\n}\n' >"$conf"
  made_conf=1
fi
sum_before=$(sha256sum "$conf")
cleanup() {
  dpkg --purge xdpvip >/dev/null 2>&1 || true
  if [ -n "$made_conf" ]; then rm -f "$conf"; fi
}
trap cleanup EXIT

echo "package-test: lintian $deb"
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
[ -n "$lint" ] && echo "$lint"
if echo "$lint" | grep -q '^E:'; then fail "lintian reports errors"; fi

echo "package-test: dpkg -i $deb"
dpkg -i "$deb"
for f in /usr/sbin/xdpvip /lib/systemd/system/xdpvip.service /etc/default/xdpvip \
  /usr/share/man/man8/xdpvip.8.gz /usr/share/bash-completion/completions/xdpvip \
  /usr/share/doc/xdpvip/copyright /usr/share/doc/xdpvip/changelog.gz \
  /usr/share/doc/xdpvip/examples/seed-master.conf /usr/share/doc/xdpvip/examples/seed-backup.conf; do
  [ -e "$f" ] || fail "$f missing after install"
done
[ "$(sha256sum "$conf")" = "$sum_before" ] || fail "$conf changed by install"
/usr/sbin/xdpvip version
/usr/sbin/xdpvip check-config -f /usr/share/doc/xdpvip/examples/seed-master.conf >/dev/null
/usr/sbin/xdpvip check-config -f /usr/share/doc/xdpvip/examples/seed-backup.conf >/dev/null
man -l /usr/share/man/man8/xdpvip.8.gz 2>/dev/null | grep -q 'check-config' || fail "man page lacks check-config"
bash -n /usr/share/bash-completion/completions/xdpvip || fail "bash completion does not parse"
echo "package-test: systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/xdpvip.service

echo "package-test: dpkg --purge xdpvip"
dpkg --purge xdpvip
for f in /usr/sbin/xdpvip /lib/systemd/system/xdpvip.service /etc/default/xdpvip /usr/share/doc/xdpvip; do
  [ ! -e "$f" ] || fail "$f left after purge"
done
[ "$(sha256sum "$conf")" = "$sum_before" ] || fail "$conf changed by removal"
echo "package-test: ok"
