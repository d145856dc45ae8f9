package keyadmin

import (
	"context"
	"time"

	"github.com/keygate/keygate/policy"
)

// Store is what key lifecycle needs from a key store. vault.Store and
// filestore.Store implement it; storetest.Run is its contract.
//
// Errors: a missing record wraps policy.ErrKeyNotFound (ErrNotFound), a
// record that does not parse or validate wraps policy.ErrInvalidRecord
// (ErrInvalidRecord), a lost check-and-set wraps policy.ErrConflict
// (ErrConflict), a create at a taken id wraps policy.ErrKeyExists
// (ErrExists). Any other error means the store could not answer.
type Store interface {
	// Get reads a key's record and its version for a later Update. A
	// record that does not parse or validate is a nil record, its
	// version, and an error wrapping policy.ErrInvalidRecord; a deleted
	// key is policy.ErrKeyNotFound.
	Get(ctx context.Context, keyID string) (*policy.Record, int, error)
	// Create writes a new record at keyID and never overwrites: an id in
	// use, or ever used (deleted keys keep theirs), is policy.ErrKeyExists.
	Create(ctx context.Context, keyID string, rec *policy.Record) error
	// Update replaces the record if it is still at version (from Get);
	// otherwise policy.ErrConflict. It never succeeds for an id that has
	// no record at that version.
	Update(ctx context.Context, keyID string, rec *policy.Record, version int) error
	// Delete removes the key (softly: its id is never reused);
	// policy.ErrKeyNotFound if it has no record.
	Delete(ctx context.Context, keyID string) error
	// List returns the key ids, sorted. It may name deleted keys (Vault
	// lists their entries): Get says policy.ErrKeyNotFound for them.
	List(ctx context.Context) ([]string, error)
	// Peppers returns the HMAC peppers; zero Peppers when there are none.
	Peppers(ctx context.Context) (policy.Peppers, error)
}

// Optional capabilities. New discovers them once, by interface, on the
// Store it is given (pass the store itself, not a wrapper that hides its
// methods); Service.Caps reports which were found.

// Journal is a store with a change journal (Vault): every change to an
// existing key is appended, so serving replicas evict the ids at once
// instead of when they next re-read the record.
type Journal interface {
	AppendJournal(ctx context.Context, op string, ids ...string) error
}

// UsageReader is a store that knows when keys were last used (Vault,
// written by the servers). ok is false when no use was ever recorded.
type UsageReader interface {
	LastUsed(ctx context.Context, keyID string) (at time.Time, ok bool, err error)
}

// PepperRotator is a store that can add a random pepper version and make
// it current (Vault). File-store users edit the pepper section by hand.
type PepperRotator interface {
	InitPepper(ctx context.Context) (version int, err error)
}

// Restorer is a store whose Delete keeps the key's history, so a deleted
// key can be restored by an operator (Vault KV v2: `vault kv rollback` to the version before the deletion marker).
// RestoreHint says how, for people; it holds no secret.
type Restorer interface {
	RestoreHint(keyID string) string
}

// BulkReader is a store that reads every record at once more cheaply than
// a Get per key (the file store: one parse of its file instead of one per
// key). The maps are the caller's; invalid errors wrap
// policy.ErrInvalidRecord.
type BulkReader interface {
	GetAll(ctx context.Context) (records map[string]*policy.Record, invalid map[string]error, err error)
}

// Caps says which optional capabilities a Service's store has.
type Caps struct {
	Journal        bool // changes are journaled for serving replicas
	Usage          bool // when keys were last used is known
	PepperRotation bool // RotatePepper works
	Restore        bool // a deleted key can be restored (Deleted.RestoreHint)
}

// Journal operations keyadmin appends. A replica evicts the ids of every
// entry; an entry with JournalOpNewKeys names no ids and makes replicas
// forget the ids they cached as unknown.
const (
	JournalOpUpdate  = "update"
	JournalOpRevoke  = "revoke"
	JournalOpRotate  = "rotate"
	JournalOpDelete  = "delete"
	JournalOpNewKeys = "new-keys"
)
