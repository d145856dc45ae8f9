# keygate-events: the Vault policy of the `keygate events` token.
#
# keygate events reads the keys (to fill each event's data), lists their ids
# (new keys are not journaled), reads the change journal and when keys were
# last used (key.unused), and keeps two entries of its own: events/lock, the
# lease that makes exactly one replica send, and events/state, how far it
# got. It never writes a record or the journal, never deletes anything, and
# touches nothing under sys/. It holds no webhook secret: those come from
# files (--webhook-secret-file).
#
# Paths assume the defaults: KV v2 mount "secret" (--vault-mount) and base
# path "keygate" (--vault-base-path); edit every path for others. With
# --vault-engine plugin, replace the keys and journal stanzas with the
# engine's ("keygate/keys/+" read, "keygate/keys" list, "keygate/journal"
# read); usage and the events entries stay in KV (--vault-kv-mount).
#
# Token renewal and self-lookup come from Vault's built-in "default" policy.
#
# vault/events_policy_test.go applies this file to a real Vault dev server
# and checks what the token can and cannot do.

# Key records: read one at a time (each event's data; the scan for
# key.expiring, key.expired and key.unused reads every key).
path "secret/data/keygate/keys/+" {
  capabilities = ["read"]
}

# The key ids: listed every --list-interval to find keys created since
# (`keys create` is not journaled: a new id is in no cache).
path "secret/metadata/keygate/keys" {
  capabilities = ["list"]
}

# The change journal, polled every --journal-poll: update, revoke, rotate
# and delete entries become key.updated, key.revoked (key.leaked), key.rotated
# and key.deleted.
path "secret/data/keygate/journal" {
  capabilities = ["read"]
}

# When keys were last used (written by keygate serve): key.unused.
path "secret/data/keygate/usage/+" {
  capabilities = ["read"]
}

# The lease: {"holder", "until"}, written with check-and-set; taken when
# free or expired, renewed every --lease-ttl/3, released on shutdown.
path "secret/data/keygate/events/lock" {
  capabilities = ["create", "read", "update"]
}

# How far the sender got (journal version, last list and scan), written
# with check-and-set by the lease holder once the events it covers are
# delivered or dead-lettered.
path "secret/data/keygate/events/state" {
  capabilities = ["create", "read", "update"]
}

# --auto-disable-unused revokes keys through keyadmin, which writes the
# record (check-and-set) and appends the revocation to the journal. Only
# with that flag, replace the keys/+ and journal stanzas above with:
#
# path "secret/data/keygate/keys/+" {
#   capabilities = ["read", "update"]
# }
# path "secret/data/keygate/journal" {
#   capabilities = ["create", "read", "update"]
# }
