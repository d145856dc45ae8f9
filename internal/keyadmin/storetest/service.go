package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// Through keyadmin.Service: the rules give the same answers on every store.

func ptr[T any](v T) *T { return &v }

// issue issues an active key for tenant.
func issue(t *testing.T, svc *keyadmin.Service, f keyadmin.Fields) *keyadmin.Issued {
	t.Helper()
	k, err := svc.Issue(ctxFor(t), f)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return k
}

func testServiceIssue(t *testing.T, f Fixture) {
	svc, _ := service(t, f, "")
	k := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme"), Scopes: &[]string{"orders:read"}, ExpiresIn: 24 * time.Hour})
	format, _ := policy.NewFormat(policy.DefaultPrefix)
	if id, err := format.Parse(k.RawKey); err != nil || id != k.ID {
		t.Fatalf("issued key parses to %q, %v; want id %s", id, err, k.ID)
	}
	h, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	if ok, err := h.Verify(k.RawKey, k.Record.Digest()); !ok || err != nil {
		t.Errorf("the stored hash does not verify the issued key: %v", err)
	}
	got, err := svc.Get(ctxFor(t), k.ID)
	if err != nil || !same(got.Record, k.Record) || got.Err != nil {
		t.Fatalf("Get = %+v, %v; want the issued record", got, err)
	}
	keys, err := svc.List(ctxFor(t), keyadmin.Filter{Tenant: "acme", Status: keyadmin.Active})
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Errorf("List = %+v, %v; want the issued key", keys, err)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v %#v", k, *k), fmt.Sprint(got)} {
		if strings.Contains(s, k.RawKey) {
			t.Error("printing an Issued or Key shows the raw key")
		}
	}
}

func testServiceModify(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	svc, _ := service(t, f, "")
	k := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	before := len(journal(t, f))
	ch, err := svc.Modify(ctx, k.ID, keyadmin.Fields{Scopes: &[]string{"b"}, SetHeaders: map[string]string{"x-plan": "gold"}})
	if err != nil || len(ch.Warnings) != 0 || !slices.Equal(ch.Record.Scopes, []string{"b"}) || ch.Record.Headers["x-plan"] != "gold" {
		t.Fatalf("Modify = %+v, %v", ch, err)
	}
	refused := []struct {
		name string
		f    keyadmin.Fields
		kind error
	}{
		{"invalid record", keyadmin.Fields{AllowedCIDRs: &[]string{"10.0.0.1/8"}}, keyadmin.ErrInvalidInput},
		{"burst without a rate limit", keyadmin.Fields{RateBurst: ptr(5)}, keyadmin.ErrNoRateLimit},
	}
	for _, r := range refused {
		if _, err := svc.Modify(ctx, k.ID, r.f); !errors.Is(err, r.kind) {
			t.Errorf("Modify with %s: %v, want %v", r.name, err, r.kind)
		}
	}
	if got, err := svc.Get(ctx, k.ID); err != nil || !same(got.Record, ch.Record) {
		t.Errorf("refused modifies changed the record: %+v, %v", got, err)
	}
	unknown, _ := newRecord(t, "x")
	if _, err := svc.Modify(ctx, unknown, keyadmin.Fields{Name: ptr("x")}); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("Modify of an unknown key: %v, want ErrNotFound", err)
	}
	rv, err := svc.Revoke(ctx, k.ID, "test")
	if err != nil || rv.Record.Status != policy.StatusRevoked || rv.Record.RevokedReason != "test" {
		t.Fatalf("Revoke = %+v, %v; want status revoked, revoked_reason \"test\"", rv, err)
	}
	if got, err := svc.Get(ctx, k.ID); err != nil || got.Record.RevokedReason != "test" {
		t.Fatalf("Get after Revoke with a reason = %+v, %v; want revoked_reason kept in the store", got, err)
	}
	checkJournal(t, f, before, JournalEntry{keyadmin.JournalOpUpdate, []string{k.ID}}, JournalEntry{keyadmin.JournalOpRevoke, []string{k.ID}})
}

func testServiceRotate(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	svc, c := service(t, f, "")
	old := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme"), Scopes: &[]string{"a", "b"}, ExpiresIn: 90 * 24 * time.Hour})
	before := len(journal(t, f))
	r, err := svc.Rotate(ctx, old.ID, time.Hour)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if r.ID == old.ID || r.RawKey == old.RawKey || r.PreviousID != old.ID || !slices.Equal(r.Record.Scopes, old.Record.Scopes) ||
		r.Record.ExpiresAt != old.Record.ExpiresAt || r.Record.RotatedTo != "" {
		t.Errorf("new key %+v: want a new id with the old policy", r.Record)
	}
	if want := c.Now().Add(time.Hour).Format(time.RFC3339); r.Previous.ExpiresAt != want || r.Previous.RotatedTo != r.ID ||
		r.Previous.Status != policy.StatusActive {
		t.Errorf("old key after rotate: %+v; want active, expiring %s, rotated to %s", r.Previous, want, r.ID)
	}
	for _, id := range []string{old.ID, r.ID} {
		if _, err := svc.Get(ctx, id); err != nil {
			t.Errorf("Get %s after rotate: %v", id, err)
		}
	}
	if _, err := svc.Rotate(ctx, old.ID, time.Hour); !errors.Is(err, keyadmin.ErrNotRotatable) {
		t.Errorf("second Rotate: %v, want ErrNotRotatable", err)
	}
	checkJournal(t, f, before, JournalEntry{keyadmin.JournalOpRotate, []string{old.ID}})
}

