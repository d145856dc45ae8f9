# keygate-server-plugin: the Vault policy for `keygate serve --vault-engine
# plugin`, with keygate's secrets engine mounted at "keygate/" and the KV v2
# engine at "secret/" (--vault-kv-mount) for what stays in KV.
#
# Read exactly the key records and the change journal in the engine; no
# list, no write: a stolen server token cannot issue, change or delete a
# key. Paths assume the defaults (--vault-mount keygate, --vault-kv-mount
# secret, --vault-base-path keygate): edit every path to match yours.

# A key's record (the Check path's read): {record, version, role}.
path "keygate/keys/+" {
  capabilities = ["read"]
}

# The change journal, polled every --journal-poll.
path "keygate/journal" {
  capabilities = ["read"]
}

# As in keygate-server.hcl: the HMAC peppers (none with the engine's
# SHA-256 keys, but the server reads the entry), when each key was last
# used, and the hot-key slots a starting replica warms up from.
path "secret/data/keygate/pepper" {
  capabilities = ["read"]
}
path "secret/data/keygate/usage/+" {
  capabilities = ["create", "update"]
}
path "secret/data/keygate/hot/+" {
  capabilities = ["create", "read", "update"]
}
