#!/usr/bin/env bash
# Static analysis for `make test`: staticcheck and govulncheck, at pinned
# versions from the Go module proxy, built once and cached by version under
# the user cache (like the Vault binary); govulncheck reads a local copy of
# the Go vulnerability database built from the golang.org/x/vulndb module
# (vuln.go.dev is not reachable from CI), also cached by version.
#
#   scripts/lint.sh            # both; exit 1 on any finding (govulncheck: any not in
#                              # scripts/govulncheck-allow.txt with its reason)
#   scripts/lint.sh staticcheck
#   scripts/lint.sh govulncheck
#
# Env: KEYGATE_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate),
# STATICCHECK_VERSION, GOVULNCHECK_VERSION, VULNDB_VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
staticcheck_version=${STATICCHECK_VERSION:-v0.8.2}
govulncheck_version=${GOVULNCHECK_VERSION:-v1.9.0}
vulndb_version=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}

# tool NAME MODULE/CMD VERSION: the cached binary, installed if missing.
tool() {
  local dir="$cache/$1-$3"
  if [ ! -x "$dir/$1" ]; then
    echo "lint.sh: installing $1 $3 into $dir" >&2
    mkdir -p "$dir"
    GOBIN="$dir" GOFLAGS=-mod=mod go install "$2@$3"
  fi
  echo "$dir/$1"
}

# vulndb: a file:// database for govulncheck, built once per vulndb version.
vulndb() {
  local db="$cache/vulndb-$vulndb_version"
  if [ ! -f "$db/index/db.json" ]; then
    echo "lint.sh: building the Go vulnerability database ($vulndb_version) into $db" >&2
    local src
    src=$(GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$vulndb_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$db.tmp"
    (cd "$src" && GOFLAGS=-mod=mod go run ./cmd/indexdb -vulns "$src/data/osv" -out "$db.tmp") >&2
    rm -rf "$db" && mv "$db.tmp" "$db"
  fi
  echo "$db"
}

run_staticcheck() {
  local bin
  bin=$(tool staticcheck honnef.co/go/tools/cmd/staticcheck "$staticcheck_version")
  echo "lint.sh: staticcheck $staticcheck_version"
  "$bin" ./...
}

run_govulncheck() {
  local bin db
  bin=$(tool govulncheck golang.org/x/vuln/cmd/govulncheck "$govulncheck_version")
  db=$(vulndb)
  echo "lint.sh: govulncheck $govulncheck_version (database $vulndb_version)"
  local status=0
  "$bin" -db "file://$db" ./... || status=$?
  if [ "$status" -eq 3 ]; then
    # Findings: fail unless each called one is in the allowlist, with a reason.
    "$bin" -db "file://$db" -format json ./... | go run ./scripts/vulnallow scripts/govulncheck-allow.txt
    return
  fi
  return "$status"
}

case "${1:-all}" in
  staticcheck) run_staticcheck ;;
  govulncheck) run_govulncheck ;;
  all) run_staticcheck && run_govulncheck ;;
  *) echo "usage: scripts/lint.sh [staticcheck|govulncheck]" >&2; exit 2 ;;
esac
