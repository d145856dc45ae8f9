// Package vaultplugin is keygate's Vault secrets engine: API keys as
// first-class Vault secrets. Teams issue keys for a role (tenant, scopes,
// restrictions and limit ceilings) with ordinary Vault policies, keys
// issued that way carry a Vault lease (lease expiry or revocation revokes
// the key), and keygate servers read records and the change journal from
// the engine's paths. Records live in the engine's own storage, which
// Vault's barrier encrypts; a raw key is returned once (issue, rotate) and
// never stored, logged or echoed in an error.
//
// Lifecycle rules (issue, revoke, rotate, import) are internal/keyadmin's,
// applied to the engine's storage through the keyadmin.Store this package
// implements; the engine adds what only it knows: roles and their bounds,
// leases, the check-and-set admin path and the journal. See
// docs/vault-plugin.md for every path.
package vaultplugin
