package storetest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// The raw store: what keyadmin relies on.

func testCreateGetUpdate(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	id, rec := newRecord(t, "acme")
	if err := f.Store.Create(ctx, id, rec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, v, err := f.Store.Get(ctx, id)
	if err != nil || v < 1 || !same(got, rec) {
		t.Fatalf("Get after Create = %+v, version %d, %v; want the record at a version >= 1", got, v, err)
	}
	changed := *got
	changed.Tenant = "globex"
	if err := f.Store.Update(ctx, id, &changed, v); err != nil {
		t.Fatalf("Update at the version read: %v", err)
	}
	got2, v2, err := f.Store.Get(ctx, id)
	if err != nil || v2 <= v || got2.Tenant != "globex" {
		t.Fatalf("Get after Update = %+v, version %d, %v; want tenant globex past version %d", got2, v2, err, v)
	}
	stale := *got2
	stale.Tenant = "initech"
	for _, bad := range []int{v, v2 + 1} {
		if err := f.Store.Update(ctx, id, &stale, bad); !errors.Is(err, keyadmin.ErrConflict) {
			t.Errorf("Update at version %d (current %d): %v, want ErrConflict", bad, v2, err)
		}
	}
	if got3, v3, err := f.Store.Get(ctx, id); err != nil || v3 != v2 || got3.Tenant != "globex" {
		t.Errorf("after refused updates: %+v, version %d, %v; want globex at %d", got3, v3, err, v2)
	}
}

func testCreateTakenID(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	id, rec := newRecord(t, "acme")
	if err := f.Store.Create(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	_, other := newRecord(t, "globex")
	if err := f.Store.Create(ctx, id, other); !errors.Is(err, keyadmin.ErrExists) {
		t.Errorf("Create at a taken id: %v, want ErrExists", err)
	}
	if got, _, err := f.Store.Get(ctx, id); err != nil || !same(got, rec) {
		t.Errorf("the first record was overwritten: %+v, %v", got, err)
	}
}

func testInvalidRecordNotWritten(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	id, rec := newRecord(t, "acme")
	bad := &policy.Record{Hash: rec.Hash, Tenant: "acme", Status: "paused"}
	if err := f.Store.Create(ctx, id, bad); !errors.Is(err, keyadmin.ErrInvalidRecord) {
		t.Errorf("Create of an invalid record: %v, want ErrInvalidRecord", err)
	}
	if _, _, err := f.Store.Get(ctx, id); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Fatalf("after a refused Create: %v, want ErrNotFound", err)
	}
	if err := f.Store.Create(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	_, v, _ := f.Store.Get(ctx, id)
	if err := f.Store.Update(ctx, id, bad, v); !errors.Is(err, keyadmin.ErrInvalidRecord) {
		t.Errorf("Update to an invalid record: %v, want ErrInvalidRecord", err)
	}
	if got, v2, err := f.Store.Get(ctx, id); err != nil || v2 != v || !same(got, rec) {
		t.Errorf("after a refused Update: %+v, version %d (was %d), %v", got, v2, v, err)
	}
}

func testNotFound(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	id, rec := newRecord(t, "acme")
	if got, _, err := f.Store.Get(ctx, id); !errors.Is(err, keyadmin.ErrNotFound) || got != nil {
		t.Errorf("Get of an unknown id: %+v, %v; want ErrNotFound", got, err)
	}
	if err := f.Store.Delete(ctx, id); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("Delete of an unknown id: %v, want ErrNotFound", err)
	}
	// Vault says a check-and-set mismatch (ErrConflict), the file store
	// ErrNotFound: either way nothing is written.
	if err := f.Store.Update(ctx, id, rec, 1); err == nil {
		t.Error("Update of an unknown id succeeded")
	}
	if _, _, err := f.Store.Get(ctx, id); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("after Update of an unknown id: %v, want ErrNotFound", err)
	}
}

