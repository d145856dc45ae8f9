#!/usr/bin/env bash
# `make run`: keygate on the embedded file store with fresh demo keys.
# No Vault needed. The demo keys are printed here on purpose: they exist only
# in .run/demo and are recreated on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/keygate}
addr=${KEYGATE_GRPC_ADDR:-127.0.0.1:9191}
dir=.run/demo
rm -rf "$dir" && mkdir -p "$dir"
store="file:$dir/keys.yaml"

field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
create() { "$bin" keys create --store "$store" --json "$@"; }
orders_key=$(create --tenant acme --name "demo: orders" --scopes orders:read,orders:write --header x-plan=gold | field key)
readonly_key=$(create --tenant acme --name "demo: read-only" --scopes orders:read --expires-in 30d | field key)
revoked=$(create --tenant acme --name "demo: revoked" --scopes orders:read)
"$bin" keys revoke --store "$store" "$(field id <<<"$revoked")" >/dev/null
revoked_key=$(field key <<<"$revoked")

cat <<MSG

keygate demo: serving Envoy's ext_authz Check on $addr, keys in $dir/keys.yaml

Allowed, with identity headers (in another terminal):
  $bin check --addr $addr --key $orders_key --method POST --path /orders --context keygate.scopes=orders:write

Denied 403 (the read-only key lacks orders:write):
  $bin check --addr $addr --key $readonly_key --method POST --path /orders --context keygate.scopes=orders:write

Denied 401 (revoked key):
  $bin check --addr $addr --key $revoked_key --path /orders

Denied 401 (not a valid key):
  $bin check --addr $addr --key kg_not-a-real-key --path /orders

Manage keys:  $bin keys list --store $store
Stop with Ctrl-C.

MSG
exec "$bin" serve --store "$store" --grpc-addr "$addr"
