package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/policy"
)

// Tests in this package share one Vault dev server and do not run in
// parallel: some seal or kill it.
func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// fixture is a Store on the shared dev server with a base path of its own,
// plus a root client to inspect and tamper with what the Store wrote.
type fixture struct {
	store *Store
	vault *vaulttest.Vault
	kv    *vaultapi.KVv2
	base  string
}

// testConfig is DefaultConfig for the server at addr with a static token
// (none: set Auth), keygate's entries under base, and a request timeout a
// loaded test machine meets.
func testConfig(addr, token, base string) Config {
	c := DefaultConfig()
	c.Addr, c.Token, c.BasePath, c.Timeout = addr, token, base, 5*time.Second
	return c
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	v := vaulttest.Server(t)
	base := "test/" + randomHex(6)
	s, err := New(testConfig(v.Addr, v.Token, base))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, vault: v, kv: v.Client(t).KVv2("secret"), base: base}
}

func (f *fixture) keyPath(id string) string { return f.base + "/keys/" + id }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var format, _ = policy.NewFormat(policy.DefaultPrefix)

// newRecord returns a fresh key id and a valid record for it.
func newRecord(t *testing.T) (string, *policy.Record) {
	t.Helper()
	rawKey, id, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	h, err := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	if err != nil {
		t.Fatal(err)
	}
	return id, &policy.Record{
		Hash:         h.Hash(rawKey).String(),
		Name:         "ci key",
		Tenant:       "acme",
		Status:       policy.StatusActive,
		Scopes:       []string{"orders:read", "orders:write"},
		AllowedCIDRs: []string{"10.0.0.0/8"},
		Headers:      map[string]string{"x-tier": "gold"},
		ExpiresAt:    "2099-01-01T00:00:00Z",
	}
}

var ignoreCompiled = cmpopts.IgnoreUnexported(policy.Record{})

func TestCreateLookup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	if err := f.store.Create(ctx, id, rec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := f.store.Lookup(ctx, id)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if diff := cmp.Diff(rec, got, ignoreCompiled); diff != "" {
		t.Errorf("Lookup (-created +got):\n%s", diff)
	}
	if r := got.Compiled().Evaluate(&policy.Request{Now: time.Now(), RequiredScopes: []string{"orders:read"}}); r != policy.CIDRDenied {
		t.Errorf("Evaluate of the looked-up record = %v, want %v (it must be validated)", r, policy.CIDRDenied)
	}
	// The record's fields are the KV data, so the Vault UI shows them.
	kv, err := f.kv.Get(ctx, f.keyPath(id))
	if err != nil {
		t.Fatal(err)
	}
	if kv.Data["tenant"] != "acme" || kv.Data["status"] != "active" {
		t.Errorf("KV data = %v, want the record's fields at top level", kv.Data)
	}
	if err := f.store.Create(ctx, id, rec); !errors.Is(err, policy.ErrKeyExists) {
		t.Errorf("second Create = %v, want ErrKeyExists", err)
	}
}

func TestGetUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	if err := f.store.Create(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	got, version, err := f.store.Get(ctx, id)
	if err != nil || version != 1 {
		t.Fatalf("Get = version %d, %v; want 1, nil", version, err)
	}
	got.Status = policy.StatusRevoked
	if err := f.store.Update(ctx, id, got, version); err != nil {
		t.Fatalf("Update with the current version: %v", err)
	}
	if err := f.store.Update(ctx, id, got, version); !errors.Is(err, policy.ErrConflict) {
		t.Errorf("Update with a stale version = %v, want ErrConflict", err)
	}
	if err := f.store.Update(ctx, id, got, 0); err == nil {
		t.Error("Update with version 0: no error")
	}
	after, version, err := f.store.Get(ctx, id)
	if err != nil || version != 2 || after.Status != policy.StatusRevoked {
		t.Errorf("Get after Update = status %q version %d, %v; want revoked, 2", after.Status, version, err)
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ids, err := f.store.List(ctx)
	if err != nil || ids != nil {
		t.Fatalf("List of an empty folder = %v, %v; want nil, nil", ids, err)
	}
	var want []string
	for range 3 {
		id, rec := newRecord(t)
		if err := f.store.Create(ctx, id, rec); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	ids, err = f.store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, ids, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

// TestLookupNotFound: every way a key can have no live record.
func TestLookupNotFound(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(t *testing.T, path string) // nil: never written
	}{
		{"never written", nil},
		{"soft-deleted", func(t *testing.T, path string) { check(t, f.kv.Delete(ctx, path)) }},
		{"destroyed", func(t *testing.T, path string) { check(t, f.kv.Destroy(ctx, path, []int{1})) }},
		{"metadata deleted", func(t *testing.T, path string) { check(t, f.kv.DeleteMetadata(ctx, path)) }},
		{"latest deleted, older live", func(t *testing.T, path string) {
			_, err := f.kv.Put(ctx, path, map[string]any{"hash": "x"})
			check(t, err)
			check(t, f.kv.Delete(ctx, path))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, rec := newRecord(t)
			if tt.tamper != nil {
				check(t, f.store.Create(ctx, id, rec))
				tt.tamper(t, f.keyPath(id))
			}
			got, err := f.store.Lookup(ctx, id)
			if !errors.Is(err, policy.ErrKeyNotFound) || got != nil {
				t.Errorf("Lookup = %v, %v; want nil, ErrKeyNotFound", got, err)
			}
			if _, _, err := f.store.Get(ctx, id); !errors.Is(err, policy.ErrKeyNotFound) {
				t.Errorf("Get = %v, want ErrKeyNotFound", err)
			}
		})
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLookupInvalidRecord writes records past the Store, as someone editing
// Vault by hand would.
func TestLookupInvalidRecord(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	valid := func() map[string]any {
		_, rec := newRecord(t)
		return map[string]any{"hash": rec.Hash, "tenant": "acme", "status": "active"}
	}
	tests := []struct {
		name  string
		edit  func(map[string]any)
		field string // must appear in the error
	}{
		{"wrong type", func(m map[string]any) { m["scopes"] = "orders:read" }, `"scopes"`},
		{"number for string", func(m map[string]any) { m["tenant"] = 42 }, `"tenant"`},
		{"unknown field", func(m map[string]any) { m["admin"] = true }, `"admin"`},
		{"bad CIDR", func(m map[string]any) { m["allowed_cidrs"] = []string{"10.0.0.0/33"} }, `allowed_cidrs[0]`},
		{"missing hash", func(m map[string]any) { delete(m, "hash") }, `"hash"`},
		{"bad status", func(m map[string]any) { m["status"] = "enabled" }, `"status"`},
		{"unparsable date", func(m map[string]any) { m["expires_at"] = "tomorrow" }, `"expires_at"`},
		{"CRLF in header", func(m map[string]any) { m["headers"] = map[string]string{"x-a": "b\r\nx-admin: 1"} }, `headers.x-a`},
		{"1 MB record", func(m map[string]any) { m["name"] = strings.Repeat("a", 1<<20) }, `bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, _ := newRecord(t)
			data := valid()
			tt.edit(data)
			if _, err := f.kv.Put(ctx, f.keyPath(id), data); err != nil {
				t.Fatal(err)
			}
			got, err := f.store.Lookup(ctx, id)
			if !errors.Is(err, policy.ErrInvalidRecord) || got != nil {
				t.Fatalf("Lookup = %v, %v; want nil, ErrInvalidRecord", got, err)
			}
			var verr *Error
			if errors.As(err, &verr) || errors.Is(err, policy.ErrKeyNotFound) {
				t.Errorf("Lookup error %v is also transient or not-found", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.field) || !strings.Contains(msg, id) {
				t.Errorf("Lookup error %q does not name %s and the key id", msg, tt.field)
			}
			if _, version, err := f.store.Get(ctx, id); !errors.Is(err, policy.ErrInvalidRecord) || version != 1 {
				t.Errorf("Get = version %d, %v; want 1, ErrInvalidRecord (so the record can be fixed)", version, err)
			}
		})
	}
}

// TestInvalidRecordNotWritten: Create and Update validate first.
func TestInvalidRecordNotWritten(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	bad := *rec
	bad.Tenant, bad.AllowedCIDRs = "", []string{"10.0.0.1/8"}
	err := f.store.Create(ctx, id, &bad)
	if !errors.Is(err, policy.ErrInvalidRecord) || !strings.Contains(err.Error(), `"tenant"`) || !strings.Contains(err.Error(), "allowed_cidrs[0]") {
		t.Errorf("Create(invalid) = %v, want ErrInvalidRecord naming every bad field", err)
	}
	if _, err := f.kv.GetMetadata(ctx, f.keyPath(id)); !errors.Is(err, vaultapi.ErrSecretNotFound) {
		t.Errorf("after a rejected Create, Vault has an entry (err %v)", err)
	}
	check(t, f.store.Create(ctx, id, rec))
	if err := f.store.Update(ctx, id, &bad, 1); !errors.Is(err, policy.ErrInvalidRecord) {
		t.Errorf("Update(invalid) = %v, want ErrInvalidRecord", err)
	}
	if _, version, err := f.store.Get(ctx, id); err != nil || version != 1 {
		t.Errorf("after a rejected Update: version %d, %v; want 1", version, err)
	}
}

// TestRecordSizeLimit: a record that encodes to exactly
// policy.MaxRecordSize bytes is written and reads back whole; one byte more
// is refused and not written.
func TestRecordSizeLimit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, over := range []int{0, 1} {
		id, rec := newRecord(t)
		rec.Metadata = map[string]string{"pad": ""}
		b, err := json.Marshal(rec)
		check(t, err)
		rec.Metadata["pad"] = strings.Repeat("p", policy.MaxRecordSize-len(b)+over)
		if b, _ = json.Marshal(rec); len(b) != policy.MaxRecordSize+over {
			t.Fatalf("padded record is %d bytes, want %d", len(b), policy.MaxRecordSize+over)
		}
		err = f.store.Create(ctx, id, rec)
		if over > 0 {
			if !errors.Is(err, policy.ErrInvalidRecord) {
				t.Errorf("Create of %d bytes = %v, want ErrInvalidRecord", len(b), err)
			}
			if _, err := f.kv.GetMetadata(ctx, f.keyPath(id)); !errors.Is(err, vaultapi.ErrSecretNotFound) {
				t.Errorf("after a refused Create of %d bytes, Vault has an entry (err %v)", len(b), err)
			}
			continue
		}
		check(t, err)
		got, err := f.store.Lookup(ctx, id)
		if err != nil {
			t.Fatalf("Lookup of a record of %d bytes: %v", len(b), err)
		}
		if diff := cmp.Diff(rec, got, ignoreCompiled); diff != "" {
			t.Errorf("Lookup of a record of %d bytes (-created +got):\n%s", len(b), diff)
		}
	}
}

func TestPeppers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p, err := f.store.Peppers(ctx)
	if err != nil || p.Current != 0 || p.Versions != nil {
		t.Fatalf("Peppers with no entry = %+v, %v; want zero, nil", p, err)
	}
	for want := 1; want <= 2; want++ {
		if v, err := f.store.InitPepper(ctx); err != nil || v != want {
			t.Fatalf("InitPepper = %d, %v; want %d", v, err, want)
		}
	}
	p, err = f.store.Peppers(ctx)
	if err != nil || p.Current != 2 || len(p.Versions) != 2 || len(p.Versions[1]) != 32 || string(p.Versions[1]) == string(p.Versions[2]) {
		t.Fatalf("Peppers after two rotations = current %d, %d versions, %v", p.Current, len(p.Versions), err)
	}
	if _, err := policy.NewHasher(policy.AlgHMACSHA256, p); err != nil {
		t.Errorf("NewHasher(peppers from Vault): %v", err)
	}

	pepperPath := f.base + "/pepper"
	_, err = f.kv.Put(ctx, pepperPath, map[string]any{"current": 3, "versions": map[string]string{"3": "c2hvcnQ="}})
	check(t, err)
	if _, err := f.store.Peppers(ctx); err == nil || !strings.Contains(err.Error(), "versions.3") || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Errorf("Peppers(short pepper) = %v, want an error naming versions.3 without the pepper", err)
	}
	check(t, f.kv.Delete(ctx, pepperPath))
	if _, err := f.store.Peppers(ctx); err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("Peppers(deleted entry) = %v, want an error", err)
	}
	if _, err := f.store.InitPepper(ctx); err == nil {
		t.Error("InitPepper over a deleted entry: no error (older versions would be lost)")
	}
}

// TestLookupConcurrent is for the race detector: one Store, many callers.
func TestLookupConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	check(t, f.store.Create(ctx, id, rec))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			lookupID := id
			if i%2 == 1 {
				lookupID, _ = newRecord(t) // unknown
			}
			if _, err := f.store.Lookup(ctx, lookupID); err != nil && !errors.Is(err, policy.ErrKeyNotFound) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
