#!/usr/bin/env bash
# Installs the benchmark's load generator (ghz) into the git-ignored .tools/
# from the Go module proxy, once, and prints its path.
#
#   scripts/tools.sh        # install if missing or a different version
#
# Env: GHZ_VERSION (default v0.120.0; `@latest` resolves to an old v0.93.0 on
# the proxy, so the version is pinned).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${GHZ_VERSION:-v0.120.0}
tools="$PWD/.tools"
bin="$tools/ghz"

installed() { go version -m "$bin" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/bojand/ghz" { print $3 }'; }

if [ "$(installed)" != "$version" ]; then
  echo "tools.sh: installing ghz $version into .tools/" >&2
  mkdir -p "$tools"
  GOBIN="$tools" go install "github.com/bojand/ghz/cmd/ghz@$version"
fi
echo "$bin"
