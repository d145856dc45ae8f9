package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// benchRecords are n validated records that differ in every column the
// pages filter and sort by: 20 tenants, 50 owners, a tenth revoked, a
// third without expiry, some expired or expiring, some with findings.
func benchRecords(tb testing.TB, n int, now time.Time) map[string]*policy.Record {
	tb.Helper()
	recs := make(map[string]*policy.Record, n)
	for i := range n {
		id := fmt.Sprintf("bench%07d", i)
		sum := sha256.Sum256([]byte(id))
		created := now.Add(-time.Duration(i%400) * 24 * time.Hour)
		r := &policy.Record{
			Hash: "sha256:" + hex.EncodeToString(sum[:]), Name: fmt.Sprintf("service-%05d", (i*7919)%n),
			Tenant: fmt.Sprintf("tenant-%02d", i%20), Owner: fmt.Sprintf("team-%02d@example.com", i%50),
			Status: policy.StatusActive, Scopes: []string{"orders:read"},
			CreatedAt: created.Format(time.RFC3339), UpdatedAt: created.Format(time.RFC3339),
		}
		if i%10 == 0 {
			r.Status, r.RevokedReason = policy.StatusRevoked, "rotated"
		}
		if i%3 != 0 {
			r.ExpiresAt = now.Add(time.Duration(i%90-10) * 24 * time.Hour).Format(time.RFC3339)
		}
		if i%13 == 0 {
			r.Scopes = append(r.Scopes, "admin:*")
		}
		if i%7 == 0 {
			r.AllowedCIDRs = []string{"10.0.0.0/8"}
		}
		if err := r.Validate(); err != nil {
			tb.Fatalf("record %d: %v", i, err)
		}
		recs[id] = r
	}
	return recs
}

// memStore is a keyadmin.Store in memory, to measure the index and pages
// without the file store's cost (each file-store Get parses the whole file).
type memStore struct {
	mu   sync.RWMutex
	recs map[string]*policy.Record
}

func (m *memStore) Get(_ context.Context, id string) (*policy.Record, int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.recs[id]
	if !ok {
		return nil, 0, fmt.Errorf("key %s: %w", id, policy.ErrKeyNotFound)
	}
	c := *r
	return &c, 1, nil
}

func (m *memStore) Create(_ context.Context, id string, rec *policy.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[id] = rec
	return nil
}

func (m *memStore) Update(_ context.Context, id string, rec *policy.Record, _ int) error {
	return m.Create(context.Background(), id, rec)
}

func (m *memStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, id)
	return nil
}

func (m *memStore) List(context.Context) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.recs)), nil
}

func (m *memStore) Peppers(context.Context) (policy.Peppers, error) { return policy.Peppers{}, nil }

// writeKeyFile writes recs as a file store's file (JSON, which the store
// reads as YAML) and opens it.
func writeKeyFile(tb testing.TB, recs map[string]*policy.Record) *filestore.Store {
	tb.Helper()
	data, err := json.Marshal(map[string]any{"keys": recs})
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "keys.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	s, err := filestore.Open(path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func benchGrant(tb testing.TB, store keyadmin.Store, changes Changes) *Grant {
	tb.Helper()
	svc, err := keyadmin.New(keyadmin.Config{}, store)
	if err != nil {
		tb.Fatal(err)
	}
	return &Grant{Who: Who{Name: "bench"}, Admin: svc, Changes: changes}
}

// benchConfig never reloads or lists on its own: each benchmark says what
// it measures.
func benchConfig(now time.Time) Config {
	cfg := DefaultConfig()
	cfg.Now, cfg.Log = func() time.Time { return now }, slog.New(slog.DiscardHandler)
	cfg.ListEvery, cfg.ReloadEvery = 1000*time.Hour, 1000*time.Hour
	return cfg
}

// loadedIndex is an index of n keys, loaded from memory.
func loadedIndex(b *testing.B, n int, now time.Time) (*index, *Config) {
	b.Helper()
	cfg := benchConfig(now)
	ix := newIndex(&cfg)
	if err := ix.load(context.Background(), benchGrant(b, &memStore{recs: benchRecords(b, n, now)}, nil), now); err != nil {
		b.Fatal(err)
	}
	return ix, &cfg
}

