#!/usr/bin/env bash
# Regenerates the BPF objects from bpf/ into a temporary directory and fails
# when the committed pkg/dataplane/xdpvip_bpfel.{go,o} differ from them.
# Skips (exit 0) with a message when clang is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null 2>&1; then
  echo "check-generated: clang not found; skipping the staleness check of the BPF objects"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Run the same bpf2go command as gen.go, with the output redirected.
cmd=$(grep -m1 '^//go:generate go tool bpf2go' gen.go | sed 's|^//go:generate ||')
if [ -z "$cmd" ]; then
  echo "check-generated: no bpf2go line in gen.go" >&2
  exit 1
fi
cmd=${cmd/-output-dir pkg\/dataplane/-output-dir $tmp}
GOPACKAGE=xdpvip eval "$cmd" >/dev/null
status=0
for f in xdpvip_bpfel.go xdpvip_bpfel.o; do
  if ! cmp -s "$tmp/$f" "pkg/dataplane/$f"; then
    echo "check-generated: pkg/dataplane/$f is stale: run 'make generate' and commit it" >&2
    status=1
  fi
done
if [ $status -eq 0 ]; then
  echo "check-generated: BPF objects are up to date"
fi
exit $status
