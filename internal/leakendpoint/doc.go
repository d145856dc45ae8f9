// Package leakendpoint is GitHub's secret scanning partner endpoint for
// keygate keys: GitHub POSTs the tokens its scanners matched in public
// repositories, gists, issues and npm packages; the endpoint checks the
// request's signature, looks each token up in the store as `keygate scan`
// does (leakscan: by id, then verified against the record's hash),
// optionally revokes the live ones with reason "leaked" (keyadmin, so the
// store's journal tells every serving replica), and answers GitHub's
// token-status feedback: one {token_hash, token_type, label} per token.
//
// A request is acted on only if its signature verifies: the body's
// SHA-256, signed with ECDSA P-256 (ASN.1 DER, base64 in
// Github-Public-Key-Signature) by the public key whose key_identifier is
// Github-Public-Key-Identifier, from GitHub's key document (a file, or
// https://api.github.com/meta/public_keys/secret_scanning). Then its body
// must parse, hold at most Config.MaxTokens tokens, and not have been seen
// within Config.ReplayWindow. Every refusal is a 4xx with a reason and
// changes nothing.
//
// A raw token is never logged, stored or echoed: logs name key ids, the
// report's url and source, and outcomes; the response carries only the
// SHA-256 of each token, as GitHub's protocol asks.
package leakendpoint
