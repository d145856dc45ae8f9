# keygate-server: the Vault policy of the `keygate serve` token.
#
# The server reads one key record per lookup, the pepper and the change
# journal, and writes only when keys were last used (usage/<id>, for
# `keygate keys list --unused-for`) and which keys it served recently
# (hot/<n>, from which a starting replica warms its cache). It can never
# list the keys (a leaked server token must not enumerate them), never
# write a record, the pepper or the journal, never delete anything, and
# touches nothing under sys/.
#
# Paths assume the defaults: KV v2 mount "secret" (--vault-mount) and base
# path "keygate" (--vault-base-path). A deployment that uses another mount
# or base path must edit every path below (and keygate-admin.hcl) to match:
# <mount>/data/<base>/..., <mount>/metadata/<base>/...
# In Vault Enterprise, write the policy in the namespace keygate uses
# (VAULT_NAMESPACE); paths are relative to it.
#
# Token renewal and self-lookup come from Vault's built-in "default"
# policy (auth/token/renew-self, auth/token/lookup-self). A token created
# with no_default_policy needs those two paths granted separately.
#
# vault/policies_test.go applies this file to a real Vault dev server and
# checks what the token can and cannot do; it also fails if any stanza here
# other than usage/+ and hot/+ grants more than "read", or if a path uses "*".
#
# "+" matches exactly one path segment; "*" would also match everything
# nested below (keys/<id>/anything). keygate only ever reads
# keys/<id> with <id> a checked 12-character key id, so "+" is all it needs.

# Key records. Lookup reads secret/data/keygate/keys/<id> on a cache miss.
# "read" on the data path only: no "list" (the server looks up ids it is
# given and never enumerates), and no metadata (the server does not need
# version history; Lookup gets the latest version from the data path).
path "secret/data/keygate/keys/+" {
  capabilities = ["read"]
}

# The HMAC peppers, re-read every --pepper-refresh. Rotation is the admin's
# job (keygate pepper rotate), so read only.
path "secret/data/keygate/pepper" {
  capabilities = ["read"]
}

# The change journal: a KV v2 entry whose versions are the journal,
# appended by the CLI with check-and-set. Each replica polls the latest
# version (every --journal-poll; the response's metadata says which
# version it is) and reads the versions it has not seen yet (GET
# ...?version=N), all on the data path: no read of
# secret/metadata/keygate/journal is needed.
path "secret/data/keygate/journal" {
  capabilities = ["read"]
}

# Key use: each replica writes usage/<id> = {"last_used": ...} at most once
# per key per --usage-interval (default 1h), batched and paced, never on the
# request path. Create and update only: the server never reads it back (no
# "read"), lists it or deletes it. A leaked token could make a key look used,
# which hides it from `keys list --unused-for`, or unreadable (reported as
# usage_unreadable); it can never make a key work. "+" (one path segment),
# not "*": usage/<id> only, nothing nested below it.
path "secret/data/keygate/usage/+" {
  capabilities = ["create", "update"]
}

# Hot keys: the ids of the keys the replicas served recently, in 32 fixed
# slots hot/0 ... hot/31 ({"seen": {"<id>": <unix seconds>}}, at most 4,096
# ids each; an id's slot is fixed by its hash). Each replica merges the ids
# it served into their slots every --hot-keys-interval (read, then a
# check-and-set create or update); a starting replica reads every slot and
# loads those records before it reports SERVING (--warmup-timeout). Key ids
# only, never a key; ids are public (logs, headers, Vault request paths).
# No "list": the slot names are fixed, and nothing here can enumerate
# keys/ or usage/. A leaked token could read which ids were used lately, or
# fill the slots with ids a starting replica then reads (bounded by the
# slots' size and the warm-up deadline); it can never make a key work.
# "+": hot/<n> only, nothing nested below.
path "secret/data/keygate/hot/+" {
  capabilities = ["create", "read", "update"]
}
