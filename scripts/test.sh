#!/usr/bin/env bash
# `make test`: vet, all tests with -race (real Vault, nginx, Caddy,
# envoyproxy/ratelimit, Redis and headless Chromium included), short fuzz runs, then a scan of everything the tests printed
# for raw API keys.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
log=.run/test-output.log

make --no-print-directory vet
make --no-print-directory lint
scripts/promtool.sh >/dev/null || echo "test.sh: scripts/promtool.sh failed; observe skips promtool (fails in CI)" >&2
# The Prometheus server of the console's usage-chart test; same rule.
scripts/prometheus.sh >/dev/null || echo "test.sh: scripts/prometheus.sh failed; see above" >&2

# The real nginx and Caddy of cmd/keygate/proxy_e2e_test.go (Caddy is built
# once and cached). If one is missing, its tests skip, or fail under CI.
scripts/proxies.sh >/dev/null || echo "test.sh: scripts/proxies.sh failed; see above" >&2
# The real envoyproxy/ratelimit service (built once and cached) and Redis
# that the global limit tests run keygate against; same rule if missing.
scripts/ratelimit.sh >/dev/null || echo "test.sh: scripts/ratelimit.sh failed; see above" >&2
# Chromium and axe-core (fetched once, checked, cached) for the console's
# browser tests (internal/browsertest); same rule if missing.
scripts/chromium.sh >/dev/null || echo "test.sh: scripts/chromium.sh failed; see above" >&2
# gitleaks (built once from the Go module proxy and cached) for the tests of
# rules/gitleaks.toml; same rule if missing.
scripts/gitleaks.sh >/dev/null || echo "test.sh: scripts/gitleaks.sh failed; see above" >&2

# -v so that every t.Log line is in the scanned output too.
set +e
go test -race -count=1 -v ./... >"$log" 2>&1
status=$?
FUZZTIME=${FUZZTIME:-3s} scripts/fuzz.sh >>"$log" 2>&1
fuzz_status=$?
set -e

# Summarise: failures in full, then the package lines.
grep -E '^(--- FAIL|FAIL|panic:|ok |\?)' "$log" | grep -v '^?' || true
scripts/keyscan.sh "$log"

passed=$(grep -cE -- '^\s*--- PASS' "$log" || true)
failed=$(grep -cE -- '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE -- '^\s*--- SKIP' "$log" || true)
echo "full log: $log"
if [ "$status" -ne 0 ] || [ "$fuzz_status" -ne 0 ]; then
  grep -B2 -A30 -E -- '^--- FAIL|^panic:' "$log" | head -300 || true
  echo "go test exit $status, fuzz exit $fuzz_status"
  echo "tests: $passed passed, $failed failed, $skipped skipped"
  exit 1
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
