package extauthz

import (
	"testing"
	"time"
)

// evictions are CacheStats' eviction counts, by cause.
type evictions struct{ size, sweep, explicit uint64 }

func wantEvictions(t *testing.T, e *env, want evictions) {
	t.Helper()
	st := e.srv.CacheStats()
	got := evictions{st.SizeEvictions, st.SweepEvictions, st.ExplicitEvictions}
	if got != want {
		t.Errorf("evictions %+v, want %+v", got, want)
	}
	if st.Evictions != want.size+want.sweep+want.explicit {
		t.Errorf("Evictions %d, want the sum of %+v", st.Evictions, want)
	}
}

// TestEvictionsForSize: a full cache pushes out its least recently used
// record for a new one, counted as a size eviction; refreshing a cached
// record, or replacing one whose key is gone by an unknown id, is not an
// eviction.
func TestEvictionsForSize(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CacheSize, c.FoundTTL = 2, time.Second })
	k2, id2 := e.newKey(nil)
	k3, _ := e.newKey(nil)
	mustOutcome(t, e, testKey, "allowed")
	mustOutcome(t, e, k2, "allowed")
	e.clock.Advance(2 * time.Second)
	mustOutcome(t, e, testKey, "allowed") // re-read into its own slot
	wantReads(t, e, 3)
	wantEvictions(t, e, evictions{})

	mustOutcome(t, e, k3, "allowed") // the cache is full: k2, least recently used, goes
	wantEvictions(t, e, evictions{size: 1})
	if st := e.srv.CacheStats(); st.Records != 2 {
		t.Errorf("%d records cached, want 2 (CacheSize)", st.Records)
	}
	mustOutcome(t, e, k2, "allowed") // read again, pushing out testKey
	wantReads(t, e, 5)
	wantEvictions(t, e, evictions{size: 2})

	e.store.set(func(s *fakeStore) { delete(s.recs, id2) })
	e.clock.Advance(2 * time.Second)
	mustOutcome(t, e, k2, "unknown_key") // its record becomes an unknown id
	wantEvictions(t, e, evictions{size: 2})
}

// TestEvictionsBySweep: records Sweep drops are sweep evictions; unknown
// ids it drops are not records.
func TestEvictionsBySweep(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FoundTTL, c.StaleTTL, c.NotFoundTTL = time.Second, time.Second, time.Second })
	k2, _ := e.newKey(nil)
	mustOutcome(t, e, testKey, "allowed")
	mustOutcome(t, e, k2, "allowed")
	mustOutcome(t, e, otherKey, "unknown_key")
	e.clock.Advance(2 * time.Second)
	if r, u := e.srv.Sweep(); r != 2 || u != 1 {
		t.Fatalf("Sweep dropped %d records, %d unknown ids; want 2, 1", r, u)
	}
	wantEvictions(t, e, evictions{sweep: 2})
	if r, u := e.srv.Sweep(); r != 0 || u != 0 {
		t.Fatalf("second Sweep dropped %d records, %d unknown ids; want none", r, u)
	}
	wantEvictions(t, e, evictions{sweep: 2})
}

// TestEvictionsExplicit: records dropped by Evict and Purge are explicit
// evictions; evicting an id not cached, forgetting unknown ids and
// ExpireAll drop no record.
func TestEvictionsExplicit(t *testing.T) {
	e := newEnv(t)
	k2, _ := e.newKey(nil)
	k3, _ := e.newKey(nil)
	for _, k := range []string{testKey, k2, k3} {
		mustOutcome(t, e, k, "allowed")
	}
	mustOutcome(t, e, otherKey, "unknown_key")
	e.srv.Evict(testID)
	wantEvictions(t, e, evictions{explicit: 1})
	e.srv.Evict(testID)  // no longer cached
	e.srv.Evict(otherID) // cached as unknown: not a record
	e.srv.PurgeUnknown()
	e.srv.ExpireAll()
	wantEvictions(t, e, evictions{explicit: 1})
	e.srv.Purge() // k2 and k3
	wantEvictions(t, e, evictions{explicit: 3})
	if st := e.srv.CacheStats(); st.Records != 0 {
		t.Errorf("%d records after Purge", st.Records)
	}
}