// testConcurrentUpdates: two writers at one version: exactly one wins.
func testConcurrentUpdates(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	id, rec := newRecord(t, "acme")
	if err := f.Store.Create(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		_, v, err := f.Store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		tenants := []string{"a", "b"}
		errs := make([]error, len(tenants))
		var wg sync.WaitGroup
		for i, tenant := range tenants {
			r := *rec
			r.Tenant = tenant
			wg.Go(func() { errs[i] = f.Store.Update(ctx, id, &r, v) })
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won < 0:
				won = i
			case err == nil:
				t.Fatalf("round %d: both updates at version %d succeeded", round, v)
			case !errors.Is(err, keyadmin.ErrConflict):
				t.Fatalf("round %d: the losing update: %v, want ErrConflict", round, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no update won: %v", round, errs)
		}
		if got, v2, err := f.Store.Get(ctx, id); err != nil || v2 != v+1 || got.Tenant != tenants[won] {
			t.Fatalf("round %d: %+v at version %d, %v; want the winner's tenant %q at %d", round, got, v2, err, tenants[won], v+1)
		}
	}
}

// testSoftDelete: a deleted key reads as not found, its recorded use (in a
// store that keeps use) goes with it, and its id is never reused.
func testSoftDelete(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	id, rec := newRecord(t, "acme")
	if err := f.Store.Create(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	if f.RecordUse != nil {
		f.RecordUse(t, id, time.Now())
	}
	_, v, err := f.Store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Store.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got, _, err := f.Store.Get(ctx, id); !errors.Is(err, keyadmin.ErrNotFound) || got != nil {
		t.Errorf("Get after Delete: %+v, %v; want ErrNotFound", got, err)
	}
	if usage, ok := f.Store.(keyadmin.UsageReader); ok && f.RecordUse != nil {
		if at, used, err := usage.LastUsed(ctx, id); used || err != nil {
			t.Errorf("LastUsed after Delete: %v, %v, %v; want no use recorded", at, used, err)
		}
	}
	defer checkStaleUpdate(t, f, id, rec, v)
	if err := f.Store.Delete(ctx, id); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	if err := f.Store.Create(ctx, id, rec); !errors.Is(err, keyadmin.ErrExists) {
		t.Errorf("Create at a deleted key's id: %v, want ErrExists (ids are never reused)", err)
	}
	if _, _, err := f.Store.Get(ctx, id); !errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("after Create at a deleted id: %v, want ErrNotFound", err)
	}
}

// checkStaleUpdate: an Update at the version read before the Delete fails
// and the key stays deleted: a stale read must never bring a key back.
func checkStaleUpdate(t *testing.T, f Fixture, id string, rec *policy.Record, v int) {
	t.Helper()
	ctx := ctxFor(t)
	err := f.Store.Update(ctx, id, rec, v)
	if _, _, after := f.Store.Get(ctx, id); err == nil || !errors.Is(after, keyadmin.ErrNotFound) {
		t.Errorf("Update from before a Delete: %v, then %v; want it refused and the key still deleted", err, after)
	}
}

func testList(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	if ids, err := f.Store.List(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("List of an empty store = %v, %v", ids, err)
	}
	var want []string
	for range 3 {
		id, rec := newRecord(t, "acme")
		if err := f.Store.Create(ctx, id, rec); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	slices.Sort(want)
	if ids, err := f.Store.List(ctx); err != nil || !slices.Equal(ids, want) {
		t.Errorf("List = %v, %v; want %v (sorted)", ids, err, want)
	}
	if err := f.Store.Delete(ctx, want[1]); err != nil {
		t.Fatal(err)
	}
	ids, err := f.Store.List(ctx)
	if err != nil || !slices.Contains(ids, want[0]) || !slices.Contains(ids, want[2]) || !slices.IsSorted(ids) {
		t.Errorf("List after a Delete = %v, %v; want %s and %s, sorted", ids, err, want[0], want[2])
	}
	// A store may list a deleted key (Vault does); Get then says so.
	if slices.Contains(ids, want[1]) {
		if _, _, err := f.Store.Get(ctx, want[1]); !errors.Is(err, keyadmin.ErrNotFound) {
			t.Errorf("a listed deleted key reads %v, want ErrNotFound", err)
		}
	}
}

// malformed are records that do not validate, as hand edits leave them.
var malformed = map[string]string{
	"bad status":    `{"hash":"sha256:%s","tenant":"acme","status":"paused"}`,
	"bad hash":      `{"hash":"md5:0","tenant":"acme","status":"active"}`,
	"wrong type":    `{"hash":"sha256:%s","tenant":7,"status":"active"}`,
	"unknown field": `{"hash":"sha256:%s","tenant":"acme","status":"active","scopez":["a"]}`,
	"no tenant":     `{"hash":"sha256:%s","status":"active"}`,
	"bad cidr":      `{"hash":"sha256:%s","tenant":"acme","status":"active","allowed_cidrs":["10.0.0.1/8"]}`,
}

// putMalformed stores each malformed record under a new id.
func putMalformed(t *testing.T, f Fixture) map[string]string {
	t.Helper()
	if f.PutRaw == nil {
		t.Skip("the store validates every write and has no raw write: it cannot hold a malformed record")
	}
	ids := map[string]string{}
	for name, tmpl := range malformed {
		id, _ := newRecord(t, "x")
		data := bytes.ReplaceAll([]byte(tmpl), []byte("%s"), bytes.Repeat([]byte("0"), 64))
		f.PutRaw(t, id, data)
		ids[name] = id
	}
	return ids
}

// testMalformed: a record that does not validate reads as invalid (never
// as missing, never as a usable record) and is listed.
func testMalformed(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	ids := putMalformed(t, f)
	listed, err := f.Store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range ids {
		rec, v, err := f.Store.Get(ctx, id)
		if rec != nil || !errors.Is(err, keyadmin.ErrInvalidRecord) || errors.Is(err, keyadmin.ErrNotFound) {
			t.Errorf("%s: Get = %+v, %v; want no record and ErrInvalidRecord", name, rec, err)
		}
		if v < 1 {
			t.Errorf("%s: Get gave version %d with the invalid record; want its version, to fix it", name, v)
		}
		if !slices.Contains(listed, id) {
			t.Errorf("%s: List %v lacks %s", name, listed, id)
		}
	}
}

func testPeppers(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	if p, err := f.Store.Peppers(ctx); err != nil || p.Current != 0 || len(p.Versions) != 0 {
		t.Fatalf("Peppers of an empty store = %+v, %v; want none", p, err)
	}
	if r, ok := f.Store.(keyadmin.PepperRotator); ok {
		for want := 1; want <= 2; want++ {
			if v, err := r.InitPepper(ctx); err != nil || v != want {
				t.Fatalf("InitPepper = %d, %v; want %d", v, err, want)
			}
		}
	} else {
		if f.SetPeppers == nil {
			t.Fatal("the store cannot rotate peppers and the fixture has no SetPeppers")
		}
		f.SetPeppers(t, policy.Peppers{Current: 2, Versions: map[int][]byte{1: bytes.Repeat([]byte{1}, 32), 2: bytes.Repeat([]byte{2}, 32)}})
	}
	p, err := f.Store.Peppers(ctx)
	if err != nil || p.Current != 2 || len(p.Versions[1]) < policy.MinPepperLen || len(p.Versions[2]) < policy.MinPepperLen ||
		bytes.Equal(p.Versions[1], p.Versions[2]) {
		t.Errorf("Peppers = current %d, %d versions, %v; want versions 1 and 2 (distinct), current 2", p.Current, len(p.Versions), err)
	}
}

// testMissingPepper: a record hashed under a pepper version the store
// lacks is refused, or stored, as the fixture says.
func testMissingPepper(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	id, rec := newRecord(t, "acme")
	rec.Hash = "hmac-sha256:v9:" + strings.Repeat("0", 64)
	err := f.Store.Create(ctx, id, rec)
	switch {
	case f.RefusesMissingPepper && !errors.Is(err, keyadmin.ErrInvalidRecord):
		t.Errorf("Create under a missing pepper: %v, want ErrInvalidRecord", err)
	case !f.RefusesMissingPepper && err != nil:
		t.Errorf("Create under a missing pepper: %v; the fixture says the store keeps it", err)
	}
}

// testCapabilities: the fixture and the store agree on what it can do.
func testCapabilities(t *testing.T, f Fixture) {
	_, journal := f.Store.(keyadmin.Journal)
	_, usage := f.Store.(keyadmin.UsageReader)
	if journal != (f.Journal != nil) {
		t.Errorf("store is a keyadmin.Journal: %v; fixture reads a journal: %v", journal, f.Journal != nil)
	}
	if usage != (f.RecordUse != nil) {
		t.Errorf("store is a keyadmin.UsageReader: %v; fixture records use: %v", usage, f.RecordUse != nil)
	}
	if !journal {
		return
	}
	ctx := ctxFor(t)
	id, _ := newRecord(t, "x")
	if err := f.Store.(keyadmin.Journal).AppendJournal(ctx, keyadmin.JournalOpUpdate, id); err != nil {
		t.Fatal(err)
	}
	checkJournal(t, f, 0, JournalEntry{Op: keyadmin.JournalOpUpdate, IDs: []string{id}})
}
