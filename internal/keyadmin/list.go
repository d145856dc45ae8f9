package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/policy"
)

// Key is one key as Get, List and Audit read it.
type Key struct {
	ID string
	// Record is nil when Err is set: the record does not parse or
	// validate (Err wraps ErrInvalidRecord), or the store failed.
	Record *policy.Record
	Err    error
	// LastUsed is when the key was last used; zero if no use was ever
	// recorded, or the store does not know (Caps.Usage).
	LastUsed time.Time
	// UsageErr: the record was read, but not when it was last used.
	UsageErr error
}

// Status is a key's effective status: a record's status, or Expired for
// an active key past its expiry.
type Status string

const (
	Active  Status = policy.StatusActive
	Revoked Status = policy.StatusRevoked
	Expired Status = "expired"
)

// ParseStatus returns the Status named s.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case Active, Revoked, Expired:
		return st, nil
	}
	return "", fieldErr(FieldStatus, "%q: want active, revoked or expired", s)
}

// EffectiveStatus is rec's status at time now.
func EffectiveStatus(rec *policy.Record, now time.Time) Status {
	if t := rec.ExpiresAtTime(); rec.Status == policy.StatusActive && !t.IsZero() && !now.Before(t) {
		return Expired
	}
	return Status(rec.Status)
}

// Get reads one key, and when it was last used if the store knows. A key
// whose record cannot be read is that error (wrapping ErrInvalidRecord, or
// the store's failure).
func (s *Service) Get(ctx context.Context, keyID string) (*Key, error) {
	if !policy.ValidID(keyID) {
		return nil, ErrInvalidID
	}
	k, gone := s.read(ctx, keyID)
	switch {
	case gone:
		return nil, fmt.Errorf("key %s: %w", keyID, ErrNotFound)
	case k.Err != nil:
		return nil, k.Err
	}
	return &k, nil
}

// IDs returns the store's key ids, sorted. It may name deleted keys
// (Vault lists their entries): Get says ErrNotFound for them.
func (s *Service) IDs(ctx context.Context) ([]string, error) {
	ids, err := s.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return ids, nil
}

// readParallel bounds the reads List and Audit have in flight.
const readParallel = 8

// readAll reads every key (and its last use, if the store knows), a few
// at a time, in the store's order. Deleted keys (which Vault still lists)
// are left out; a key that cannot be read is a Key with its Err.
func (s *Service) readAll(ctx context.Context) ([]Key, error) {
	if s.bulk != nil {
		return s.readBulk(ctx)
	}
	ids, err := s.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys := make([]Key, len(ids))
	gone := make([]bool, len(ids))
	sem := make(chan struct{}, readParallel)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			keys[i], gone[i] = s.read(ctx, id)
		})
	}
	wg.Wait()
	out := keys[:0]
	for i, k := range keys {
		if !gone[i] {
			out = append(out, k)
		}
	}
	return out, nil
}

// readBulk is readAll for a BulkReader, in id order.
func (s *Service) readBulk(ctx context.Context) ([]Key, error) {
	recs, invalid, err := s.bulk.GetAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	ids := slices.Sorted(maps.Keys(recs))
	ids = slices.AppendSeq(ids, maps.Keys(invalid))
	slices.Sort(ids)
	keys := make([]Key, 0, len(ids))
	for _, id := range ids {
		k := Key{ID: id, Record: recs[id], Err: invalid[id]}
		if k.Err != nil {
			k.Record = nil
		} else {
			s.lastUsed(ctx, &k)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// read reads one key; gone reports a deleted one.
func (s *Service) read(ctx context.Context, id string) (k Key, gone bool) {
	rec, _, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Key{}, true
	}
	k = Key{ID: id, Record: rec, Err: err}
	if err != nil {
		k.Record = nil
		return k, false
	}
	s.lastUsed(ctx, &k)
	return k, false
}

// lastUsed fills in when k was last used, if the store knows.
func (s *Service) lastUsed(ctx context.Context, k *Key) {
	if s.usage == nil {
		return
	}
	at, ok, err := s.usage.LastUsed(ctx, k.ID)
	switch {
	case err != nil:
		k.UsageErr = err
	case ok:
		k.LastUsed = at
	}
}

// Filter selects keys for List. Every criterion given must match; keys
// whose record cannot be read always match (they are listed with their
// error).
type Filter struct {
	Tenant string
	Status Status // "": any
	// NoExpiry: only keys without an expiry.
	NoExpiry bool
	// ExpiringWithin > 0: only active keys expiring within it.
	ExpiringWithin time.Duration
	// UnusedFor > 0: only keys not used for longer (a never-used key
	// counting from its created_at; one with neither always matches).
	// Keys whose use cannot be read match, with their UsageErr. Needs
	// Caps.Usage (else ErrUnsupported).
	UnusedFor time.Duration
}

// check reports every problem with the filter at once.
func (f Filter) check() error {
	var errs []error
	if f.Status != "" {
		if _, err := ParseStatus(string(f.Status)); err != nil {
			errs = append(errs, err)
		}
	}
	if f.NoExpiry && f.ExpiringWithin > 0 {
		errs = append(errs, fieldErr(FieldExpiry, "no expiry and expiring within: give one at most"))
	}
	return errors.Join(errs...)
}

// List reads every key and returns those f selects, in the store's order.
func (s *Service) List(ctx context.Context, f Filter) ([]Key, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if f.UnusedFor > 0 && s.usage == nil {
		return nil, &FieldError{Field: FieldUnusedFor, Err: fmt.Errorf("this store does not record when keys are used: %w", ErrUnsupported)}
	}
	all, err := s.readAll(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	out := make([]Key, 0, len(all))
	for _, k := range all {
		if f.keep(k, now) {
			out = append(out, k)
		}
	}
	return out, nil
}

// keep reports whether k passes the filter at time now.
func (f Filter) keep(k Key, now time.Time) bool {
	rec := k.Record
	if rec == nil {
		return true
	}
	exp := rec.ExpiresAtTime()
	status := EffectiveStatus(rec, now)
	switch {
	case f.Tenant != "" && rec.Tenant != f.Tenant,
		f.Status != "" && status != f.Status,
		f.NoExpiry && !exp.IsZero(),
		f.ExpiringWithin > 0 && (status != Active || exp.IsZero() || exp.After(now.Add(f.ExpiringWithin))):
		return false
	}
	if f.UnusedFor > 0 && k.UsageErr == nil { // unknown use: listed, with its error
		since, known := policy.UnusedSince(rec, k.LastUsed)
		return !known || now.Sub(since) > f.UnusedFor
	}
	return true
}
