package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// TestUsageRoundTrip: a recorded use reads back; a key never used reads as
// not found; a later write replaces the earlier one.
func TestUsageRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, _ := newRecord(t)
	if at, ok, err := f.store.LastUsed(ctx, id); err != nil || ok || !at.IsZero() {
		t.Fatalf("LastUsed of an unused key = %v, %v, %v; want zero, false, nil", at, ok, err)
	}
	first := time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, at := range []time.Time{first, first.Add(time.Hour)} {
		if err := f.store.RecordUsage(ctx, id, at); err != nil {
			t.Fatal(err)
		}
		got, ok, err := f.store.LastUsed(ctx, id)
		if err != nil || !ok || !got.Equal(at) || got.Location() != time.UTC {
			t.Fatalf("LastUsed = %v, %v, %v; want %v in UTC", got, ok, err, at.UTC())
		}
	}
}

// TestUsageBadEntries: a hand-written usage entry that does not parse is an
// error naming the key, never a silent "never used"; bad ids are refused
// without echoing them.
func TestUsageBadEntries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for name, data := range map[string]map[string]any{
		"no time":    {"other": "x"},
		"not a time": {"last_used": "yesterday"},
		"wrong type": {"last_used": 12},
	} {
		t.Run(name, func(t *testing.T) {
			id, _ := newRecord(t)
			if _, err := f.kv.Put(ctx, f.base+"/usage/"+id, data); err != nil {
				t.Fatal(err)
			}
			_, ok, err := f.store.LastUsed(ctx, id)
			if err == nil || ok || !strings.Contains(err.Error(), id) {
				t.Fatalf("LastUsed = %v, %v; want an error naming %s", ok, err, id)
			}
		})
	}
	raw := "kg_" + strings.Repeat("a", 50)
	for _, err := range []error{
		f.store.RecordUsage(ctx, raw, time.Now()),
		func() error { _, _, err := f.store.LastUsed(ctx, raw); return err }(),
		f.store.Delete(ctx, raw),
	} {
		if !errors.Is(err, ErrInvalidID) || strings.Contains(err.Error(), raw) {
			t.Errorf("bad id: %v; want ErrInvalidID without the argument", err)
		}
	}
}

// TestDelete: a deleted key is unknown to Lookup and Get, stays listed by
// Vault (soft delete) and can be restored by rolling back to the version
// before Delete's marker; an update from a read made before the delete
// fails; an invalid record can be deleted; a missing key is ErrKeyNotFound.
func TestDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	if err := f.store.Create(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordUsage(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, before, err := f.store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Update(ctx, id, rec, before); !errors.Is(err, policy.ErrConflict) {
		t.Errorf("update from a read before the delete: %v, want ErrConflict (it would bring the key back)", err)
	}
	if _, err := f.store.Lookup(ctx, id); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("Lookup after delete: %v, want ErrKeyNotFound", err)
	}
	if _, ok, err := f.store.LastUsed(ctx, id); ok || err != nil {
		t.Errorf("usage after delete: %v, %v; want gone", ok, err)
	}
	if err := f.store.Create(ctx, id, rec); !errors.Is(err, policy.ErrKeyExists) {
		t.Errorf("re-create a deleted id: %v, want ErrKeyExists (ids are never reused)", err)
	}
	if err := f.store.Delete(ctx, id); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("delete twice: %v, want ErrKeyNotFound", err)
	}
	if _, err := f.kv.Rollback(ctx, f.keyPath(id), before); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Lookup(ctx, id); err != nil {
		t.Errorf("Lookup after vault kv rollback: %v", err)
	}

	bad, _ := newRecord(t)
	if _, err := f.kv.Put(ctx, f.keyPath(bad), map[string]any{"status": "maybe"}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(ctx, bad); err != nil {
		t.Errorf("delete an invalid record: %v", err)
	}
	if _, err := f.store.Lookup(ctx, bad); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("Lookup of the deleted invalid record: %v, want ErrKeyNotFound", err)
	}
}
