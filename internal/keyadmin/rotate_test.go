package keyadmin_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

const day = 24 * time.Hour

// The old key's life after a rotation: it ends at the grace, or keeps an
// earlier expiry; a key that would start only after the grace is revoked.
func TestRotateGrace(t *testing.T) {
	tests := []struct {
		name        string
		fields      keyadmin.Fields
		grace       time.Duration
		wantStatus  string
		wantExpires string
	}{
		{"no expiry: ends at the grace", keyadmin.Fields{}, day, policy.StatusActive, t0.Add(day).Format(time.RFC3339)},
		{"later expiry: ends at the grace", keyadmin.Fields{ExpiresIn: 90 * day}, day, policy.StatusActive, t0.Add(day).Format(time.RFC3339)},
		{"earlier expiry: kept", keyadmin.Fields{ExpiresIn: time.Hour}, day, policy.StatusActive, t0.Add(time.Hour).Format(time.RFC3339)},
		{"expiry at the grace's end: kept", keyadmin.Fields{ExpiresIn: day}, day, policy.StatusActive, t0.Add(day).Format(time.RFC3339)},
		{"no grace: ends now", keyadmin.Fields{}, 0, policy.StatusActive, t0.Format(time.RFC3339)},
		{"starts after the grace: revoked", keyadmin.Fields{NotBefore: ptr(t0.Add(2 * day))}, day, policy.StatusRevoked, ""},
		{"starts at the grace's end: revoked", keyadmin.Fields{NotBefore: ptr(t0.Add(day))}, day, policy.StatusRevoked, ""},
		{"starts within the grace: active", keyadmin.Fields{NotBefore: ptr(t0.Add(time.Hour))}, day, policy.StatusActive, t0.Add(day).Format(time.RFC3339)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.fields.Tenant, tt.fields.Scopes = ptr("acme"), &[]string{"a", "b"}
			old := f.issue(t, tt.fields)
			f.clock.Set(t0)
			r, err := f.svc.Rotate(context.Background(), old.ID, tt.grace)
			if err != nil {
				t.Fatal(err)
			}
			if r.Previous.Status != tt.wantStatus || r.Previous.ExpiresAt != tt.wantExpires || r.Previous.RotatedTo != r.ID {
				t.Errorf("old key: status %s, expires %q, rotated to %q; want %s, %q, %s",
					r.Previous.Status, r.Previous.ExpiresAt, r.Previous.RotatedTo, tt.wantStatus, tt.wantExpires, r.ID)
			}
			// The new key has the old policy, times included.
			n := r.Record
			if n.Tenant != "acme" || !slices.Equal(n.Scopes, []string{"a", "b"}) || n.NotBefore != old.Record.NotBefore ||
				n.ExpiresAt != old.Record.ExpiresAt || n.RotatedTo != "" || n.Status != policy.StatusActive {
				t.Errorf("new key %+v: want the old key's policy", n)
			}
			if stored, _, err := f.store.Get(context.Background(), old.ID); err != nil || stored.ExpiresAt != tt.wantExpires {
				t.Errorf("stored old key: %+v, %v", stored, err)
			}
		})
	}
}

// An imported key rotates to a keygate key.
func TestRotateImported(t *testing.T) {
	f := newFixture(t)
	entries, err := f.svc.ParseImport([]byte("keys:\n  - key: legacy-0123456789abcdefghij\n    tenant: acme\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Import(context.Background(), entries, false); err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.Rotate(context.Background(), entries[0].ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r.Record.Imported || !r.Previous.Imported {
		t.Errorf("imported: new %v, old %v; want false, true", r.Record.Imported, r.Previous.Imported)
	}
}

func TestRotateRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	revoked := f.issue(t, keyadmin.Fields{Tenant: ptr("acme")})
	if _, err := f.svc.Revoke(ctx, revoked.ID, ""); err != nil {
		t.Fatal(err)
	}
	rotated := f.issue(t, keyadmin.Fields{Tenant: ptr("acme")})
	if _, err := f.svc.Rotate(ctx, rotated.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	expired := f.issue(t, keyadmin.Fields{Tenant: ptr("acme"), ExpiresIn: time.Hour})
	f.clock.Set(t0.Add(2 * time.Hour))
	tests := []struct {
		name  string
		id    string
		grace time.Duration
		kind  error
		text  string
	}{
		{"revoked", revoked.ID, time.Hour, keyadmin.ErrNotRotatable, "key " + revoked.ID + " is revoked; only active keys rotate"},
		{"already rotated", rotated.ID, time.Hour, keyadmin.ErrNotRotatable, "key " + rotated.ID + " was already rotated to "},
		{"expired", expired.ID, time.Hour, keyadmin.ErrNotRotatable, "key " + expired.ID + " has expired; create a new key instead"},
		{"unknown", "AAAAAAAAAAAA", time.Hour, keyadmin.ErrNotFound, "key not found"},
		{"not an id", "nope", time.Hour, keyadmin.ErrInvalidID, "not a key id"},
		{"negative grace", expired.ID, -time.Second, keyadmin.ErrInvalidInput, "grace: must be >= 0"},
	}
	before, _ := f.store.List(ctx)
	for _, tt := range tests {
		r, err := f.svc.Rotate(ctx, tt.id, tt.grace)
		if r != nil || !errors.Is(err, tt.kind) || !contains(err, tt.text) {
			t.Errorf("%s: %v, %v; want %v saying %q", tt.name, r, err, tt.kind, tt.text)
		}
	}
	if after, _ := f.store.List(ctx); len(after) != len(before) {
		t.Errorf("refused rotations issued keys: %d keys, was %d", len(after), len(before))
	}
}

func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

// failingUpdates is the file store with every Update failing: a fault.
type failingUpdates struct{ keyadmin.Store }

var errInjected = errors.New("injected: store unavailable")

func (failingUpdates) Update(context.Context, string, *policy.Record, int) error { return errInjected }

// When the old key cannot be retired, the new key exists and is returned
// (it is shown only once) with a *RotateError saying how to finish.
func TestRotateIncomplete(t *testing.T) {
	f := newFixture(t)
	old := f.issue(t, keyadmin.Fields{Tenant: ptr("acme")})
	svc := f.service(t, keyadmin.Config{}, failingUpdates{f.store})
	r, err := svc.Rotate(context.Background(), old.ID, time.Hour)
	var incomplete *keyadmin.RotateError
	if !errors.As(err, &incomplete) || !errors.Is(err, errInjected) || r == nil || r.RawKey == "" || r.Previous != nil {
		t.Fatalf("Rotate with updates failing: %+v, %v; want the new key and a *RotateError", r, err)
	}
	if incomplete.NewID != r.ID || incomplete.OldID != old.ID || !incomplete.GraceEnd.Equal(t0.Add(time.Hour)) {
		t.Errorf("RotateError %+v", incomplete)
	}
	if strings.Contains(err.Error(), r.RawKey) {
		t.Error("the error holds the raw key")
	}
	if _, err := f.svc.Get(context.Background(), r.ID); err != nil {
		t.Errorf("the new key is not stored: %v", err)
	}
	if k, err := f.svc.Get(context.Background(), old.ID); err != nil || k.Record.RotatedTo != "" {
		t.Errorf("old key: %+v, %v; want it unchanged", k, err)
	}
}
