#!/usr/bin/env bash
# Installs what internal/browsertest drives the console's browser tests with,
# and links both into the git-ignored .tools/ folder:
#
#   - chromium from Debian when none is installed (apt-get, as root; ~20 s);
#   - axe-core's axe.min.js (the accessibility checker the tests inject),
#     fetched once from the npm registry at a pinned version, its tarball
#     checked against a pinned sha512 before anything is extracted, and
#     cached outside the clone, keyed by version, so fresh CI clones reuse it.
#
#   scripts/chromium.sh      # install what is missing, print both paths
#
# Exits non-zero if axe-core cannot be fetched or fails its check. A missing
# chromium without root is only reported. Either way the browser tests then
# skip locally and fail when CI is set (as for Vault).
#
# Env: KEYGATE_CHROMIUM (use this browser instead of looking for one),
#      AXE_VERSION (default 4.14.1; another version's sha512 is taken from
#      the registry with `npm view`, since only the default's is pinned here),
#      KEYGATE_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate).
set -euo pipefail

axe_version=${AXE_VERSION:-4.14.1}
# npm's dist.integrity for axe-core@4.14.1.
axe_pinned_integrity='sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=='
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
repo=$(cd "$(dirname "$0")/.." && pwd)
tools="$repo/.tools"
mkdir -p "$tools"

say() { echo "chromium.sh: $*" >&2; }

# find_chromium prints an installed chromium: $KEYGATE_CHROMIUM, else the
# names Debian and Ubuntu use, on $PATH or in /usr/bin.
find_chromium() {
  if [ -n "${KEYGATE_CHROMIUM:-}" ]; then
    echo "$KEYGATE_CHROMIUM"
    return
  fi
  local name
  for name in chromium chromium-browser; do
    command -v "$name" 2>/dev/null && return
    [ -x "/usr/bin/$name" ] && echo "/usr/bin/$name" && return
  done
  true
}

# apt_install_chromium installs Debian's chromium (no recommends: the tests
# need no fonts beyond what it depends on, nor a desktop).
apt_install_chromium() {
  local start=$SECONDS
  say "installing chromium from Debian (apt-get, ~20 s)"
  if ! apt-cache show chromium >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
  }
  local rc=$?
  say "apt-get install chromium took $((SECONDS - start))s"
  return $rc
}

# install_chromium installs chromium if missing and can, and links it.
install_chromium() {
  local bin
  bin=$(find_chromium)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      say "no chromium, and not root: install it with 'apt-get install chromium' (browser tests skip, fail under CI)"
      return 0
    fi
    apt_install_chromium || { say "apt-get install chromium failed"; return 0; }
    bin=$(find_chromium)
  fi
  [ -n "$bin" ] && [ -x "$bin" ] || { say "chromium not found after install"; return 0; }
  ln -sfn "$bin" "$tools/chromium"
  echo "$tools/chromium"
}

# axe_integrity prints the sha512 integrity the tarball must have.
axe_integrity() {
  if [ "$axe_version" = 4.14.1 ]; then
    echo "$axe_pinned_integrity"
    return
  fi
  say "axe-core $axe_version is not the pinned version: taking its sha512 from the registry"
  npm view "axe-core@$axe_version" dist.integrity
}

# install_axe fetches axe-core's tarball, checks it, extracts axe.min.js into
# the cache if missing, and links it.
install_axe() {
  local dir="$cache/axe-core-$axe_version" start=$SECONDS
  if [ ! -s "$dir/axe.min.js" ]; then
    local want got work url="https://registry.npmjs.org/axe-core/-/axe-core-$axe_version.tgz"
    want=$(axe_integrity) || return 1
    [ "${want%%-*}" = sha512 ] || { say "axe-core $axe_version: no sha512 integrity ($want)"; return 1; }
    say "fetching axe-core $axe_version from the npm registry"
    work=$(mktemp -d)
    curl -fsSL --retry 3 -o "$work/axe.tgz" "$url" || { rm -rf "$work"; return 1; }
    got="sha512-$(openssl dgst -sha512 -binary "$work/axe.tgz" | base64 -w0)"
    if [ "$got" != "$want" ]; then
      say "axe-core $axe_version tarball: integrity $got, want $want: not used"
      rm -rf "$work"
      return 1
    fi
    tar -xzf "$work/axe.tgz" -C "$work" package/axe.min.js || { rm -rf "$work"; return 1; }
    mkdir -p "$dir"
    mv "$work/package/axe.min.js" "$dir/axe.min.js.tmp" && mv "$dir/axe.min.js.tmp" "$dir/axe.min.js"
    rm -rf "$work"
    say "fetched axe-core in $((SECONDS - start))s"
  fi
  ln -sfn "$dir/axe.min.js" "$tools/axe.min.js"
  echo "$tools/axe.min.js"
}

status=0
install_chromium || status=1
install_axe || { say "could not fetch axe-core $axe_version"; status=1; }
exit $status
