package policy

import "errors"

// Store errors shared by every key store (Vault, file) and their callers.
// Any other error from a store is transient: the store could not answer.
var (
	// ErrKeyNotFound: no record exists for the id (including a Vault entry
	// that is deleted, destroyed or has no data).
	ErrKeyNotFound = errors.New("key not found")
	// ErrInvalidRecord wraps the reason a stored record cannot be used.
	ErrInvalidRecord = errors.New("invalid key record")
	// ErrKeyExists: a create found a record already at the id.
	ErrKeyExists = errors.New("key id already exists")
	// ErrConflict: an update lost a race with another writer (check-and-set).
	ErrConflict = errors.New("key record changed concurrently; retry")
)
