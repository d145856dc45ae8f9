package keyadmin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
)

// Delete needs force for a key that may be in use (active and unexpired)
// or whose status is unknown (its record does not validate).
func TestDeleteForceRules(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the id to delete.
		setup      func(t *testing.T, f *fixture) string
		force      bool
		kind       error // nil: deleted
		unreadable bool  // the *ForceError says the status is unknown
	}{
		{"active, no expiry", active(keyadmin.Fields{}), false, keyadmin.ErrNeedsForce, false},
		{"active, expiring later", active(keyadmin.Fields{ExpiresIn: time.Hour}), false, keyadmin.ErrNeedsForce, false},
		{"active, not yet valid", active(keyadmin.Fields{NotBefore: ptr(t0.Add(time.Hour))}), false, keyadmin.ErrNeedsForce, false},
		{"active with force", active(keyadmin.Fields{}), true, nil, false},
		{"active, expired", expired, false, nil, false},
		{"revoked", revoked, false, nil, false},
		{"invalid record", invalidRecord, false, keyadmin.ErrNeedsForce, true},
		// The file store refuses writes while its file holds an invalid
		// record (fix it by hand); force gets past the rule, not the store.
		{"invalid record with force", invalidRecord, true, errStoreRefuses, false},
		{"unknown", func(*testing.T, *fixture) string { return "AAAAAAAAAAAA" }, true, keyadmin.ErrNotFound, false},
		{"not an id", func(*testing.T, *fixture) string { return "kg_notanid" }, true, keyadmin.ErrInvalidID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			id := tt.setup(t, f)
			d, err := f.svc.Delete(context.Background(), id, tt.force)
			if tt.kind == nil {
				if err != nil || d.ID != id || d.RestoreHint != "" || len(d.Warnings) != 0 {
					t.Fatalf("Delete = %+v, %v; want deleted", d, err)
				}
				if _, err := f.svc.Get(context.Background(), id); !errors.Is(err, keyadmin.ErrNotFound) {
					t.Errorf("Get after Delete: %v, want ErrNotFound", err)
				}
				return
			}
			var fe *keyadmin.ForceError
			if tt.kind == errStoreRefuses {
				if d != nil || err == nil || errors.Is(err, keyadmin.ErrNotFound) || errors.As(err, &fe) {
					t.Fatalf("Delete = %+v, %v; want the store's refusal", d, err)
				}
				return
			}
			if d != nil || !errors.Is(err, tt.kind) || errors.As(err, &fe) && (fe.Unreadable != nil) != tt.unreadable {
				t.Fatalf("Delete = %+v, %v; want %v (unreadable %v)", d, err, tt.kind, tt.unreadable)
			}
			if tt.kind == keyadmin.ErrNeedsForce {
				if _, _, err := f.store.Get(context.Background(), id); errors.Is(err, keyadmin.ErrNotFound) {
					t.Error("a refused Delete deleted the key")
				}
			}
		})
	}
}

func active(fields keyadmin.Fields) func(t *testing.T, f *fixture) string {
	return func(t *testing.T, f *fixture) string {
		fields.Tenant = ptr("acme")
		return f.issue(t, fields).ID
	}
}

func expired(t *testing.T, f *fixture) string {
	id := f.issue(t, keyadmin.Fields{Tenant: ptr("acme"), ExpiresIn: time.Hour}).ID
	f.clock.Set(t0.Add(time.Hour))
	return id
}

func revoked(t *testing.T, f *fixture) string {
	id := f.issue(t, keyadmin.Fields{Tenant: ptr("acme")}).ID
	if _, err := f.svc.Revoke(context.Background(), id, ""); err != nil {
		t.Fatal(err)
	}
	return id
}

func invalidRecord(t *testing.T, f *fixture) string {
	const id = "BBBBBBBBBBBB"
	f.handEdit(t, id, "{hash: 'sha256:"+zeros64+"', tenant: acme, status: paused}")
	return id
}

// errStoreRefuses: the store refuses the write (any error but not found).
var errStoreRefuses = errors.New("the store refuses")

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"

// deleteThen is the file store whose Delete does the real delete (or not)
// and then fails: a fault, as when Vault deletes the record but not its
// usage entry.
type deleteThen struct {
	keyadmin.Store
	deletes bool
}

func (d deleteThen) Delete(ctx context.Context, id string) error {
	if d.deletes {
		if err := d.Store.Delete(ctx, id); err != nil {
			return err
		}
	}
	return errInjected
}

// A Delete that fails after the record is gone is a warning; one that
// fails with the record still there is an error.
func TestDeleteFailures(t *testing.T) {
	for _, deletes := range []bool{true, false} {
		f := newFixture(t)
		id := revoked(t, f)
		d, err := f.service(t, keyadmin.Config{}, deleteThen{f.store, deletes}).Delete(context.Background(), id, false)
		_, _, after := f.store.Get(context.Background(), id)
		switch {
		case deletes && (err != nil || len(d.Warnings) != 1 || !errors.Is(d.Warnings[0], errInjected)):
			t.Errorf("record deleted, then a failure: %+v, %v; want a warning", d, err)
		case !deletes && (d != nil || !errors.Is(err, errInjected) || after != nil):
			t.Errorf("delete failed: %+v, %v (record: %v); want the error and the record kept", d, err, after)
		}
	}
}
