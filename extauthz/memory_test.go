package extauthz

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/keygate/keygate/policy"
)

// parsingStore returns a fresh record per id, parsed from JSON as the Vault
// store does, so each cache entry owns its record like in production.
type parsingStore struct{ doc []byte }

func (s parsingStore) Lookup(_ context.Context, keyID string) (*policy.Record, error) {
	return policy.ParseRecord(s.doc)
}

// BenchmarkCachedKeyHeap reports the heap each cached key costs: record,
// prebuilt response parts, cache entry and LRU bookkeeping. Run with
// -benchtime 1x; filling 1M keys takes a while.
func BenchmarkCachedKeyHeap(b *testing.B) {
	rec := newRecord(b, testKey, func(r *policy.Record) {
		r.Name, r.Owner = "orders service, production", "team-orders@example.com"
		r.CreatedAt, r.UpdatedAt, r.ExpiresAt = "2026-11-29T10:00:00Z", "2026-11-29T10:00:00Z", "2027-03-01T00:00:00Z"
	})
	doc, err := json.Marshal(rec)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(heapPerKey(b, n, parsingStore{doc}), "B/key")
			}
		})
	}
}

func heapPerKey(b *testing.B, n int, store Store) float64 {
	cfg := DefaultConfig()
	cfg.CacheSize, cfg.StoreReadRate = n, -1
	srv, err := NewServer(cfg, store, testHasher, discardLogger)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%012d", i)
	}
	before := heapInUse()
	ctx := context.Background()
	for _, id := range ids {
		if _, _, reason := srv.cache.get(ctx, id); reason != policy.Allowed {
			b.Fatalf("fill: %v", reason)
		}
	}
	after := heapInUse()
	if srv.cache.found.Len() != n {
		b.Fatalf("cache holds %d keys, want %d", srv.cache.found.Len(), n)
	}
	runtime.KeepAlive(srv)
	return float64(after-before) / float64(n)
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
