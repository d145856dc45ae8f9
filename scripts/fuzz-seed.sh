#!/usr/bin/env bash
# Copies inputs the fuzzers found (Go's fuzz cache) into each package's
# testdata/fuzz/<Target>/, so plain `go test` replays them as seeds: the
# corpus travels with the repo and a fresh clone tests what earlier fuzzing
# found.
#
# Go's cache holds only inputs that widened coverage; the script keeps, per
# target, inputs chosen for the decisions they reach, not only the smallest:
#   - a decision fuzzer (one its package's TestFuzzClassify knows, see
#     internal/fuzzcorpus) classifies every cached input by its decision
#     ("allowed", each deny's reason code, …); the PER_CLASS (default 3)
#     smallest inputs of each class are kept, so allow-reaching inputs are;
#   - then the smallest of the rest, up to SEEDS (default 25) in all.
# Only inputs of at most 4 KiB; ties by name, so the choice is deterministic.
# Committed inputs are never removed. TestFuzzCorpusReachesAllow (policy,
# extauthz) fails if a decision fuzzer's committed corpus stops reaching an
# allow or a deny.
#
#   make fuzz && scripts/fuzz-seed.sh && git add '*/testdata/fuzz'
#   scripts/fuzz-seed.sh FuzzEvaluate FuzzCheck    # only these targets
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-25}
per_class=${PER_CLASS:-3}
cache="$(go env GOCACHE)/fuzz/$(go list -m)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -d "$cache" ] || { echo "fuzz-seed: no fuzz cache at $cache (run make fuzz first)"; exit 0; }
find "$cache" -mindepth 2 -type d -name 'Fuzz*' | sort | while read -r dir; do
  target=$(basename "$dir")
  pkg=${dir#"$cache"/}
  pkg=${pkg%/"$target"}
  [ -d "$pkg" ] || continue
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$target"; then
    continue
  fi
  classes="$tmp/classes"
  : >"$classes"
  if grep -qs '^func TestFuzzClassify(' "$pkg"/*_test.go; then
    go test -count=1 -run '^TestFuzzClassify$' "./$pkg/" \
      -args -fuzzclassify "$target=$dir" -fuzzclassify.out "$classes" >"$tmp/log" 2>&1 ||
      { cat "$tmp/log"; echo "fuzz-seed: $pkg $target: a cached input fails the target's properties"; exit 1; }
  fi
  # size <TAB> name <TAB> class <TAB> path, for inputs of at most 4 KiB;
  # an input the package does not classify is of class "-".
  find "$dir" -maxdepth 1 -type f -size -4097c -printf '%s\t%f\t%p\n' |
    awk -F'\t' -v classes="$classes" '
      BEGIN { while ((getline line < classes) > 0) { split(line, f, "\t"); class[f[2]] = f[1] } }
      { c = ($3 in class) ? class[$3] : "-"; print $1 "\t" $2 "\t" c "\t" $3 }' >"$tmp/inputs"
  {
    # The smallest PER_CLASS of each class (classified targets only) …
    sort -t$'\t' -k3,3 -k1,1n -k2,2 "$tmp/inputs" |
      awk -F'\t' -v n="$per_class" '$3 != "-" && ++seen[$3] <= n { print "class\t" $0 }'
    # … then the smallest overall.
    sort -t$'\t' -k1,1n -k2,2 "$tmp/inputs" | sed 's/^/size\t/'
  } | awk -F'\t' -v max="$seeds" '
      $5 in kept { next }
      $1 == "class" || n < max { kept[$5] = 1; n++; print }' >"$tmp/chosen"
  out="$pkg/testdata/fuzz/$target"
  mkdir -p "$out"
  cut -f5 "$tmp/chosen" | while read -r f; do cp "$f" "$out/"; done
  summary=$(cut -f4 "$tmp/chosen" | sort | uniq -c | awk '{printf "%s%s=%s", sep, $2, $1; sep=" "}')
  echo "fuzz-seed: $out: $(ls "$out" | wc -l) inputs (added from the cache by class: $summary)"
done
