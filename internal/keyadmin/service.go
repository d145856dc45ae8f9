package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/policy"
)

// Config configures a Service. The zero value is valid.
type Config struct {
	// Format of issued keys. Default: policy.DefaultPrefix ("kg").
	Format policy.Format
	// Hash of issued keys: policy.AlgSHA256 or policy.AlgHMACSHA256 (the
	// store's current pepper). Default policy.AlgSHA256.
	Hash string
	// Now is the clock; default time.Now. Times are written in UTC.
	Now func() time.Time
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	switch c.Hash {
	case "", policy.AlgSHA256, policy.AlgHMACSHA256:
		return nil
	}
	return fieldErr(FieldHash, "%q: want %s or %s", c.Hash, policy.AlgSHA256, policy.AlgHMACSHA256)
}

// Service applies the key lifecycle rules to a Store. It is safe for
// concurrent use. It never prints or logs; a raw key appears only in
// Issued.RawKey.
type Service struct {
	store   Store
	journal Journal       // nil: the store keeps none
	usage   UsageReader   // nil: unknown
	peppers PepperRotator // nil: cannot rotate
	restore Restorer      // nil: deletes cannot be undone
	bulk    BulkReader    // nil: List and Audit read key by key
	format  policy.Format
	hash    string
	now     func() time.Time
}

// New returns a Service over store, discovering its optional capabilities
// (Journal, UsageReader, PepperRotator, Restorer) once.
func New(cfg Config, store Store) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("keyadmin: nil store")
	}
	s := &Service{store: store, format: cfg.Format, hash: cfg.Hash, now: cfg.Now}
	if s.format == (policy.Format{}) {
		f, err := policy.NewFormat(policy.DefaultPrefix)
		if err != nil {
			return nil, err
		}
		s.format = f
	}
	if s.hash == "" {
		s.hash = policy.AlgSHA256
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.journal, _ = store.(Journal)
	s.usage, _ = store.(UsageReader)
	s.peppers, _ = store.(PepperRotator)
	s.restore, _ = store.(Restorer)
	s.bulk, _ = store.(BulkReader)
	return s, nil
}

// Caps reports the store's optional capabilities.
func (s *Service) Caps() Caps {
	return Caps{Journal: s.journal != nil, Usage: s.usage != nil, PepperRotation: s.peppers != nil, Restore: s.restore != nil}
}

func (s *Service) clock() time.Time { return s.now().UTC() }

// hasher returns the hasher for new keys, loading peppers for HMAC.
func (s *Service) hasher(ctx context.Context) (*policy.Hasher, error) {
	var p policy.Peppers
	if s.hash == policy.AlgHMACSHA256 {
		var err error
		if p, err = s.store.Peppers(ctx); err != nil {
			return nil, fmt.Errorf("load pepper: %w", err)
		}
	}
	h, err := policy.NewHasher(s.hash, p)
	if err != nil {
		return nil, &FieldError{Field: FieldHash, Err: err}
	}
	return h, nil
}

// Bounds of the check-and-set retries.
const (
	createAttempts = 3 // new random ids (a collision is astronomically unlikely)
	modifyAttempts = 5 // re-reads when another writer got there first
)

// modify reads keyID, applies change and writes it back with
// check-and-set, retrying when another writer got there first.
func (s *Service) modify(ctx context.Context, keyID string, now time.Time, change func(*policy.Record) error) (*policy.Record, error) {
	if !policy.ValidID(keyID) {
		return nil, ErrInvalidID
	}
	for range modifyAttempts {
		rec, ver, err := s.store.Get(ctx, keyID)
		if err != nil {
			return nil, err // the store names the key
		}
		if err := change(rec); err != nil {
			return nil, err
		}
		rec.UpdatedAt = formatTime(now)
		if err := rec.Validate(); err != nil {
			return nil, invalid(err)
		}
		err = s.store.Update(ctx, keyID, rec, ver)
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				return nil, err
			}
			return rec, nil
		}
	}
	return nil, fmt.Errorf("update key %s: %w", keyID, ErrConflict)
}

// record appends a change to the journal, if the store keeps one. The
// change is already written: a failure is a warning (*JournalError).
func (s *Service) record(ctx context.Context, op string, ids ...string) []error {
	if s.journal == nil {
		return nil
	}
	if err := s.journal.AppendJournal(ctx, op, ids...); err != nil {
		return []error{&JournalError{Op: op, Err: err}}
	}
	return nil
}

// KeyID is the id of rawKey if it is a well-formed key of the service's
// format (checksum included); the error never holds the key.
func (s *Service) KeyID(rawKey string) (string, error) {
	return s.format.Parse(rawKey)
}
