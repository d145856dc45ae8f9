package keyadmin

import (
	"context"
	"time"

	"github.com/keygate/keygate/policy"
)

// Rotated is the outcome of Rotate: the new key, and the old one as it was
// left.
type Rotated struct {
	Issued
	// PreviousID is the rotated-out key; Previous its record after the
	// change (nil if Rotate returned a *RotateError).
	PreviousID string
	Previous   *policy.Record
	Warnings   []error // *JournalError
}

// Rotate issues a new key with keyID's policy (every field, including
// not_before and expires_at; a keygate key even when the old one was
// imported), then makes the old key expire after grace (or keeps an
// earlier expiry; an old key whose not_before falls after the grace is
// revoked instead, as it would never serve) and points it at the new one.
// Only active, unexpired, not yet rotated keys rotate (ErrNotRotatable).
//
// The new key is created first. If retiring the old key then fails,
// Rotate returns the new key and a *RotateError: the key exists and is
// shown only once, so callers must show it and say how to finish.
func (s *Service) Rotate(ctx context.Context, keyID string, grace time.Duration) (*Rotated, error) {
	if grace < 0 {
		return nil, fieldErr(FieldGrace, "must be >= 0")
	}
	if !policy.ValidID(keyID) {
		return nil, ErrInvalidID
	}
	now := s.clock()
	old, _, err := s.store.Get(ctx, keyID)
	if err != nil {
		return nil, err
	}
	switch t := old.ExpiresAtTime(); {
	case old.Status != policy.StatusActive:
		return nil, refuse(ErrNotRotatable, "key %s is %s; only active keys rotate", keyID, old.Status)
	case old.RotatedTo != "":
		return nil, refuse(ErrNotRotatable, "key %s was already rotated to %s; rotate that key instead", keyID, old.RotatedTo)
	case !t.IsZero() && !now.Before(t):
		return nil, refuse(ErrNotRotatable, "key %s has expired; create a new key instead", keyID)
	}
	rec := *old
	rec.RotatedTo, rec.Imported = "", false
	rec.CreatedAt = formatTime(now)
	rec.UpdatedAt = rec.CreatedAt
	issued, err := s.issue(ctx, &rec)
	if err != nil {
		return nil, err
	}
	out := &Rotated{Issued: *issued, PreviousID: keyID}
	graceEnd := now.Add(grace)
	changed, err := s.modify(ctx, keyID, now, func(r *policy.Record) error {
		retire(r, issued.ID, graceEnd)
		return nil
	})
	if err != nil {
		return out, &RotateError{NewID: issued.ID, OldID: keyID, GraceEnd: graceEnd, Err: err}
	}
	out.Previous = changed
	out.Warnings = s.record(ctx, JournalOpRotate, keyID) // the new id cannot be cached anywhere yet
	return out, nil
}

// retire points r at its successor and ends its life at graceEnd (or keeps
// an earlier expiry). A key whose not_before is not reached within the
// grace would never serve: it is revoked instead.
func retire(r *policy.Record, newID string, graceEnd time.Time) {
	r.RotatedTo = newID
	if t := r.ExpiresAtTime(); t.IsZero() || graceEnd.Before(t) {
		r.ExpiresAt = formatTime(graceEnd)
	}
	if nb, err := time.Parse(time.RFC3339, r.NotBefore); err == nil && !graceEnd.After(nb) {
		r.Status = policy.StatusRevoked
		r.ExpiresAt = ""
	}
}
