#!/usr/bin/env bash
# Builds the Debian package bin/xdpvip_VERSION_amd64.deb with nfpm (a go.mod
# tool): the binary, the systemd unit, /etc/default/xdpvip, the man page and
# bash completion generated from the binary's own --help, and the examples.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
base=$(sed -n 's/^[[:space:]]*Version = "\(.*\)"/\1/p' internal/version/version.go)
# Debian ordering: 0.1.0~dev+gabc123 sorts before 0.1.0.
export XDPVIP_VERSION="${base/-/\~}+g${commit}"
build=bin/pkg
rm -rf "$build"; mkdir -p "$build"
mkdir -p bin
go build -trimpath -buildmode=pie -ldflags "-s -w -linkmode=external -extldflags=-Wl,-z,relro,-z,now -X github.com/xdpvip/xdpvip/internal/version.Commit=${commit} -X github.com/xdpvip/xdpvip/internal/version.Version=${XDPVIP_VERSION}" -o bin/xdpvip ./cmd/xdpvip
date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
go run ./tools/manpage -bin bin/xdpvip -man "$build/xdpvip.8" -completion "$build/xdpvip.bash" -version "$XDPVIP_VERSION" -date "$date"
gzip -9n "$build/xdpvip.8"
gzip -9nc README.md >"$build/README.md.gz"
{
  echo "xdpvip ($XDPVIP_VERSION) unstable; urgency=medium"
  echo
  echo "  * Built from commit $commit."
  echo
  echo " -- xdpvip developers <xdpvip@users.noreply.github.com>  $(date -u -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
} >"$build/changelog"
gzip -9n "$build/changelog"
go tool nfpm package -f tools/package/nfpm.yaml -p deb -t bin/
ls bin/*.deb
