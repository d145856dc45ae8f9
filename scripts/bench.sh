#!/usr/bin/env bash
# `make bench`: keygate beside the floor (bench/floor) under the same load,
# interleaved; prints a table and writes .run/bench/latest.{json,svg}.
# See BENCHMARKS.md for the scenarios and the BENCH_* knobs.
#
# Builds keygate, the floor and the harness, installs ghz (scripts/tools.sh)
# unless BENCH_GHZ=0 and, unless BENCH_VAULT=0, the Vault server
# (scripts/vault.sh: ~8 minutes the first time). As root the harness runs in
# a private network namespace (unshare -n, loopback only) so its ports cannot
# clash with or be reached by anything else; otherwise it runs on the host's
# loopback and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

go build -trimpath -o bin/keygate ./cmd/keygate
go build -trimpath -o bin/kgbench-floor ./bench/floor
go build -trimpath -o bin/kgbench ./bench/cmd/kgbench
ghz=.tools/ghz
if [ "${BENCH_GHZ:-1}" != 0 ]; then
  ghz=$(scripts/tools.sh)
fi
vault=.tools/vault
if [ "${BENCH_VAULT:-1}" != 0 ]; then
  vault=$(scripts/vault.sh)
fi
args=(--keygate bin/keygate --floor bin/kgbench-floor --ghz "$ghz" --vault "$vault")

status=0
if command -v ip >/dev/null && unshare -n ip link set lo up 2>/dev/null; then
  export BENCH_NETWORK="private network namespace (unshare -n), loopback only"
  unshare -n sh -c 'ip link set lo up && exec "$@"' sh bin/kgbench "${args[@]}" || status=$?
else
  echo "bench.sh: cannot create a network namespace (unshare -n needs root and iproute2):" \
    "running on the host's loopback, ports are not private" >&2
  export BENCH_NETWORK="host loopback (unshare -n not available)"
  bin/kgbench "${args[@]}" || status=$?
fi
echo "bench.sh: done in $((SECONDS - start))s (builds included), exit $status" >&2
exit "$status"
