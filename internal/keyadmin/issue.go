package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keygate/keygate/policy"
)

// Issued is a new key. RawKey is the only copy of the key anywhere: the
// store keeps its hash. Show it once; never log it. Printing an Issued
// with fmt or slog leaves the key out.
type Issued struct {
	ID     string
	RawKey string `json:"-"`
	Record *policy.Record
}

// String describes the key without its raw key.
func (i Issued) String() string { return fmt.Sprintf("key %s (tenant %q)", i.ID, i.tenant()) }

// GoString is String, so %#v does not print the raw key either.
func (i Issued) GoString() string { return i.String() }

// LogValue leaves the raw key out of logs.
func (i Issued) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", i.ID), slog.String("tenant", i.tenant()))
}

func (i Issued) tenant() string {
	if i.Record == nil {
		return ""
	}
	return i.Record.Tenant
}

// CheckIssue reports every problem Issue would find with f before a key
// exists for it (the record's validation, an expiry not in the future),
// without touching the store. Callers can join it with their own input
// errors to report everything at once.
func (s *Service) CheckIssue(f Fields) error {
	_, err := s.newRecord(f, s.clock())
	return err
}

// newRecord is the record f describes at time now, checked but not yet
// hashed.
func (s *Service) newRecord(f Fields, now time.Time) (*policy.Record, error) {
	rec := &policy.Record{Status: policy.StatusActive, CreatedAt: formatTime(now)}
	rec.UpdatedAt = rec.CreatedAt
	var errs []error
	if err := f.check(); err != nil {
		return nil, err // contradictory fields: nothing to validate
	}
	if err := f.apply(rec, now); err != nil {
		errs = append(errs, err)
	}
	probe := *rec
	probe.Hash = policy.AlgSHA256 + ":" + strings.Repeat("0", 64)
	if err := probe.Validate(); err != nil {
		errs = append(errs, invalid(err))
	} else if t := probe.ExpiresAtTime(); !t.IsZero() && !now.Before(t) {
		errs = append(errs, invalid(fmt.Errorf("expiry %s is not in the future: the key could never be used", rec.ExpiresAt)))
	}
	switch len(errs) {
	case 0:
		return rec, nil
	case 1:
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// Issue creates a new active key with the fields f. Nothing is journaled:
// a new random id cannot be in any replica's cache, and journal entries
// cost versions (Vault keeps 10), so a burst of issues would push replicas
// past the journal's window.
func (s *Service) Issue(ctx context.Context, f Fields) (*Issued, error) {
	rec, err := s.newRecord(f, s.clock())
	if err != nil {
		return nil, err
	}
	return s.issue(ctx, rec)
}

// issue generates a key for rec, sets its hash and creates it, retrying on
// the (astronomically unlikely) id collision.
func (s *Service) issue(ctx context.Context, rec *policy.Record) (*Issued, error) {
	h, err := s.hasher(ctx)
	if err != nil {
		return nil, err
	}
	var rawKey, keyID string
	for range createAttempts {
		if rawKey, keyID, err = s.format.Generate(); err != nil {
			return nil, err
		}
		rec.Hash = h.Hash(rawKey).String()
		if err = rec.Validate(); err != nil {
			return nil, invalid(err)
		}
		if err = s.store.Create(ctx, keyID, rec); !errors.Is(err, ErrExists) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	return &Issued{ID: keyID, RawKey: rawKey, Record: rec}, nil
}
