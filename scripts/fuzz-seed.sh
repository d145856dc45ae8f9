#!/usr/bin/env bash
# Copies inputs the fuzzers found (Go's fuzz cache) into each package's
# testdata/fuzz/<Target>/, so plain `go test` replays them as seeds: the
# corpus travels with the repo and a fresh clone tests what earlier fuzzing
# found. Keeps the smallest SEEDS (default 25) per target, at most 4 KiB each.
#
#   make fuzz && scripts/fuzz-seed.sh && git add '*/testdata/fuzz'
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-25}
cache="$(go env GOCACHE)/fuzz/$(go list -m)"
for dir in "$cache"/*/Fuzz*; do
  [ -d "$dir" ] || continue
  target=$(basename "$dir")
  pkg=$(basename "$(dirname "$dir")")
  [ -d "$pkg" ] || continue
  out="$pkg/testdata/fuzz/$target"
  mkdir -p "$out"
  find "$dir" -type f -size -4k -printf '%s %p\n' | sort -n | head -n "$seeds" | while read -r _ f; do
    cp "$f" "$out/"
  done
  echo "fuzz-seed: $out: $(ls "$out" | wc -l) inputs"
done
