# keygate-leak-endpoint-revoke: what `keygate leak-endpoint --revoke` needs
# on top of keygate-leak-endpoint.hcl (give the token both).
#
# A revocation is keyadmin's: read the record, write it back with
# status=revoked and revoked_reason=leaked with check-and-set (an update of
# the version read; never a create: a reported id with no record is not
# revoked), then append "revoke <id>" to the change journal, which every
# `keygate serve` replica polls (--journal-poll, 1 s) to evict the key. No
# delete, no create, no list, nothing under sys/. Vault cannot limit an
# update to some fields: a stolen token of this policy could rewrite any
# existing record (not only revoke it), so guard it as the admin token.
# Without --revoke, do not grant this policy.
#
# Paths assume the defaults (mount "secret", base path "keygate").

# Key records: update with check-and-set (the read is in
# keygate-leak-endpoint.hcl).
path "secret/data/keygate/keys/+" {
  capabilities = ["update"]
}

# The change journal: read the latest version, then append with
# check-and-set (create the first time, update afterwards).
path "secret/data/keygate/journal" {
  capabilities = ["create", "read", "update"]
}
