#!/usr/bin/env bash
# Installs the real global rate limit parts the tests run keygate against,
# and links them into the git-ignored .tools/ folder:
#
#   - envoyproxy/ratelimit (the service Envoy's rate limit filter and
#     `keygate serve --ratelimit-service` call), built once from the Go
#     module proxy (`go install`) and cached outside the clone, keyed by
#     version, so fresh CI clones reuse it (~25 s the first time);
#   - redis-server from Debian when none is installed (apt-get, as root).
#     The system service is never started: tests start their own on
#     loopback ports.
#
#   scripts/ratelimit.sh      # install what is missing, print both paths
#
# Exits non-zero if the service cannot be built. A missing redis-server
# without root is only reported. Either way the tests that need them
# (internal/rltest users) skip locally and fail when CI is set.
#
# Env: RATELIMIT_VERSION (default: the pinned pseudo-version below; the
#      service has no tagged release with the current config loader),
#      KEYGATE_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate).
set -euo pipefail

rl_version=${RATELIMIT_VERSION:-v1.4.1-0.20260122083618-3fb702589d36}
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
repo=$(cd "$(dirname "$0")/.." && pwd)
tools="$repo/.tools"
mkdir -p "$tools"

say() { echo "ratelimit.sh: $*" >&2; }

# install_ratelimit builds the service into the cache if missing and links it.
install_ratelimit() {
  local dir="$cache/ratelimit-$rl_version" start=$SECONDS
  if [ ! -x "$dir/ratelimit" ]; then
    say "building envoyproxy/ratelimit $rl_version from the Go module proxy (first time only, ~25 s)"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp" "$dir" || return 1
    GOBIN="$dir.tmp" go install "github.com/envoyproxy/ratelimit/src/service_cmd@$rl_version" || return 1
    mv "$dir.tmp/service_cmd" "$dir/ratelimit" && rmdir "$dir.tmp" || return 1
    say "built the ratelimit service in $((SECONDS - start))s"
  fi
  ln -sfn "$dir/ratelimit" "$tools/ratelimit"
  echo "$tools/ratelimit"
}

# find_redis prints an installed redis-server (root's PATH has /usr/bin).
find_redis() {
  command -v redis-server 2>/dev/null || { [ -x /usr/bin/redis-server ] && echo /usr/bin/redis-server; } || true
}

# apt_install_redis installs Debian's redis-server without starting its
# service: a policy-rc.d that refuses every start is put in place for the
# install if the machine has none (containers usually have one already).
apt_install_redis() {
  local start=$SECONDS policy=/usr/sbin/policy-rc.d added=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
  fi
  say "installing redis-server from Debian (apt-get)"
  if ! apt-cache show redis-server >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >&2 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >&2
  }
  local rc=$?
  [ -z "$added" ] || rm -f "$policy"
  say "apt-get install redis-server took $((SECONDS - start))s"
  return $rc
}

# install_redis installs redis-server if missing and can, and links it.
install_redis() {
  local bin
  bin=$(find_redis)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      say "no redis-server, and not root: install it with 'apt-get install redis-server' (global limit tests skip, fail under CI)"
      return 0
    fi
    apt_install_redis || { say "apt-get install redis-server failed"; return 0; }
    bin=$(find_redis)
  fi
  [ -n "$bin" ] || { say "redis-server not found after install"; return 0; }
  ln -sfn "$bin" "$tools/redis-server"
  echo "$tools/redis-server"
}

status=0
install_ratelimit || { say "could not build the ratelimit service $rl_version"; status=1; }
install_redis || status=1
exit $status
