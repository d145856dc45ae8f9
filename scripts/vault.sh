#!/usr/bin/env bash
# Builds a HashiCorp Vault server binary from the Go module proxy and caches it.
#
# The binary is cached outside the clone (keyed by version) so fresh CI clones reuse it,
# and linked into the git-ignored .tools/ folder of the repo, where the tests look for it.
#
#   scripts/vault.sh          # build if missing, print the binary's path
#
# Env: VAULT_VERSION (default v1.19.0; newer tags do not build from the proxy, see FACTS),
#      KEYGATE_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate).
set -euo pipefail

version=${VAULT_VERSION:-v1.19.0}
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="$cache/vault-$version/vault"
link="$repo/.tools/vault"

if [ ! -x "$bin" ]; then
  echo "vault.sh: building vault $version (first time takes ~8 minutes)" >&2
  dir=$(go mod download -json "github.com/hashicorp/vault@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "vault.sh: go mod download gave no Dir for vault $version" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  cp -R "$dir/." "$work/src"
  chmod -R u+w "$work/src"
  (
    cd "$work/src"
    for m in github.com/hashicorp/vault/api \
             github.com/hashicorp/vault/api/auth/approle \
             github.com/hashicorp/vault/api/auth/kubernetes \
             github.com/hashicorp/vault/api/auth/userpass \
             github.com/hashicorp/vault/sdk; do
      go mod edit -dropreplace="$m" 2>/dev/null || true
    done
    mkdir -p "$cache/vault-$version"
    GOFLAGS=-mod=mod go build -o "$bin.tmp" .
    mv "$bin.tmp" "$bin"
  )
fi

mkdir -p "$repo/.tools"
ln -sfn "$bin" "$link"
echo "$link"
