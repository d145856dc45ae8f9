# keygate-leak-endpoint: the Vault policy of `keygate leak-endpoint` (GitHub's
# secret scanning partner endpoint) without --revoke: it only tells GitHub
# whether each reported token is a keygate key.
#
# For each token of a key's shape with a valid checksum it reads the record
# of the token's id and verifies the token against the record's hash, so it
# reads key records and the HMAC peppers, nothing else: no list (it looks up
# the ids GitHub sends and never enumerates), no write, no metadata, nothing
# under sys/.
#
# With --revoke, give the token keygate-leak-endpoint-revoke.hcl as well.
#
# Paths assume the defaults: KV v2 mount "secret" (--vault-mount) and base
# path "keygate" (--vault-base-path); edit every path to match yours. With
# --vault-engine plugin, grant instead: read on "keygate/keys/+", read on
# "secret/data/keygate/pepper" and, for --revoke, update on "keygate/keys/+"
# and read+update on "keygate/journal" (see keygate-admin-plugin.hcl).
#
# cmd/keygate/leakendpoint_e2e_test.go runs the endpoint on a real Vault dev
# server with a token holding only this policy (and this plus the revoke
# policy for --revoke), its paths moved to the test's base path.

# Key records: one read per distinct reported id.
path "secret/data/keygate/keys/+" {
  capabilities = ["read"]
}

# The HMAC peppers, read for each report, to verify hmac-sha256 keys.
path "secret/data/keygate/pepper" {
  capabilities = ["read"]
}
