#!/usr/bin/env bash
# Runs every Fuzz* target in the module for the given time each (default 20s).
# A failure that leaves no new crasher under testdata/fuzz (the fuzzing
# engine itself giving up, e.g. a worker starved on a loaded machine) is
# retried once; a real finding always leaves its input there and fails.
set -euo pipefail
t=${1:-20s}
cd "$(dirname "$0")/.."

# crashers counts the saved inputs of one target (0 when it has none yet).
crashers() {
  if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi
}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
    for try in 1 2; do
      echo "fuzz: $pkg $f ($t)"
      before=$(crashers "$dir/testdata/fuzz/$f")
      if go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$pkg"; then
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
