// Package filestore is keygate's embedded key store: key records in one YAML
// (or JSON) file, so keygate runs without Vault (the demo, small
// deployments).
//
// The file:
//
//	pepper:              # optional; needed for hmac-sha256 hashes
//	  current: 1
//	  versions: {"1": "<base64 of at least 32 bytes>"}
//	keys:                # required; "keys: {}" for none
//	  4VvXJ3tq9aBz:      # key id: 12 base62 characters
//	    hash: sha256:...
//	    tenant: acme
//	    status: active   # ... and every other policy.Record field
//	versions:            # optional; written by keygate (deleted keys' too)
//	  4VvXJ3tq9aBz: 3
//
// Loading is strict and reports every problem at once, each naming its place
// ("keys.4VvXJ3tq9aBz: record field \"scopes\": ..."). Quote ids that YAML
// could read as a number (all digits, or digits with one "e").
//
// # Invalid entries
//
// A bad record denies only itself. Problems come in two kinds:
//
//   - Document errors: a file over MaxFileSize or unreadable, a YAML syntax
//     error (duplicate keys included), a top level that is not a mapping,
//     keys missing or not a mapping, or an invalid pepper section. There is
//     no telling which records were meant, so nothing in the file is used:
//     Open fails, and Watch logs the error once and keeps serving the last
//     good snapshot.
//   - Entry problems: an invalid record (bad or unknown field, or an
//     hmac-sha256 hash whose pepper version is not in pepper.versions), an
//     id that is not a key id, a bad versions entry or section, an unknown
//     top-level field. The file loads: valid records are served as written,
//     and Lookup and Get return, for each invalid record's id, an error
//     wrapping policy.ErrInvalidRecord that names the id and the fields, so
//     keygate denies that key (invalid_key_record) and only that key. A bad
//     id names no key a request could carry; versions only guard writes.
//
// Open and every reload log entry problems at Error level, once per file
// content: the denied ids and each problem, naming fields but never hashes
// or pepper bytes (a key pasted as an id is redacted). List includes the ids
// of invalid records.
//
// Writes (Create, Update) refuse a file with problems of either kind,
// naming them: a write re-encodes the whole file, so it would drop or
// rewrite the hand-edited entries it could not load. Fix the file by hand.
//
// # Versions
//
// Each record has its own version, kept in the top-level versions map (an id
// missing there is at version 1). Create writes version 1; Update succeeds
// only if the caller's version is the current one and then stores version+1;
// otherwise it returns policy.ErrConflict. This is Vault KV v2's
// check-and-set per record, so writers of different keys never conflict. A
// hand edit that does not bump the version is invisible to check-and-set.
// Delete removes the record but keeps (and bumps) its versions entry, as
// Vault keeps a soft-deleted entry's metadata: a deleted key's id is never
// reused (Create returns policy.ErrKeyExists), and Get, Lookup and Update
// say policy.ErrKeyNotFound. A versions entry left by a hand-deleted key
// reserves its id the same way.
//
// # Reading and writing
//
// Lookup serves an immutable in-memory snapshot, swapped atomically by writes
// from this Store and by Watch. Get, List and Peppers read the file itself,
// so a CLI process sees other processes' writes.
// OnChange reports, after each swap, the ids whose Lookup answer may have
// changed (entries added, edited, removed, or made valid or invalid by a
// pepper edit), so that a server can evict them from its cache at once.
//
// Writes take an exclusive flock on a sibling "<file>.lock" (left in place),
// re-read the file (refusing it if it has problems), apply the change, check
// that the result loads without problems, write a
// temporary file (mode 0600) in the same directory, fsync it, rename it over
// the file and fsync the directory. A failed write leaves the old file
// intact. Writes produce YAML with sorted keys (JSON if the path ends in
// ".json"); comments and field order are not kept.
package filestore
