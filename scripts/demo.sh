#!/usr/bin/env bash
# `make run`: keygate on the embedded file store with fresh demo keys.
# No Vault needed. The demo keys exist only in .run/demo and are recreated on
# every run; each is also written to .run/demo/<name>.key (mode 0600), and the
# printed `keygate check` commands read it with --key-file: the way to keep a
# key off the command line (ps, shell history).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/keygate}
addr=${KEYGATE_GRPC_ADDR:-127.0.0.1:9191}
console_addr=${KEYGATE_CONSOLE_ADDR:-127.0.0.1:8080}
dir=.run/demo
umask 077 # the key files and their folder: owner only
rm -rf "$dir" && mkdir -p "$dir"
store="file:$dir/keys.yaml"

field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
create() { "$bin" keys create --store "$store" --json "$@"; }
create --tenant acme --name "demo: orders" --scopes orders:read,orders:write --header x-plan=gold | field key >"$dir/orders.key"
create --tenant acme --name "demo: read-only" --scopes orders:read --expires-in 30d | field key >"$dir/readonly.key"
revoked=$(create --tenant acme --name "demo: revoked" --scopes orders:read)
"$bin" keys revoke --store "$store" "$(field id <<<"$revoked")" >/dev/null
field key <<<"$revoked" >"$dir/revoked.key"

# The console, on the same file: it prints a one-time sign-in link.
"$bin" console --store "$store" --addr "$console_addr" >"$dir/console.out" 2>"$dir/console.log" &
console_pid=$!
trap 'kill $console_pid 2>/dev/null' EXIT
for _ in $(seq 50); do grep -q 'sign in' "$dir/console.out" 2>/dev/null && break; sleep 0.1; done
link=$(sed -n 's/^sign in.*: //p' "$dir/console.out")

cat <<MSG

keygate demo: serving Envoy's ext_authz Check on $addr, keys in $dir/keys.yaml

Allowed, with identity headers (in another terminal):
  $bin check --addr $addr --key-file $dir/orders.key --method POST --path /orders --context keygate.scopes=orders:write

Denied 403 (the read-only key lacks orders:write):
  $bin check --addr $addr --key-file $dir/readonly.key --method POST --path /orders --context keygate.scopes=orders:write

Denied 401 (revoked key):
  $bin check --addr $addr --key-file $dir/revoked.key --path /orders

Denied 401 (not a valid key; --key - reads the key from stdin, and KEYGATE_KEY works too):
  $bin check --addr $addr --key - --path /orders <<<kg_not-a-real-key

Manage keys:  $bin keys list --store $store
Console:      ${link:-did not start, see $dir/console.log} (one-time link; the console log is $dir/console.log)
Stop with Ctrl-C.

MSG
"$bin" serve --store "$store" --grpc-addr "$addr"
