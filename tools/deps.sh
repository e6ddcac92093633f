#!/usr/bin/env bash
# Installs the Debian packages that the tests and the demo use, if missing.
set -euo pipefail
pkgs=(iproute2 util-linux xz-utils iputils-ping ethtool keepalived nginx-light tshark netsniff-ng hping3 curl arping bpftool ipvsadm nftables qemu-system-x86 busybox-static cpio clang llvm libbpf-dev linux-libc-dev lintian systemd man-db prometheus bird2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
