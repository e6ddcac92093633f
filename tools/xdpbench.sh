#!/usr/bin/env bash
# The XDP dataplane benchmark (issues 4 and 13.1): packets/s forwarded by
# the XDP DR path (XDP_TX), dropped in XDP, and, with the same VIP frames
# on the same veth in the same run, by a trivial MAC-swap XDP_TX program
# (the ceiling), the kernel's IPv4 forwarding and nftables' netdev fwd,
# plus the kernel stack to a closed port (tools/xdpbench, needs root and
# nft), then ns/packet of the program's paths from the prog.Run
# benchmarks of ./pkg/dataplane (x-baseline: over a return-XDP_PASS
# program in the same run).
#
# Knobs (environment):
#   XDPBENCH_DURATION=5s        measured time per path
#   XDPBENCH_FLOWS=64           UDP flows the generator cycles through
#   XDPBENCH_GENERATOR=live     live (in-kernel BPF_PROG_RUN live frames) or trafgen
#   XDPBENCH_MODE=native        XDP attach mode of the program under test
#   BENCHTIME=1s                -benchtime of the Go benchmarks
#   BENCH_OUT=DIR               keep the raw outputs there (default: a temp dir, removed)
#   SKIP_XDPBENCH=1 / SKIP_GO=1 run only one half
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${XDPBENCH_DURATION:-5s}
flows=${XDPBENCH_FLOWS:-64}
generator=${XDPBENCH_GENERATOR:-live}
mode=${XDPBENCH_MODE:-native}
benchtime=${BENCHTIME:-1s}

if [ -n "${BENCH_OUT:-}" ]; then
  out=$BENCH_OUT
  mkdir -p "$out"
else
  out=$(mktemp -d /tmp/xdpvip-xdpbench-XXXXXX)
  trap 'rm -rf "$out"' EXIT
fi

status=0

if [ "${SKIP_XDPBENCH:-}" != 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "xdpbench: needs root (network namespaces, XDP); skipping the packets/s half" >&2
    echo "skipped: needs root" >"$out/xdpbench.txt"
  else
    go build -o "$out/xdpbench" ./tools/xdpbench
    echo "== XDP vs its ceiling, kernel forwarding and nft fwd, packets/s ($generator generator, $duration per path)"
    if ! "$out/xdpbench" --duration "$duration" --flows "$flows" --generator "$generator" --mode "$mode" \
        --json "$out/xdpbench.json" | tee "$out/xdpbench.txt"; then
      echo "xdpbench: failed" >&2
      status=1
    fi
  fi
fi

if [ "${SKIP_GO:-}" != 1 ]; then
  echo "== prog.Run benchmarks: ./pkg/dataplane (-benchtime $benchtime)"
  # -run '^$': benchmarks only, no tests.
  if ! go test -run '^$' -bench . -benchtime "$benchtime" ./pkg/dataplane | tee "$out/go.txt"; then
    echo "xdpbench: Go benchmarks failed" >&2
    status=1
  fi
fi

echo
echo "================ summary ================"
if [ -f "$out/xdpbench.txt" ]; then
  echo "-- packets/s on one veth (Mpps):"
  grep -vE '^(time=|[0-9]{4}/)' "$out/xdpbench.txt" || true
fi
if [ -f "$out/go.txt" ]; then
  echo "-- prog.Run, ns per packet:"
  grep -E '^(Benchmark|ok|FAIL|---)' "$out/go.txt" || true
fi
[ -n "${BENCH_OUT:-}" ] && echo "raw outputs in $out"
exit $status
