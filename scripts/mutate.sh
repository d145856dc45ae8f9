#!/usr/bin/env bash
# `make mutate`: mutation testing with gremlins (pinned, installed into the
# git-ignored .tools/ from the Go module proxy). Each package's own tests
# must kill its mutants; see docs/testing.md "Mutation testing".
#
#   scripts/mutate.sh                     # policy, extauthz and vault (~30 min on 2 cores)
#   MUTATE_PKGS=policy scripts/mutate.sh  # one package (~8 min)
#   MUTATE_REUSE=1 scripts/mutate.sh      # judge the last run's logs again (after editing testdata/mutants/)
#
# Prints a table per package (killed, lived, timed out, not covered, efficacy,
# mutant coverage) and fails when
#   - a gated package (MUTATE_GATED, default "policy extauthz vault") has an
#     efficacy (killed / (killed + lived)) under MUTATE_MIN_EFFICACY (95);
#   - a gated package has a LIVED mutant not listed, with a reason, in
#     testdata/mutants/<pkg>.txt, or that file has an entry whose source text
#     no longer matches its line (code moved: re-check the entry);
#   - more than 5% of a package's tested mutants TIMED OUT (a broken run:
#     raise the timeout coefficient), or its unmutated tests fail.
# Other packages are recorded only. Entries that no longer survive are
# reported, not failed: delete them. vault's tests need the Vault binary
# (make vault): without it they skip, so mutating vault then fails.
#
# Equivalents file, one mutant a line ('#' comments allowed):
#   <file>:<line>:<col> <MUTATOR> | <trimmed source text of that line> | <why it is equivalent>
#
# Env: MUTATE_PKGS (default "policy extauthz vault"), MUTATE_GATED,
#      MUTATE_MIN_EFFICACY, MUTATE_WORKERS (default 2), MUTATE_TIMEOUT_COEFFICIENT
#      (default 30 for policy, whose tests take 0.1 s, else 10), MUTATE_FLAGS
#      (more gremlins flags), GREMLINS_VERSION (default v0.6.0).
#
# Gremlins v0.6.0 pitfalls handled here: --test-cpu passes "-cpu N" to go test
# as one argument, so every test run fails to start and every mutant counts as
# KILLED (a bogus 100%): it is refused, and the unmutated tests must pass
# first. The default timeout (from the coverage run's time) is shorter than
# compiling a mutant of a fast package, so nearly everything TIMES OUT: hence
# the coefficients and the timed-out check. Gremlins counts the condition of a
# switch case as NOT COVERED (Go's coverage blocks start after the colon), so
# those mutants are never tried: docs/testing.md says how they were checked.
# Tests run with -short (GOFLAGS), which skips the few slow edge tests.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${GREMLINS_VERSION:-v0.6.0}
pkgs=${MUTATE_PKGS:-policy extauthz vault}
gated=" ${MUTATE_GATED:-policy extauthz vault} "
min_efficacy=${MUTATE_MIN_EFFICACY:-95}
workers=${MUTATE_WORKERS:-2}
flags=${MUTATE_FLAGS:-}
tools="$PWD/.tools"
bin="$tools/gremlins"
out="$PWD/.run/mutate"

case " $flags " in
*--test-cpu*)
  echo "mutate.sh: refusing --test-cpu: gremlins $version passes '-cpu N' as one argument, go test fails, every mutant reads KILLED" >&2
  exit 2
  ;;
esac

installed() { go version -m "$bin" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/go-gremlins/gremlins" { print $3 }'; }
if [ "$(installed)" != "$version" ]; then
  echo "mutate.sh: installing gremlins $version into .tools/" >&2
  mkdir -p "$tools"
  GOBIN="$tools" go install "github.com/go-gremlins/gremlins/cmd/gremlins@$version"
fi

mkdir -p "$out"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-short"
# Gremlins runs the tests in a copy of the module: point them at the Vault
# binary by absolute path (without it vault's tests skip, and its numbers
# mean little: run `make vault` first).
if [ -z "${KEYGATE_VAULT_BIN:-}" ] && [ -x .tools/vault ]; then
  export KEYGATE_VAULT_BIN="$PWD/.tools/vault"
fi
case " $pkgs " in *" vault "*)
  if [ -z "${KEYGATE_VAULT_BIN:-}" ]; then
    echo "mutate.sh: no .tools/vault: vault's tests would skip and every mutant live: run make vault first" >&2
    exit 2
  fi
  ;;
esac
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo "-dirty")
summary="$out/summary.txt"
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

