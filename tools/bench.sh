#!/usr/bin/env bash
# make bench: the VRRP failover benchmark (xdpvip vs keepalived, same
# topology, same run; needs root and keepalived) and the Go benchmarks of
# ./pkg/..., then a summary of both.
#
# Knobs (environment):
#   FAILOVER_RUNS=5                 runs per scenario and daemon (issue 3 asks for >= 5)
#   FAILOVER_SCENARIOS=all          crash-v2,graceful-v2,crash-v3,graceful-v3
#   FAILOVER_DAEMONS=xdpvip,keepalived   add xdpvip-none for --dataplane none
#   BENCHTIME=500ms                 -benchtime of the Go benchmarks
#   BENCH_PKGS=./pkg/...            packages whose Benchmark* functions run
#   BENCH_OUT=DIR                   keep the raw outputs there (default: a temp dir, removed)
#   SKIP_FAILOVER=1 / SKIP_GO=1 / SKIP_XDP=1 / SKIP_HC=1   skip a part
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${FAILOVER_RUNS:-5}
scenarios=${FAILOVER_SCENARIOS:-all}
daemons=${FAILOVER_DAEMONS:-xdpvip,keepalived}
benchtime=${BENCHTIME:-500ms}
pkgs=${BENCH_PKGS:-./pkg/...}

if [ -n "${BENCH_OUT:-}" ]; then
  out=$BENCH_OUT
  mkdir -p "$out"
else
  out=$(mktemp -d /tmp/xdpvip-bench-XXXXXX)
  trap 'rm -rf "$out"' EXIT
fi

status=0

# xdpvip itself: `make bench` builds it first; build it here too when the
# script runs on its own.
go build -o bin/xdpvip ./cmd/xdpvip

if [ "${SKIP_FAILOVER:-}" != 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench: the failover benchmark needs root (network namespaces); skipping it" >&2
    echo "skipped: needs root" >"$out/failover.txt"
  else
    go build -o "$out/failoverbench" ./tools/failoverbench
    echo "== failover: $runs runs x ($scenarios) x ($daemons)"
    if ! "$out/failoverbench" --xdpvip bin/xdpvip --runs "$runs" --scenarios "$scenarios" \
        --daemons "$daemons" --json "$out/failover.json" | tee "$out/failover.txt"; then
      echo "bench: failover benchmark failed" >&2
      status=1
    fi
  fi
fi

if [ "${SKIP_GO:-}" != 1 ]; then
  echo "== Go benchmarks: $pkgs (-benchtime $benchtime)"
  # -run '^$': benchmarks only, no tests.
  if ! go test -run '^$' -bench . -benchmem -benchtime "$benchtime" $pkgs | tee "$out/go.txt"; then
    echo "bench: Go benchmarks failed" >&2
    status=1
  fi
fi

if [ "${SKIP_XDP:-}" != 1 ]; then
  echo "== XDP packets/s against its ceilings and the kernel (tools/xdpbench.sh)"
  if ! SKIP_GO=1 BENCH_OUT="$out/xdp" ./tools/xdpbench.sh | tee "$out/xdp.txt"; then
    echo "bench: XDP benchmark failed" >&2
    status=1
  fi
fi

if [ "${SKIP_HC:-}" != 1 ] && [ "$(id -u)" = 0 ]; then
  echo "== 5000 TCP_CHECK targets at delay_loop 1 (tools/hcbench, in-process and the daemon)"
  if ! go run ./tools/hcbench -n 5000 -d 10s -daemon bin/xdpvip | tee "$out/hc.txt"; then
    echo "bench: health-check benchmark failed" >&2
    status=1
  fi
fi

echo
echo "================ summary ================"
if [ -f "$out/failover.txt" ]; then
  echo "-- failover (ms from the failure; median [min-max]; ratio of medians):"
  # The table follows the first blank line of the failover output.
  awk 'f; /^$/ && !f {f=1}' "$out/failover.txt"
fi
if [ -f "$out/xdp.txt" ]; then
  echo "-- XDP vs the MAC-swap ceiling, kernel forwarding, nft fwd and the kernel stack:"
  grep -E '^(path|kernel|nft-|xdp-|ratio|note)' "$out/xdp.txt" || true
fi
if [ -f "$out/hc.txt" ]; then
  echo "-- health checks:"
  grep -E 'monitors|daemon' "$out/hc.txt" || true
fi
if [ -f "$out/go.txt" ]; then
  echo "-- Go benchmarks:"
  grep -E '^(pkg:|Benchmark|FAIL|---)' "$out/go.txt" || true
fi
[ -n "${BENCH_OUT:-}" ] && echo "raw outputs in $out"
exit $status
