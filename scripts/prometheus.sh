#!/usr/bin/env bash
# Provides a binary of Debian's prometheus package — promtool (observe/'s
# rule checks and alert unit tests) or the Prometheus server (the console's
# usage-chart test) — and links it into the git-ignored .tools/, once, then
# prints its path.
#
#   scripts/prometheus.sh [prometheus|promtool]   # default: prometheus
#
# Order: $PROMETHEUS or $PROMTOOL, the binary on $PATH, a cached copy; else
# the binary alone is taken from Debian's prometheus package: `apt-get
# download` (19 MB, no root) and extracted, rather than `apt-get install
# prometheus`, which needs root, pulls ~330 MB of web-UI dependencies and
# installs a Prometheus service. Without apt-get it only says so: the tests
# then skip locally (fail in CI).
#
# Env: PROMETHEUS, PROMTOOL, KEYGATE_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate).
set -euo pipefail
name=${1:-prometheus}
case "$name" in
  prometheus) override=${PROMETHEUS:-} ;;
  promtool) override=${PROMTOOL:-} ;;
  *) echo "usage: scripts/prometheus.sh [prometheus|promtool]" >&2; exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
link="$repo/.tools/$name"

bin=${override:-$(command -v "$name" || true)}
if [ -z "$bin" ]; then
  bin=$(ls -1d "$cache/$name"-*/"$name" 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bin" ] && command -v apt-get >/dev/null; then
  version=$(apt-cache policy prometheus 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
  if [ -n "$version" ] && [ "$version" != "(none)" ]; then
    bin="$cache/$name-${version//[^A-Za-z0-9.+-]/_}/$name"
    if [ ! -x "$bin" ]; then
      echo "prometheus.sh: extracting $name from Debian's prometheus $version" >&2
      work=$(mktemp -d)
      trap 'rm -rf "$work"' EXIT
      sandbox=()
      [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root) # _apt cannot write to $work
      (cd "$work" && apt-get download -q "${sandbox[@]}" "prometheus=$version" >/dev/null)
      mkdir -p "$(dirname "$bin")"
      dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -xO "./usr/bin/$name" >"$bin.tmp"
      chmod +x "$bin.tmp"
      mv "$bin.tmp" "$bin"
    fi
  fi
fi
if [ -z "$bin" ]; then
  echo "prometheus.sh: no $name and no Debian package for it; the tests that need it will skip (fail when CI is set)" >&2
  exit 0
fi
mkdir -p "$repo/.tools"
ln -sfn "$bin" "$link"
echo "$link"
