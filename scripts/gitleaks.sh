#!/usr/bin/env bash
# Provides gitleaks for rules/'s tests (the real gitleaks run with
# rules/gitleaks.toml) and links it into the git-ignored .tools/, then
# prints its path.
#
#   scripts/gitleaks.sh     # link an installed or cached gitleaks, else build it
#
# Order: $GITLEAKS, a cached build of the pinned version; else it is built
# from the Go module proxy (`go install`, ~25 s) into the cache, keyed by
# version, so a fresh clone (CI) reuses it. Without go or the proxy it only
# says so: the tests then skip locally (fail when CI is set).
#
# Env: GITLEAKS, GITLEAKS_VERSION (default v8.30.1), KEYGATE_CACHE_DIR
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
version=${GITLEAKS_VERSION:-v8.30.1}
link="$repo/.tools/gitleaks"

bin=${GITLEAKS:-}
if [ -z "$bin" ]; then
  dir="$cache/gitleaks-$version"
  bin="$dir/gitleaks"
  if [ ! -x "$bin" ]; then
    echo "gitleaks.sh: installing gitleaks $version into $dir" >&2
    mkdir -p "$dir"
    if ! GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/zricethezav/gitleaks/v8@$version" >&2; then
      echo "gitleaks.sh: could not build gitleaks $version; rules tests will skip (fail when CI is set)" >&2
      exit 1
    fi
  fi
fi
mkdir -p "$repo/.tools"
ln -sfn "$bin" "$link"
echo "$link"
