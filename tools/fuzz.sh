#!/usr/bin/env bash
# Runs every Fuzz* target in the module: the long ones (the config parser,
# from bytes and from typed parts, and the VRRP advert decoder: where
# hostile input arrives) for LONG each,
# every other for SHORT each. Usage: fuzz.sh [SHORT [LONG]], defaults 20s
# and 60s.
# A failure that leaves no new crasher under testdata/fuzz (the fuzzing
# engine itself giving up, e.g. a worker starved on a loaded machine) is
# retried once; a real finding always leaves its input there and fails.
set -euo pipefail
short=${1:-20s}
long=${2:-60s}
cd "$(dirname "$0")/.."

# Targets that get LONG, as "import/path FuzzName".
long_targets=(
  "github.com/xdpvip/xdpvip/pkg/config FuzzParse"
  "github.com/xdpvip/xdpvip/pkg/config FuzzExpansion"
  "github.com/xdpvip/xdpvip/pkg/vrrp FuzzDecode"
)

# fuzztime prints the time one target gets.
fuzztime() {
  local t
  for t in "${long_targets[@]}"; do
    if [ "$t" = "$1 $2" ]; then
      echo "$long"
      return
    fi
  done
  echo "$short"
}

# crashers counts the saved inputs of one target (0 when it has none yet).
crashers() {
  if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi
}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
    t=$(fuzztime "$pkg" "$f")
    for try in 1 2; do
      echo "fuzz: $pkg $f ($t)"
      before=$(crashers "$dir/testdata/fuzz/$f")
      # A short minimisation keeps a slow interesting input from eating
      # the run (the default is 60 s for each).
      if go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" -fuzzminimizetime=5s "$pkg"; then
        break
      fi
      after=$(crashers "$dir/testdata/fuzz/$f")
      if [ "$after" -gt "$before" ] || [ "$try" = 2 ]; then
        echo "fuzz: $pkg $f failed" >&2
        exit 1
      fi
      echo "fuzz: $pkg $f failed without a crasher; retrying once" >&2
    done
  done
done
