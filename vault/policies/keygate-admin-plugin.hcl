# keygate-admin-plugin: the Vault policy for people and automation running
# `keygate keys ... --vault-engine plugin` (and the console) against
# keygate's secrets engine mounted at "keygate/", and for administering its
# roles. KV v2 at "secret/" (--vault-kv-mount) keeps key use. Paths assume
# the defaults: edit every path to match your mounts and base path.
#
# Teams that only issue keys for their role need far less: see
# docs/vault-plugin.md ("Policies").

# Key records through the engine's check-and-set admin path: create (cas 0:
# keys create, rotate's new key, import), read, update (update, revoke,
# rotate's change to the old key), delete (keys delete).
path "keygate/keys/+" {
  capabilities = ["create", "read", "update", "delete"]
}

# keys list (LIST keygate/keys/).
path "keygate/keys" {
  capabilities = ["list"]
}

# The change journal: the CLI appends an entry after each change, naming
# it (revoke, rotate, ...); the console reads it to keep its index current.
path "keygate/journal" {
  capabilities = ["read", "update"]
}

# Roles: what each team may issue.
path "keygate/roles/+" {
  capabilities = ["create", "read", "update", "delete"]
}
path "keygate/roles" {
  capabilities = ["list"]
}

# When each key was last used (written by the servers): read, and delete
# with the key.
path "secret/data/keygate/usage/+" {
  capabilities = ["read", "delete"]
}
