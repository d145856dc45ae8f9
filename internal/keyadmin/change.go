package keyadmin

import (
	"context"
	"errors"

	"github.com/keygate/keygate/policy"
)

// Changed is an existing key after Modify or Revoke.
type Changed struct {
	ID     string
	Record *policy.Record
	// Warnings: the change is written, but something after it failed
	// (*JournalError).
	Warnings []error
}

// Modify changes the fields f of keyID's record (check-and-set, retried
// when another writer got there first) and journals it.
func (s *Service) Modify(ctx context.Context, keyID string, f Fields) (*Changed, error) {
	now := s.clock()
	rec, err := s.modify(ctx, keyID, now, func(r *policy.Record) error { return f.apply(r, now) })
	if err != nil {
		return nil, err
	}
	return &Changed{ID: keyID, Record: rec, Warnings: s.record(ctx, JournalOpUpdate, keyID)}, nil
}

// Revoke sets keyID's status to revoked, with reason (may be empty: a
// revoked key's earlier reason is kept) as its revoked_reason, and
// journals it. Revoking a revoked key writes it again (its updated_at
// moves).
func (s *Service) Revoke(ctx context.Context, keyID, reason string) (*Changed, error) {
	if policy.Redact(reason) != reason {
		return nil, fieldErr("revoked_reason", errKeyShaped)
	}
	rec, err := s.modify(ctx, keyID, s.clock(), func(r *policy.Record) error {
		r.Status = policy.StatusRevoked
		if reason != "" {
			r.RevokedReason = reason
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Changed{ID: keyID, Record: rec, Warnings: s.record(ctx, JournalOpRevoke, keyID)}, nil
}

// Deleted is a deleted key.
type Deleted struct {
	ID string
	// RestoreHint says how an operator can restore it; "" when the store
	// cannot (Caps.Restore).
	RestoreHint string
	// Warnings: the record is deleted, but something after it failed
	// (*JournalError; Vault: its usage entry was not deleted).
	Warnings []error
}

// Delete deletes keyID's record; from then on the key is unknown and its
// id is never reused. Without force it refuses (*ForceError) a key that is
// active and unexpired, or whose record cannot be read (its status is
// unknown). Revoked and expired keys need no force.
func (s *Service) Delete(ctx context.Context, keyID string, force bool) (*Deleted, error) {
	if !policy.ValidID(keyID) {
		return nil, ErrInvalidID
	}
	now := s.clock()
	rec, _, err := s.store.Get(ctx, keyID)
	switch {
	case errors.Is(err, ErrInvalidRecord) && !force:
		return nil, &ForceError{KeyID: keyID, Unreadable: err}
	case err != nil && !errors.Is(err, ErrInvalidRecord):
		return nil, err
	case rec != nil && rec.Status == policy.StatusActive && !force &&
		(rec.ExpiresAtTime().IsZero() || now.Before(rec.ExpiresAtTime())):
		return nil, &ForceError{KeyID: keyID}
	}
	var warnings []error
	if err := s.store.Delete(ctx, keyID); err != nil {
		if errors.Is(err, ErrNotFound) || !s.gone(ctx, keyID) {
			return nil, err
		}
		// The record is deleted and something after it failed (Vault:
		// the usage entry): the key is gone, so this is a warning.
		warnings = append(warnings, err)
	}
	d := &Deleted{ID: keyID, Warnings: append(s.record(ctx, JournalOpDelete, keyID), warnings...)}
	if s.restore != nil {
		d.RestoreHint = s.restore.RestoreHint(keyID)
	}
	return d, nil
}

// gone reports whether keyID's record is known to be deleted.
func (s *Service) gone(ctx context.Context, keyID string) bool {
	_, _, err := s.store.Get(ctx, keyID)
	return errors.Is(err, ErrNotFound)
}
