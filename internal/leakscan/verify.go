package leakscan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// Status is what the store says about a found key.
type Status string

const (
	// Unchecked: no store was asked. The key may work.
	Unchecked Status = "unchecked"
	// Active, Revoked, Expired: the store holds this key (its hash
	// verifies) with that effective status.
	Active  Status = Status(keyadmin.Active)
	Revoked Status = Status(keyadmin.Revoked)
	Expired Status = Status(keyadmin.Expired)
	// Unknown: the store has no record of this id, or its record's hash
	// does not verify the found key (a string made to look like a real
	// key, or a key of another deployment that happens to share the id).
	Unknown Status = "unknown"
	// Error: the store could not say (Finding.StatusErr).
	Error Status = "error"
)

// RevokeReason is the revoked_reason Revoke writes.
const RevokeReason = "leaked"

// Keys is what a Verifier needs of key lifecycle: *keyadmin.Service.
type Keys interface {
	Get(ctx context.Context, keyID string) (*keyadmin.Key, error)
	Revoke(ctx context.Context, keyID, reason string) (*keyadmin.Changed, error)
}

// Verifier looks found keys up in the store.
type Verifier struct {
	keys   Keys
	hasher *policy.Hasher
	now    func() time.Time
}

// NewVerifier returns a Verifier over keys; peppers are the store's, to
// verify hmac-sha256 records; now defaults to time.Now.
func NewVerifier(keys Keys, peppers policy.Peppers, now func() time.Time) (*Verifier, error) {
	h, err := policy.NewHasher(policy.AlgSHA256, peppers) // verifies either algorithm
	if err != nil {
		return nil, fmt.Errorf("store peppers: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Verifier{keys: keys, hasher: h, now: now}, nil
}

// Verify sets each finding's Status, reading each distinct key once.
func (v *Verifier) Verify(ctx context.Context, findings []Finding) {
	type answer struct {
		st  Status
		err error
	}
	seen := map[string]answer{}
	for i := range findings {
		f := &findings[i]
		a, ok := seen[f.rawKey]
		if !ok {
			a.st, a.err = v.status(ctx, f.rawKey, f.KeyID)
			seen[f.rawKey] = a
		}
		f.Status, f.StatusErr = a.st, a.err
	}
}

// status is one key's status: its record read by id, then the key
// verified against the record's hash, so that only the key itself (not
// another string with its id) gets the record's status.
func (v *Verifier) status(ctx context.Context, rawKey, keyID string) (Status, error) {
	k, err := v.keys.Get(ctx, keyID)
	switch {
	case errors.Is(err, keyadmin.ErrNotFound):
		return Unknown, nil
	case err != nil:
		return Error, err
	}
	ok, err := v.hasher.Verify(rawKey, k.Record.Digest())
	switch {
	case err != nil:
		return Error, fmt.Errorf("key %s: verify its hash: %w", keyID, err)
	case !ok:
		return Unknown, nil
	}
	return Status(keyadmin.EffectiveStatus(k.Record, v.now())), nil
}

// Revoke revokes every Active finding's key with reason "leaked" (once per
// key; the store's journal tells serving replicas) and marks the findings
// Revoked, or sets RevokeErr. It returns how many keys it revoked.
func (v *Verifier) Revoke(ctx context.Context, findings []Finding) int {
	type answer struct {
		ok       bool
		err      error
		warnings []error
	}
	done := map[string]answer{}
	for i := range findings {
		f := &findings[i]
		if f.Status != Active {
			continue
		}
		a, ok := done[f.KeyID]
		if !ok {
			ch, err := v.keys.Revoke(ctx, f.KeyID, RevokeReason)
			a.ok, a.err = err == nil, err
			if ch != nil {
				a.warnings = ch.Warnings
			}
			done[f.KeyID] = a
		}
		f.Revoked, f.RevokeErr, f.Warnings = a.ok, a.err, a.warnings
	}
	n := 0
	for _, a := range done {
		if a.ok {
			n++
		}
	}
	return n
}
