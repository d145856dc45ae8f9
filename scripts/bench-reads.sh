#!/usr/bin/env bash
# `make bench-reads`: Vault reads per keygate replica in steady state, before
# and after the read budget (--max-record-age), on one real Vault with a file
# audit device. Runs cmd/keygate's TestBenchVaultReads (skipped elsewhere):
# KEYGATE_BENCH_READS_REPLICAS (10) in-process replicas, _KEYS (5000) keys each
# Checked on every replica once per _CYCLE (10s), _CHANGES (0.5) journaled key
# updates a second; per phase (_PHASES: before,after) a warm-up of 1.1 refresh
# periods + 2 cycles, then _MEASURE (4m) counted. _MAX_RECORD_AGE sets the
# after phase's --max-record-age (default: serve's, 10m); _SERVE_ARGS are added
# to every replica's flags (e.g. "--lookup-timeout 1s"). About 25 minutes
# with the defaults. Writes .run/bench-reads/latest.json; see BENCHMARKS.md.
#
# Builds the Vault server first if needed (scripts/vault.sh). As root it runs
# in a private network namespace (unshare -n, loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/vault.sh >/dev/null
export KEYGATE_BENCH_READS=1 KEYGATE_BENCH_READS_OUT="$PWD/.run/bench-reads"
cmd=(go test -count=1 -timeout 90m -run '^TestBenchVaultReads$' -v ./cmd/keygate/)

status=0
if command -v ip >/dev/null && unshare -n ip link set lo up 2>/dev/null; then
  unshare -n sh -c 'ip link set lo up && exec "$@"' sh "${cmd[@]}" || status=$?
else
  echo "bench-reads.sh: cannot create a network namespace (unshare -n needs root and iproute2): running on the host's loopback" >&2
  "${cmd[@]}" || status=$?
fi
echo "bench-reads.sh: done in $((SECONDS - start))s, exit $status" >&2
exit "$status"