func testServiceDelete(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	svc, _ := service(t, f, "")
	k := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	var force *keyadmin.ForceError
	if _, err := svc.Delete(ctx, k.ID, false); !errors.As(err, &force) || force.Unreadable != nil || !errors.Is(err, keyadmin.ErrNeedsForce) {
		t.Fatalf("Delete of an active key without force: %v, want a *ForceError", err)
	}
	if _, err := svc.Revoke(ctx, k.ID, "test"); err != nil {
		t.Fatal(err)
	}
	before := len(journal(t, f))
	d, err := svc.Delete(ctx, k.ID, false)
	if err != nil || len(d.Warnings) != 0 {
		t.Fatalf("Delete of a revoked key = %+v, %v", d, err)
	}
	if (d.RestoreHint != "") != svc.Caps().Restore || strings.Contains(d.RestoreHint, "kg_") {
		t.Errorf("restore hint %q with Caps.Restore %v", d.RestoreHint, svc.Caps().Restore)
	}
	checkJournal(t, f, before, JournalEntry{keyadmin.JournalOpDelete, []string{k.ID}})
	if _, err := svc.Get(ctx, k.ID); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := svc.Modify(ctx, k.ID, keyadmin.Fields{Name: ptr("back")}); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("Modify after Delete: %v, want ErrNotFound", err)
	}
	if _, err := svc.Rotate(ctx, k.ID, time.Hour); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("Rotate after Delete: %v, want ErrNotFound", err)
	}
	if keys, err := svc.List(ctx, keyadmin.Filter{}); err != nil || len(keys) != 0 {
		t.Errorf("List after Delete = %+v, %v; want none", keys, err)
	}
	if _, err := svc.Delete(ctx, k.ID, true); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	forced := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	if _, err := svc.Delete(ctx, forced.ID, true); err != nil {
		t.Errorf("Delete of an active key with force: %v", err)
	}
}

// importFile holds one raw key and one hash; the raw one must never show.
const importFile = `keys:
  - key: "legacy-3f9a1c77e0b24d5e8a61c2f4b9d03e7a"
    tenant: acme
    scopes: [orders:read]
  - sha256: "669ea57322eb4b1a754f96f78d487f4d2a9f26cf0b024a16bbd7674a547c3c35"
    tenant: globex
`

func testServiceImport(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	svc, _ := service(t, f, "")
	entries, err := svc.ParseImport([]byte(importFile))
	if err != nil || len(entries) != 2 {
		t.Fatalf("ParseImport: %d entries, %v", len(entries), err)
	}
	ids := []string{entries[0].ID, entries[1].ID}
	run := func(dryRun bool, want ...keyadmin.ImportOutcome) {
		t.Helper()
		rep, err := svc.Import(ctx, entries, dryRun)
		if err != nil || len(rep.Rows) != len(want) || len(rep.Warnings) != 0 {
			t.Fatalf("Import(dry run %v) = %+v, %v", dryRun, rep, err)
		}
		for i, r := range rep.Rows {
			if r.ID != ids[i] || r.Outcome != want[i] {
				t.Errorf("row %d = %s %s, want %s %s", i, r.ID, r.Outcome, ids[i], want[i])
			}
		}
	}
	run(true, keyadmin.OutcomeChecked, keyadmin.OutcomeChecked)
	if keys, err := svc.List(ctx, keyadmin.Filter{}); err != nil || len(keys) != 0 {
		t.Fatalf("a dry run wrote keys: %+v, %v", keys, err)
	}
	before := len(journal(t, f))
	run(false, keyadmin.OutcomeImported, keyadmin.OutcomeImported)
	checkJournal(t, f, before, JournalEntry{Op: keyadmin.JournalOpNewKeys})
	run(false, keyadmin.OutcomeExists, keyadmin.OutcomeExists)
	checkJournal(t, f, before, JournalEntry{Op: keyadmin.JournalOpNewKeys}) // nothing new: no entry
	if _, err := svc.Modify(ctx, ids[0], keyadmin.Fields{Scopes: &[]string{"orders:write"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, ids[1], true); err != nil {
		t.Fatal(err)
	}
	run(false, keyadmin.OutcomeDiffers, keyadmin.OutcomeDeleted)
	for _, e := range journal(t, f) {
		if strings.Contains(fmt.Sprint(e), "legacy-") {
			t.Error("a journal entry holds the raw key")
		}
	}
}

// testServiceConcurrentModify: concurrent modifies of one key all land,
// one after the other (check-and-set, retried).
func testServiceConcurrentModify(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	svc, _ := service(t, f, "")
	k := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	_, v0, err := f.Store.Get(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 4
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = svc.Modify(ctx, k.ID, keyadmin.Fields{SetMetadata: map[string]string{fmt.Sprint("w", i): "1"}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	rec, v, err := f.Store.Get(ctx, k.ID)
	if err != nil || v != v0+writers || len(rec.Metadata) != writers {
		t.Errorf("after %d concurrent modifies: version %d (from %d), metadata %v, %v; want every change", writers, v, v0, rec.Metadata, err)
	}
}
