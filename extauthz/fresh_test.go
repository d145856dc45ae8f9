package extauthz

import (
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// feedEnv is an env whose change feed is healthy for a day from now
// (serve renews it every journal poll), with FoundTTL 30s, MaxRecordAge 10m
// and StaleTTL 5m.
func feedEnv(t *testing.T, mods ...func(*Config)) *env {
	t.Helper()
	e := newEnv(t, append([]func(*Config){func(c *Config) {
		c.FoundTTL, c.MaxRecordAge, c.StaleTTL = 30*time.Second, 10*time.Minute, 5*time.Minute
	}}, mods...)...)
	e.srv.ChangeFeed(e.clock.Now().Add(24 * time.Hour))
	return e
}

func revoke(r *policy.Record) { r.Status = policy.StatusRevoked }

// TestFeedNoRereadAtFoundTTL: while the change feed is healthy, a record
// is not re-read at FoundTTL, only at its own max age (MaxRecordAge
// spread per key): a change the feed did not report is seen then.
func TestFeedNoRereadAtFoundTTL(t *testing.T) {
	e := feedEnv(t)
	mustOutcome(t, e, testKey, "allowed")
	e.put(testKey, revoke) // not reported by the feed: a direct write
	age := e.srv.cache.maxAge(testID)
	if age < 9*time.Minute || age >= 11*time.Minute {
		t.Fatalf("max age %s, want within 10m ± 10%%", age)
	}

	e.clock.Advance(30 * time.Second)
	mustOutcome(t, e, testKey, "allowed")
	wantSource(t, e, SourceHit)
	e.clock.Advance(age - 30*time.Second - time.Nanosecond)
	mustOutcome(t, e, testKey, "allowed")
	wantReads(t, e, 1)

	e.clock.Advance(time.Nanosecond)
	mustOutcome(t, e, testKey, "revoked_key")
	wantSource(t, e, SourceMiss)
	wantReads(t, e, 2)
	e.clock.Advance(age - time.Nanosecond) // the re-read is fresh for a max age again
	mustOutcome(t, e, testKey, "revoked_key")
	wantReads(t, e, 2)
}

// TestFeedOffWithoutMaxRecordAge: MaxRecordAge 0 keeps FoundTTL whatever
// the feed says.
func TestFeedOffWithoutMaxRecordAge(t *testing.T) {
	e := feedEnv(t, func(c *Config) { c.MaxRecordAge = 0 })
	mustOutcome(t, e, testKey, "allowed")
	e.clock.Advance(30 * time.Second)
	mustOutcome(t, e, testKey, "allowed")
	wantSource(t, e, SourceMiss)
	wantReads(t, e, 2)
}

// TestFeedUnhealthyFallsBack: once the feed stops being healthy, a record
// read more than FoundTTL ago is re-read on its next use at once, and a
// younger one at its FoundTTL; re-reads are every FoundTTL from then on,
// until the feed is healthy again.
func TestFeedUnhealthyFallsBack(t *testing.T) {
	e := feedEnv(t)
	e.srv.ChangeFeed(e.clock.Now().Add(2 * time.Minute))
	mustOutcome(t, e, testKey, "allowed")
	k2, _ := e.newKey(nil)
	e.clock.Advance(time.Minute + 45*time.Second)
	mustOutcome(t, e, k2, "allowed") // read 15 s before the feed's end
	e.clock.Advance(15*time.Second - time.Nanosecond)
	mustOutcome(t, e, testKey, "allowed")
	wantSource(t, e, SourceHit)
	wantReads(t, e, 2)

	e.clock.Advance(time.Nanosecond) // the feed's end
	mustOutcome(t, e, testKey, "allowed")
	wantSource(t, e, SourceMiss)
	mustOutcome(t, e, k2, "allowed")
	wantSource(t, e, SourceHit) // 15 s old: fresh until its FoundTTL
	e.clock.Advance(15 * time.Second)
	mustOutcome(t, e, k2, "allowed")
	wantSource(t, e, SourceMiss)
	e.clock.Advance(30 * time.Second)
	mustOutcome(t, e, k2, "allowed")
	wantSource(t, e, SourceMiss)
	wantReads(t, e, 5)

	e.srv.ChangeFeed(e.clock.Now().Add(time.Hour)) // healthy again: no re-read at FoundTTL
	e.clock.Advance(time.Minute)
	mustOutcome(t, e, k2, "allowed")
	mustOutcome(t, e, testKey, "allowed")
	wantSource(t, e, SourceHit)
	wantReads(t, e, 5)

	e.srv.ChangeFeed(time.Time{}) // unhealthy at once
	mustOutcome(t, e, k2, "allowed")
	wantSource(t, e, SourceMiss)
	wantReads(t, e, 6)
}

// TestFeedEvictRereads: an id the feed evicts is re-read on its next use,
// and ExpireAll (a gap in the feed) makes every record read before it
// unknown: re-read on next use, however healthy the feed is.
func TestFeedEvictRereads(t *testing.T) {
	e := feedEnv(t)
	k2, _ := e.newKey(nil)
	mustOutcome(t, e, testKey, "allowed")
	mustOutcome(t, e, k2, "allowed")
	e.clock.Advance(time.Minute)

	e.put(testKey, revoke)
	e.srv.Evict(testID)
	mustOutcome(t, e, testKey, "revoked_key")
	wantReads(t, e, 3)

	e.put(k2, revoke)
	e.srv.ExpireAll()
	mustOutcome(t, e, k2, "revoked_key")
	mustOutcome(t, e, testKey, "revoked_key") // read after the Evict, before ExpireAll
	wantReads(t, e, 5)
	e.clock.Advance(time.Minute) // read since the gap: the feed vouches again
	mustOutcome(t, e, k2, "revoked_key")
	mustOutcome(t, e, testKey, "revoked_key")
	wantReads(t, e, 5)
}

// TestFeedStaleIfError: stale-if-error counts StaleTTL from when a record
// stopped being known current: the feed's end, or its max age.
func TestFeedStaleIfError(t *testing.T) {
	t.Run("feed ends", func(t *testing.T) {
		e := feedEnv(t)
		e.srv.ChangeFeed(e.clock.Now().Add(2 * time.Minute))
		mustOutcome(t, e, testKey, "allowed")
		e.store.set(func(s *fakeStore) { s.err = errVaultDown })
		e.clock.Advance(2 * time.Minute)
		mustOutcome(t, e, testKey, "allowed")
		wantSource(t, e, SourceStale)
		wantReads(t, e, 2)
		e.clock.Advance(5*time.Minute - time.Nanosecond)
		mustOutcome(t, e, testKey, "allowed")
		wantSource(t, e, SourceStale)
		e.clock.Advance(time.Nanosecond)
		mustOutcome(t, e, testKey, "store_unavailable")
	})
	t.Run("max age", func(t *testing.T) {
		e := feedEnv(t)
		mustOutcome(t, e, testKey, "allowed")
		age := e.srv.cache.maxAge(testID)
		e.store.set(func(s *fakeStore) { s.err = errVaultDown })
		e.clock.Advance(age)
		mustOutcome(t, e, testKey, "allowed")
		wantSource(t, e, SourceStale)
		e.clock.Advance(5*time.Minute - time.Nanosecond)
		mustOutcome(t, e, testKey, "allowed")
		e.clock.Advance(time.Nanosecond)
		mustOutcome(t, e, testKey, "store_unavailable")
	})
	t.Run("a fresh revoked read wins", func(t *testing.T) {
		e := feedEnv(t)
		mustOutcome(t, e, testKey, "allowed")
		e.clock.Advance(e.srv.cache.maxAge(testID))
		e.put(testKey, revoke)
		mustOutcome(t, e, testKey, "revoked_key")
		e.store.set(func(s *fakeStore) { s.err = errVaultDown })
		e.clock.Advance(time.Minute)
		mustOutcome(t, e, testKey, "revoked_key")
	})
	t.Run("read before a gap", func(t *testing.T) {
		e := feedEnv(t) // as TestExpireAllStaleIfError: FoundTTL+StaleTTL from the read
		mustOutcome(t, e, testKey, "allowed")
		e.clock.Advance(time.Minute)
		e.srv.ExpireAll()
		e.store.set(func(s *fakeStore) { s.err = errVaultDown })
		mustOutcome(t, e, testKey, "allowed")
		wantSource(t, e, SourceStale)
		e.clock.Advance(4*time.Minute + 30*time.Second - time.Nanosecond)
		mustOutcome(t, e, testKey, "allowed")
		e.clock.Advance(time.Nanosecond)
		mustOutcome(t, e, testKey, "store_unavailable")
	})
}

// TestFeedSweep: a record the feed keeps fresh is not swept at
// FoundTTL+StaleTTL; it is once StaleTTL has passed since its max age, or
// since the feed's end.
func TestFeedSweep(t *testing.T) {
	e := feedEnv(t)
	mustOutcome(t, e, testKey, "allowed")
	age := e.srv.cache.maxAge(testID)
	e.clock.Advance(6 * time.Minute)
	if r, _ := e.srv.Sweep(); r != 0 {
		t.Fatalf("swept %d fresh records", r)
	}
	e.clock.Advance(age + 5*time.Minute - 6*time.Minute - time.Nanosecond)
	if r, _ := e.srv.Sweep(); r != 0 {
		t.Fatalf("swept %d records still usable stale", r)
	}
	e.clock.Advance(time.Nanosecond)
	if r, _ := e.srv.Sweep(); r != 1 {
		t.Fatalf("swept %d records past max age + stale-ttl, want 1", r)
	}

	mustOutcome(t, e, testKey, "allowed")
	e.srv.ChangeFeed(e.clock.Now().Add(time.Minute))
	e.clock.Advance(6*time.Minute - time.Nanosecond)
	if r, _ := e.srv.Sweep(); r != 0 {
		t.Fatalf("swept %d records still usable stale", r)
	}
	e.clock.Advance(time.Nanosecond)
	if r, _ := e.srv.Sweep(); r != 1 {
		t.Fatalf("swept %d records past the feed's end + stale-ttl, want 1", r)
	}
}

// TestFeedJitterSpreads: 1,000 keys read at the same moment are re-read
// spread over MaxRecordAge ±10%, none outside it, no tenth of that span
// holding more than 15% of them; another replica spreads them differently.
func TestFeedJitterSpreads(t *testing.T) {
	e := feedEnv(t, func(c *Config) { c.CacheSize = 2000 })
	const n, buckets = 1000, 10
	keys := make([]string, n)
	for i := range keys {
		keys[i], _ = e.newKey(nil)
		mustOutcome(t, e, keys[i], "allowed")
	}
	wantReads(t, e, n)
	step := 2 * time.Minute / buckets
	e.clock.Advance(9*time.Minute - time.Nanosecond)
	var got [buckets + 1]int64
	for b := range got {
		before := e.store.reads.Load()
		for _, k := range keys {
			mustOutcome(t, e, k, "allowed")
		}
		got[b] = e.store.reads.Load() - before
		e.clock.Advance(step)
	}
	if got[0] != 0 {
		t.Errorf("%d keys re-read before 0.9 × MaxRecordAge", got[0])
	}
	total := int64(0)
	for b := 1; b <= buckets; b++ {
		total += got[b]
		if got[b] < 50 || got[b] > 150 {
			t.Errorf("re-reads per 12 s from 9m: %v; want each near 100 (within 50..150)", got[1:])
			break
		}
	}
	if total != n {
		t.Errorf("%d of %d keys re-read by 1.1 × MaxRecordAge", total, n)
	}

	other := feedEnv(t)
	same := 0
	for _, k := range keys {
		id := k[len("kg_") : len("kg_")+policy.IDLen]
		if e.srv.cache.maxAge(id) == other.srv.cache.maxAge(id) {
			same++
		}
	}
	if same > 1 {
		t.Errorf("%d of %d keys have the same max age on two replicas", same, n)
	}
}

// TestFeedCacheStats: CacheStats says whether the feed is healthy.
func TestFeedCacheStats(t *testing.T) {
	e := feedEnv(t)
	if !e.srv.CacheStats().ChangeFeed {
		t.Error("ChangeFeed false while healthy")
	}
	e.srv.ChangeFeed(e.clock.Now())
	if e.srv.CacheStats().ChangeFeed {
		t.Error("ChangeFeed true past its end")
	}
}
