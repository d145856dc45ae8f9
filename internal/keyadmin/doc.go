// Package keyadmin is keygate's key lifecycle: issue, modify, rotate,
// revoke, delete, import, audit, get and list, with every rule about them.
// The CLI (cmd/keygate) calls it, as the console and the Vault plugin
// will; none re-implements a rule. It never prints or logs, and a raw API
// key appears only in Issued.RawKey (Issue, Rotate): never in an error, a
// journal entry or a String/LogValue.
//
// It works on a Store (get with version, create-only, update with
// check-and-set, soft delete, list, peppers). What only some stores can
// do is an optional capability, found once by New:
//
//	capability     interface       Vault  file  without it
//	journal        Journal         yes    no    replicas see changes within their found-TTL (there is no journal to vouch for records)
//	                                            (the file store's servers watch the file instead)
//	last use       UsageReader     yes    no    List's UnusedFor is ErrUnsupported; Audit has no "unused"
//	pepper rotate  PepperRotator   yes    no    RotatePepper is ErrUnsupported (edit the file)
//	restore hint   Restorer        yes    no    Deleted.RestoreHint is ""
//
// Errors have kinds for errors.Is (ErrNotFound, ErrInvalidRecord,
// ErrConflict, ErrInvalidID, ErrInvalidInput, ErrNeedsForce,
// ErrNotRotatable, ErrIDTaken, ErrUnsupported) and, where a caller must say
// what to do next, types (*ForceError, *RotateError, *FieldError).
// Warnings about something that failed after a change was written
// (*JournalError) come in the results, not as errors.
//
// # Stores
//
// storetest.Run is the Store contract; vault and filestore run it. Where
// the two stores still differ, their storetest.Fixture says so and the
// suite checks that they do:
//
//   - List: Vault lists deleted keys' entries too (Get says ErrNotFound;
//     the Service leaves them out). The file store lists only live keys.
//   - A record that does not validate: both read it as ErrInvalidRecord
//     with its version. Vault can overwrite or delete it (Delete with
//     force); the file store refuses every write while its file has such
//     an entry (a write re-encodes the whole file and would drop it), so
//     it must be fixed by hand.
//   - An hmac-sha256 record whose pepper version the store lacks: the file
//     store refuses to write it, Vault stores it (it can never verify).
//     Keys the Service issues always use the store's current pepper.
//   - Deleted keys: Vault can restore them (Restorer); the file store
//     keeps only their ids, in its versions section, so they are never
//     reused.
//   - Update racing a delete: both stores refuse an Update at a version
//     read before the delete (Vault's Delete writes a deletion marker with
//     check-and-set before its soft delete, so the version moves on).
package keyadmin
