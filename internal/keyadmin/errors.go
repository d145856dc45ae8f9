package keyadmin

import (
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/policy"
)

// Kinds of error, for errors.Is. Texts never hold a raw key, and never
// name a CLI command or flag: callers (CLI, console, plugin) say what to do
// in their own terms, from the kind and the typed errors below.
var (
	// ErrNotFound: the key has no record (never written, or deleted).
	ErrNotFound = policy.ErrKeyNotFound
	// ErrInvalidRecord: the stored record does not parse or validate; it
	// is never used, and its status is unknown.
	ErrInvalidRecord = policy.ErrInvalidRecord
	// ErrExists: a create found the id taken.
	ErrExists = policy.ErrKeyExists
	// ErrConflict: the record changed concurrently, more often than
	// Modify retries (or a raw check-and-set was stale).
	ErrConflict = policy.ErrConflict

	// ErrInvalidID: an argument is not a key id. The argument is never
	// echoed: people paste the key itself.
	ErrInvalidID = errors.New("the argument is not a key id (12 letters and digits: the id, not the key)")
	// ErrInvalidInput: a field or record is invalid; nothing was written.
	ErrInvalidInput = errors.New("invalid input")
	// ErrNeedsForce: Delete refused a key that may be in use (*ForceError).
	ErrNeedsForce = errors.New("needs force")
	// ErrNotRotatable: Rotate refused a revoked, expired or already
	// rotated key.
	ErrNotRotatable = errors.New("key cannot rotate")
	// ErrIDTaken: Import found its id holding a different key.
	ErrIDTaken = errors.New("the id is taken by a different key")
	// ErrUnsupported: the store lacks the capability (see Caps).
	ErrUnsupported = errors.New("not supported by this store")
	// ErrNoRateLimit: Fields.RateBurst for a key without a rate limit.
	ErrNoRateLimit = errors.New("the key has no rate limit; give one too")
)

// Field names of FieldError.
const (
	FieldHash      = "hash"
	FieldGrace     = "grace"
	FieldExpiry    = "expiry"
	FieldRateBurst = "rate_burst"
	FieldQuota     = "quota"
	// FieldGlobalRateLimit and FieldGlobalQuota are the limits counted
	// across replicas.
	FieldGlobalRateLimit = "global_rate_limit"
	FieldGlobalQuota     = "global_quota"
	FieldStatus          = "status"
	FieldUnusedFor       = "unused_for"
)

// FieldError is a problem with one input value; it is ErrInvalidInput.
type FieldError struct {
	Field string // one of the Field* constants
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Is makes every FieldError an ErrInvalidInput.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidInput }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// invalidErr marks a validation error (e.g. policy.Record.Validate's) as
// ErrInvalidInput, keeping its text.
type invalidErr struct{ err error }

func (e *invalidErr) Error() string        { return e.err.Error() }
func (e *invalidErr) Unwrap() error        { return e.err }
func (e *invalidErr) Is(target error) bool { return target == ErrInvalidInput }

func invalid(err error) error {
	if err == nil {
		return nil
	}
	return &invalidErr{err}
}

// refusal is a lifecycle rule saying no: its text is for people, its kind
// for code.
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// ForceError: Delete refused without force, because the key is active and
// unexpired (Unreadable nil) or its record cannot be read, so its status is
// unknown (Unreadable is the read error, wrapping ErrInvalidRecord).
type ForceError struct {
	KeyID      string
	Unreadable error
}

func (e *ForceError) Error() string {
	if e.Unreadable != nil {
		return e.Unreadable.Error() + "\nits status cannot be read: force the delete to remove it anyway"
	}
	return fmt.Sprintf("key %s is active: revoke it first, or force the delete to remove it while in use", e.KeyID)
}

// Unwrap makes it ErrNeedsForce and, when unreadable, the read error.
func (e *ForceError) Unwrap() []error {
	if e.Unreadable != nil {
		return []error{ErrNeedsForce, e.Unreadable}
	}
	return []error{ErrNeedsForce}
}

// RotateError: Rotate created the new key (its result holds it: it is
// shown only once) but could not retire the old one. Finish by setting
// OldID's expiry to GraceEnd, or revoking it.
type RotateError struct {
	NewID, OldID string
	GraceEnd     time.Time
	Err          error
}

func (e *RotateError) Error() string {
	return fmt.Sprintf("new key %s was created, but old key %s was NOT changed (finish by setting its expiry to %s, or by revoking it): %v",
		e.NewID, e.OldID, e.GraceEnd.UTC().Format(time.RFC3339), e.Err)
}

func (e *RotateError) Unwrap() error { return e.Err }

// JournalError is a warning: the change (Op, a JournalOp*) is written,
// but appending it to the change journal failed, so replicas apply it
// only when they re-read the record (within their max record age while
// they read the journal, else their found-TTL) instead of at their next
// journal poll.
type JournalError struct {
	Op  string
	Err error
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("the %s is written, but the change journal could not be: replicas apply it within their max record age (found-TTL if off) (%v)", e.Op, e.Err)
}

func (e *JournalError) Unwrap() error { return e.Err }
