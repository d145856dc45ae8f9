#!/usr/bin/env bash
# Installs the real proxies that cmd/keygate/proxy_e2e_test.go puts in front of
# keygate, and links them into the git-ignored .tools/ folder:
#
#   - Caddy, built once from the Go module proxy (`go install`) and cached
#     outside the clone, keyed by version, so fresh CI clones reuse it;
#   - nginx from Debian when none is installed (apt-get, as root); it must
#     have the auth_request module. The system service is never started.
#
#   scripts/proxies.sh       # install what is missing, print both paths
#
# Exits non-zero if Caddy cannot be built. A missing nginx without root, or
# one without auth_request, is only reported. Either way the proxy's tests
# then skip locally and fail when CI is set (as for Vault).
#
# Env: CADDY_VERSION (default v2.11.9),
#      KEYGATE_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate).
set -euo pipefail

caddy_version=${CADDY_VERSION:-v2.11.9}
cache=${KEYGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate}
repo=$(cd "$(dirname "$0")/.." && pwd)
tools="$repo/.tools"
mkdir -p "$tools"

say() { echo "proxies.sh: $*" >&2; }

# install_caddy builds Caddy into the cache if missing and links it.
install_caddy() {
  local dir="$cache/caddy-$caddy_version" start=$SECONDS
  if [ ! -x "$dir/caddy" ]; then
    say "building caddy $caddy_version from the Go module proxy (first time only, up to ~2 minutes)"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp" "$dir" || return 1
    GOBIN="$dir.tmp" go install "github.com/caddyserver/caddy/v2/cmd/caddy@$caddy_version" || return 1
    mv "$dir.tmp/caddy" "$dir/caddy" && rmdir "$dir.tmp" || return 1
    say "built caddy in $((SECONDS - start))s"
  fi
  ln -sfn "$dir/caddy" "$tools/caddy"
  echo "$tools/caddy"
}

# find_nginx prints an installed nginx (root's PATH has /usr/sbin, others' may not).
find_nginx() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

# apt_install_nginx installs Debian's nginx without starting its service: a
# policy-rc.d that refuses every start is put in place for the install if
# the machine has none (containers usually have one already).
apt_install_nginx() {
  local start=$SECONDS policy=/usr/sbin/policy-rc.d added=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
  fi
  say "installing nginx from Debian (apt-get)"
  if ! apt-cache show nginx >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >&2 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >&2
  }
  local rc=$?
  [ -z "$added" ] || rm -f "$policy"
  say "apt-get install nginx took $((SECONDS - start))s"
  return $rc
}

# install_nginx installs nginx if missing and can, checks auth_request, links it.
install_nginx() {
  local bin
  bin=$(find_nginx)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      say "no nginx, and not root: install it with 'apt-get install nginx' (nginx tests skip, fail under CI)"
      return 0
    fi
    apt_install_nginx || { say "apt-get install nginx failed"; return 0; }
    bin=$(find_nginx)
  fi
  if ! "$bin" -V 2>&1 | grep -q -- '--with-http_auth_request_module'; then
    say "$bin lacks --with-http_auth_request_module: not used"
    rm -f "$tools/nginx"
    return 0
  fi
  ln -sfn "$bin" "$tools/nginx"
  echo "$tools/nginx"
}

status=0
install_caddy || { say "could not build caddy $caddy_version"; status=1; }
install_nginx || status=1
exit $status
