# keygate-admin: the Vault policy for people and automation running the
# keygate CLI against Vault: `keygate keys create|list|show|update|revoke|
# rotate|delete|audit` and `keygate pepper rotate`.
#
# Every CLI write is a KV v2 write with check-and-set (options.cas): cas=0
# creates an entry that must not exist yet ("create"), cas=N replaces
# version N ("update"). Revoking a key is such an update (status=revoked),
# not a delete.
#
# "delete" only on the data paths of records and usage entries: `keygate
# keys delete` soft-deletes the latest version, which Vault keeps (`vault kv
# undelete` restores it). Nothing on secret/metadata/... or secret/destroy/...
# (which would erase a key's version history, or the journal). vault/
# policies_test.go pins this: it fails if another stanza grants "delete".
#
# Nothing under sys/: the admin token cannot read or change policies,
# mounts or auth methods. No "sudo", no "patch" (the CLI never patches).
#
# "+" matches exactly one path segment; "*" would also match everything
# nested below. The CLI only ever touches keys/<id> and usage/<id>, with
# <id> a checked 12-character key id, so "+" is all it needs.
#
# Paths assume the defaults: KV v2 mount "secret" (--vault-mount) and base
# path "keygate" (--vault-base-path). A deployment that uses another mount
# or base path must edit every path below (and keygate-server.hcl) to
# match. Token renewal/self-lookup come from Vault's "default" policy.

# Key records: create (keys create, keys rotate's new key), read (keys show,
# keys list, and the read before every check-and-set update), update (keys
# update, revoke, and rotate's change to the old key), delete (keys delete:
# soft delete of the latest version).
path "secret/data/keygate/keys/+" {
  capabilities = ["create", "read", "update", "delete"]
}

# When each key was last used, written by the servers: read (keys list
# --unused-for, keys show, keys audit) and delete (keys delete removes it
# with the record). The admin never writes it.
path "secret/data/keygate/usage/+" {
  capabilities = ["read", "delete"]
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

# The change journal: every CLI write appends a version with
# check-and-set (create the first time, update afterwards), after reading
# the latest one on this data path, whose response says its version (the
# cas value): no read of secret/metadata/keygate/journal is needed.
path "secret/data/keygate/journal" {
  capabilities = ["create", "read", "update"]
}