rows=()
for pkg in $pkgs; do
  [ -d "$pkg" ] || { fail "$pkg: no such package directory"; continue; }
  coef=${MUTATE_TIMEOUT_COEFFICIENT:-$([ "$pkg" = policy ] && echo 30 || echo 10)}
  log="$out/$pkg.txt"

  if [ -n "${MUTATE_REUSE:-}" ] && grep -q '^Mutation testing completed' "$log" 2>/dev/null; then
    echo "mutate.sh: $pkg: reusing $log (of $(cat "$out/$pkg.commit" 2>/dev/null || echo "an unknown commit"))" >&2
    took=$(sed -n 's/^Mutation testing completed in //p' "$log")
  else
    # Guard against bogus kills: if the unmutated tests fail, so does every mutant.
    if ! go test -count=1 "./$pkg/" >"$out/$pkg.pretest.txt" 2>&1; then
      fail "$pkg: tests fail without any mutant (see $out/$pkg.pretest.txt); not mutating"
      continue
    fi
    echo "mutate.sh: $pkg: gremlins unleash --workers $workers --timeout-coefficient $coef (log: $log)" >&2
    start=$SECONDS
    # shellcheck disable=SC2086 # MUTATE_FLAGS is a list of flags
    if ! "$bin" unleash --workers "$workers" --timeout-coefficient "$coef" $flags -o "$out/$pkg.json" "./$pkg" >"$log" 2>&1; then
      fail "$pkg: gremlins failed (see $log)"
      continue
    fi
    echo "$commit" >"$out/$pkg.commit"
    took="$((SECONDS - start)) s"
  fi

  # "      LIVED CONDITIONALS_BOUNDARY at host.go:50:10" → "LIVED host.go:50:10 CONDITIONALS_BOUNDARY"
  sed -nE 's/^[[:space:]]*(KILLED|LIVED|NOT COVERED|TIMED OUT|NOT VIABLE|SKIPPED) ([A-Z_]+) at ([^ ]+)$/\1|\3 \2/p' "$log" >"$out/$pkg.mutants"
  count() { grep -c "^$1|" "$out/$pkg.mutants" || true; }
  k=$(count KILLED) l=$(count LIVED) t=$(count "TIMED OUT") n=$(count "NOT COVERED")
  if ! grep -q "^Killed: $k, Lived: $l, Not covered: $n" "$log"; then
    fail "$pkg: parsed $k killed, $l lived, $n not covered; gremlins' own summary differs (see $log)"
  fi
  eff=$(awk -v k="$k" -v l="$l" 'BEGIN { printf "%.2f", (k + l) ? 100 * k / (k + l) : 0 }')
  cov=$(awk -v k="$k" -v l="$l" -v n="$n" 'BEGIN { printf "%.2f", (k + l + n) ? 100 * (k + l) / (k + l + n) : 0 }')
  rows+=("$(printf '%-10s %7s %6s %10s %12s %9s%% %9s%%  %s' "$pkg" "$k" "$l" "$t" "$n" "$eff" "$cov" "$took")")

  if [ $((k + l + t)) -eq 0 ]; then
    fail "$pkg: no mutant was tested"
  elif [ $((100 * t)) -gt $((5 * (k + l + t))) ]; then
    fail "$pkg: $t of $((k + l + t)) tested mutants timed out (>5%): a broken run, raise MUTATE_TIMEOUT_COEFFICIENT"
  fi

  # Equivalents: every entry must still describe its line; every lived
  # mutant of a gated package must have an entry.
  eq="testdata/mutants/$pkg.txt"
  declare -A listed=()
  if [ -f "$eq" ]; then
    lineno=0
    while IFS= read -r entry || [ -n "$entry" ]; do
      lineno=$((lineno + 1))
      case "$entry" in '' | '#'*) continue ;; esac
      id=${entry%% | *} rest=${entry#* | }
      reason=${rest##* | } src=${rest% | *}
      file=${id%%:*} pos=${id#*:}
      line=${pos%%:*}
      if [ "$id" = "$entry" ] || [ "$rest" = "$reason" ] || [ -z "${reason// /}" ] || ! [[ "$id" =~ ^[^:\ ]+:[0-9]+:[0-9]+\ [A-Z_]+$ ]]; then
        fail "$eq:$lineno: want '<file>:<line>:<col> <MUTATOR> | <source text> | <reason>'"
        continue
      fi
      actual=$(sed -n "${line}p" "$pkg/$file" 2>/dev/null | sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//')
      if [ "$actual" != "$src" ]; then
        fail "$eq:$lineno: stale: $pkg/$file:$line reads '$actual', the entry says '$src'"
        continue
      fi
      listed[$id]=1
      grep -qxF "LIVED|$id" "$out/$pkg.mutants" || echo "mutate.sh: $eq:$lineno: $id no longer survives: delete the entry" >&2
    done <"$eq"
  fi
  while IFS= read -r m; do
    id=${m#LIVED|}
    [ -n "${listed[$id]:-}" ] && continue
    if [[ "$gated" == *" $pkg "* ]]; then
      fail "$pkg: LIVED $id is not in $eq: kill it with a test, or list it with why it is equivalent"
    else
      echo "mutate.sh: $pkg: LIVED $id (recorded only)" >&2
    fi
  done < <(grep '^LIVED|' "$out/$pkg.mutants" || true)
  unset listed

  if [[ "$gated" == *" $pkg "* ]] && awk -v e="$eff" -v m="$min_efficacy" 'BEGIN { exit !(e < m) }'; then
    fail "$pkg: efficacy $eff% is under $min_efficacy%"
  fi
done

{
  echo "gremlins $version at $commit, $(date -u +%Y-%m-%d), GOFLAGS=$GOFLAGS"
  printf '%-10s %7s %6s %10s %12s %10s %10s  %s\n' package killed lived "timed out" "not covered" efficacy coverage time
  printf '%s\n' "${rows[@]}"
} | tee "$summary"
exit "$failed"
