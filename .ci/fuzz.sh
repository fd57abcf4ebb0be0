#!/usr/bin/env bash
# Runs every fuzz target in the module for a short while (default 20s each).
set -euo pipefail
t=${1:-20s}
cd "$(dirname "$0")/.."
fail=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $f ($t)"
    if ! go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" -fuzzminimizetime=50x "$pkg" >/tmp/fuzz.$$.log 2>&1; then
      # Go's fuzzer sometimes reports "context deadline exceeded" when the
      # time is up while a worker is busy, without a failing input. Retry
      # once in that case; a real failure writes a crasher and says so.
      if grep -q 'context deadline exceeded' /tmp/fuzz.$$.log && ! grep -q 'Failing input written' /tmp/fuzz.$$.log; then
        echo "fuzz: $f: fuzzer deadline glitch, retrying"
        if go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" -fuzzminimizetime=50x "$pkg" >/tmp/fuzz.$$.log 2>&1; then
          continue
        fi
      fi
      cat /tmp/fuzz.$$.log; fail=1
    fi
  done
done
rm -f /tmp/fuzz.$$.log
exit $fail