// A filtered, sorted page of 10,000 keys.
func BenchmarkIndexQuery(b *testing.B) {
	now := ixT0
	ix, _ := loadedIndex(b, 10_000, now)
	for _, bb := range []struct {
		name string
		q    query
	}{
		{"all,sort=-expires,page=3", query{Sort: "-expires", Page: 3}},
		{"q+status+tenant+finding,sort=name", query{Q: "service-01", Status: "active", Tenant: "tenant-03", Finding: "any", Sort: "name"}},
		{"expiring=30,sort=owner", query{Expiring: 30, Sort: "owner"}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := ix.query(bb.q, 50, now); res.Total == 0 {
					b.Fatal("no keys")
				}
			}
		})
	}
}

// The overview's counts over 10,000 keys (the keys page computes it too,
// for its tenant list).
func BenchmarkIndexSummary(b *testing.B) {
	now := ixT0
	ix, _ := loadedIndex(b, 10_000, now)
	b.ReportAllocs()
	for b.Loop() {
		if s := ix.summary(now); s.Total != 10_000 {
			b.Fatalf("total %d", s.Total)
		}
	}
}

// The whole /keys handler for a signed-in person, 10,000 keys, a filtered
// sorted page: session, CSRF-free GET, index freshness check, query,
// summary, template.
func BenchmarkKeysPage(b *testing.B) {
	now := ixT0
	cfg := benchConfig(now)
	svc, err := keyadmin.New(keyadmin.Config{}, &memStore{recs: benchRecords(b, 10_000, now)})
	if err != nil {
		b.Fatal(err)
	}
	auth := &LinkAuth{Admin: svc, LinkTTL: time.Minute, Now: cfg.Now}
	c, err := New(cfg, auth)
	if err != nil {
		b.Fatal(err)
	}
	link, err := auth.NewLink()
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login/link?t="+link, nil))
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) == 0 {
		b.Fatalf("sign-in = %d", rec.Code)
	}
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s = %d: %s", path, rec.Code, rec.Body)
		}
		return rec
	}
	get("/keys") // loads the index
	for _, path := range []string{"/keys", "/keys?status=active&sort=-expires&page=3", "/keys?q=service-01&finding=any&sort=name",
		"/keys/bench0000042"} { // a key's page re-audits the whole index (index.put)
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				get(path)
			}
		})
	}
}

// A full load of every key: from memory (the index's own cost) and from a
// file store, which keyadmin reads in one parse (its BulkReader; a Get per
// key would parse the whole file n times: 10,000 keys took about an hour).
func BenchmarkIndexLoad(b *testing.B) {
	now := ixT0
	for _, bb := range []struct {
		store string
		n     int
	}{{"mem", 10_000}, {"file", 10_000}} {
		b.Run(fmt.Sprintf("store=%s/keys=%d", bb.store, bb.n), func(b *testing.B) {
			recs := benchRecords(b, bb.n, now)
			var store keyadmin.Store = &memStore{recs: recs}
			if bb.store == "file" {
				store = writeKeyFile(b, recs)
			}
			g := benchGrant(b, store, nil)
			cfg := benchConfig(now)
			b.ReportAllocs()
			for b.Loop() {
				ix := newIndex(&cfg)
				if err := ix.load(context.Background(), g, now); err != nil || len(ix.rows) != bb.n {
					b.Fatalf("load: %d rows, %v", len(ix.rows), err)
				}
			}
		})
	}
}

// tenChanged is a journal that names the same 10 keys at every read.
type tenChanged struct{ ids []string }

func (t tenChanged) ChangedSince(_ context.Context, after int) ([]string, bool, int, bool, error) {
	return t.ids, false, after + 1, true, nil
}

// A journal read naming 10 changed keys, on an index of 10,000: the ids
// are re-read. (Only Vault has a journal; the file store is reloaded whole.)
func BenchmarkIndexJournalRefresh(b *testing.B) {
	start := ixT0
	recs := benchRecords(b, 10_000, start)
	var changed []string
	for i := range 10 {
		changed = append(changed, fmt.Sprintf("bench%07d", i*997))
	}
	for _, name := range []string{"mem"} {
		b.Run("store="+name, func(b *testing.B) {
			var store keyadmin.Store = &memStore{recs: recs}
			if name == "file" {
				store = writeKeyFile(b, recs)
			}
			g := benchGrant(b, store, tenChanged{changed})
			now := start
			cfg := benchConfig(start)
			cfg.Now = func() time.Time { return now }
			ix := newIndex(&cfg)
			if err := ix.load(context.Background(), benchGrant(b, &memStore{recs: recs}, nil), now); err != nil {
				b.Fatal(err)
			}
			ix.version = 0
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(cfg.JournalEvery)
				if err := ix.update(context.Background(), g); err != nil {
					b.Fatal(err)
				}
			}
			if ix.version == 0 {
				b.Fatal("the journal was not read")
			}
		})
	}
}
