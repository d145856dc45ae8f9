#!/usr/bin/env bash
# Provides promtool for observe/'s tests (`promtool check rules`) and links
# it into the git-ignored .tools/, once, then prints its path.
#
#   scripts/promtool.sh     # link an installed promtool, or fetch Debian's
#
# Order: $PROMTOOL, promtool on $PATH, a cached copy; else promtool alone is
# taken from Debian's prometheus package: `apt-get download` (19 MB, no root)
# and extracted, rather than `apt-get install prometheus`, which needs root,
# pulls ~330 MB of web-UI dependencies and installs a Prometheus service.
# Without apt-get it only says so: the tests then skip locally (fail in CI).
#
# Env: PROMTOOL, KEYGATE_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
link="$repo/.tools/promtool"

bin=${PROMTOOL:-$(command -v promtool || true)}
if [ -z "$bin" ]; then
  bin=$(ls -1d "$cache"/promtool-*/promtool 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bin" ] && command -v apt-get >/dev/null; then
  version=$(apt-cache policy prometheus 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
  if [ -n "$version" ] && [ "$version" != "(none)" ]; then
    bin="$cache/promtool-${version//[^A-Za-z0-9.+-]/_}/promtool"
    if [ ! -x "$bin" ]; then
      echo "promtool.sh: extracting promtool from Debian's prometheus $version" >&2
      work=$(mktemp -d)
      trap 'rm -rf "$work"' EXIT
      sandbox=()
      [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root) # _apt cannot write to $work
      (cd "$work" && apt-get download -q "${sandbox[@]}" "prometheus=$version" >/dev/null)
      mkdir -p "$(dirname "$bin")"
      dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$bin.tmp"
      chmod +x "$bin.tmp"
      mv "$bin.tmp" "$bin"
    fi
  fi
fi
if [ -z "$bin" ]; then
  echo "promtool.sh: no promtool and no Debian package for it; observe tests will skip (fail when CI is set)" >&2
  exit 0
fi
mkdir -p "$repo/.tools"
ln -sfn "$bin" "$link"
echo "$link"
