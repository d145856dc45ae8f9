# keygate-admin: the Vault policy for people and automation running the
# keygate CLI against Vault: `keygate keys create|list|show|update|revoke|
# rotate` and `keygate pepper rotate`.
#
# Every CLI write is a KV v2 write with check-and-set (options.cas): cas=0
# creates an entry that must not exist yet ("create"), cas=N replaces
# version N ("update"). Revoking a key is such an update (status=revoked),
# not a delete.
#
# No "delete" anywhere, on purpose: no command deletes today (revoke keeps
# the record and its history as an audit trail), and "delete" on
# secret/metadata/... would erase a key's whole version history (and, on
# the journal, the journal). When `keygate keys delete` lands (issue 4),
# grant "delete" on secret/data/keygate/keys/* (soft delete of the latest
# version; undeletable) and only add secret/metadata/keygate/keys/* if the
# command really erases history. vault/policies_test.go pins this: it
# fails if a stanza grants "delete" without the test being updated.
#
# Nothing under sys/: the admin token cannot read or change policies,
# mounts or auth methods. No "sudo", no "patch" (the CLI never patches).
#
# Paths assume the defaults: KV v2 mount "secret" (--vault-mount) and base
# path "keygate" (--vault-base-path). A deployment that uses another mount
# or base path must edit every path below (and keygate-server.hcl) to
# match. Token renewal/self-lookup come from Vault's "default" policy.

# Key records: create (keys create, keys rotate's new key), read (keys show,
# keys list, and the read before every check-and-set update), update (keys
# update, revoke, and rotate's change to the old key).
path "secret/data/keygate/keys/*" {
  capabilities = ["create", "read", "update"]
}

# keys list: LIST secret/metadata/keygate/keys (Vault matches a LIST of
# ".../keys/" against this exact path). Names only; it grants nothing on
# the entries' metadata and nothing on sub-folders.
path "secret/metadata/keygate/keys" {
  capabilities = ["list"]
}

# pepper rotate: read the current versions, then write them back plus a new
# one with check-and-set (create the first time, update afterwards). Read is
# also what keys create --hash hmac-sha256 needs to hash a new key.
path "secret/data/keygate/pepper" {
  capabilities = ["create", "read", "update"]
}

# The change journal (issue 4): every CLI write appends a version with
# check-and-set (create the first time, update afterwards), after reading
# the current one.
path "secret/data/keygate/journal" {
  capabilities = ["create", "read", "update"]
}

# The journal's current_version, the cas value of the next append.
path "secret/metadata/keygate/journal" {
  capabilities = ["read"]
}
