#!/usr/bin/env bash
# `make soak`: keygate on a real Vault dev server for SOAK_DURATION (10m) at
# a steady SOAK_RATE (300 Check/s) while keys are created, revoked, expired
# and rotated; every decision is checked against an oracle, and keygate's
# heap, goroutines, open files and RSS are compared from warm-up to end.
# Prints a report and writes .run/soak/latest.json; exits 1 on any wrong
# decision or growth. See BENCHMARKS.md (Soak) for the knobs.
#
# Builds keygate and the harness (bench/cmd/kgsoak) and the Vault server
# (scripts/vault.sh: ~8 minutes the first time). As root the soak runs in a
# private network namespace (unshare -n, loopback only); otherwise on the
# host's loopback, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

go build -trimpath -o bin/keygate ./cmd/keygate
go build -trimpath -o bin/kgsoak ./bench/cmd/kgsoak
vault=$(scripts/vault.sh)
args=(--keygate bin/keygate --vault "$vault")

status=0
if command -v ip >/dev/null && unshare -n ip link set lo up 2>/dev/null; then
  export SOAK_NETWORK="private network namespace (unshare -n), loopback only"
  unshare -n sh -c 'ip link set lo up && exec "$@"' sh bin/kgsoak "${args[@]}" || status=$?
else
  echo "soak.sh: cannot create a network namespace (unshare -n needs root and iproute2):" \
    "running on the host's loopback, ports are not private" >&2
  export SOAK_NETWORK="host loopback (unshare -n not available)"
  bin/kgsoak "${args[@]}" || status=$?
fi
echo "soak.sh: done in $((SECONDS - start))s (builds included), exit $status" >&2
exit "$status"
