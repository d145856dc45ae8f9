#!/usr/bin/env bash
# Provides the Prometheus server for the console's usage-chart test (a real
# Prometheus scraping a real `keygate serve`) and links it into the
# git-ignored .tools/, once, then prints its path.
#
# Order: $PROMETHEUS, prometheus on $PATH, a cached copy; else the server
# alone is taken from Debian's prometheus package, as scripts/promtool.sh
# takes promtool: `apt-get download` (no root) and extracted, rather than
# `apt-get install prometheus` (root, ~330 MB, a system service). Without
# apt-get it only says so: the test then skips locally (fails in CI).
#
# Env: PROMETHEUS, KEYGATE_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
link="$repo/.tools/prometheus"

bin=${PROMETHEUS:-$(command -v prometheus || true)}
if [ -z "$bin" ]; then
  bin=$(ls -1d "$cache"/prometheus-*/prometheus 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bin" ] && command -v apt-get >/dev/null; then
  version=$(apt-cache policy prometheus 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
  if [ -n "$version" ] && [ "$version" != "(none)" ]; then
    bin="$cache/prometheus-${version//[^A-Za-z0-9.+-]/_}/prometheus"
    if [ ! -x "$bin" ]; then
      echo "prometheus.sh: extracting prometheus from Debian's prometheus $version" >&2
      work=$(mktemp -d)
      trap 'rm -rf "$work"' EXIT
      sandbox=()
      [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root) # _apt cannot write to $work
      (cd "$work" && apt-get download -q "${sandbox[@]}" "prometheus=$version" >/dev/null)
      mkdir -p "$(dirname "$bin")"
      dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -xO ./usr/bin/prometheus >"$bin.tmp"
      chmod +x "$bin.tmp"
      mv "$bin.tmp" "$bin"
    fi
  fi
fi
if [ -z "$bin" ]; then
  echo "prometheus.sh: no prometheus and no Debian package for it; the console's usage-chart test will skip (fail when CI is set)" >&2
  exit 0
fi
mkdir -p "$repo/.tools"
ln -sfn "$bin" "$link"
echo "$link"
