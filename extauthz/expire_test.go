package extauthz

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

func wantSource(t *testing.T, e *env, want Source) {
	t.Helper()
	if d := e.lastDecision(); d.Source != want {
		t.Errorf("source %v, want %v", d.Source, want)
	}
}

// TestExpireAllRereads: a fresh record is re-read on its next use after
// ExpireAll, and what that re-read caches is fresh again; a cached
// unknown id is forgotten.
func TestExpireAllRereads(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FoundTTL = time.Minute; c.NotFoundTTL = time.Minute })
	mustOutcome(t, e, testKey, "allowed")
	mustOutcome(t, e, otherKey, "unknown_key")
	mustOutcome(t, e, testKey, "allowed")
	wantSource(t, e, SourceHit)
	wantReads(t, e, 2)

	e.put(testKey, func(r *policy.Record) { r.Status = policy.StatusRevoked })
	e.put(otherKey, nil)
	e.srv.ExpireAll()
	mustOutcome(t, e, testKey, "revoked_key")
	wantSource(t, e, SourceMiss)
	mustOutcome(t, e, otherKey, "allowed")
	wantReads(t, e, 4)

	mustOutcome(t, e, otherKey, "allowed") // cached after the expiry: fresh
	wantSource(t, e, SourceHit)
	wantReads(t, e, 4)
	if st := e.srv.CacheStats(); st.Evictions != 0 {
		t.Errorf("ExpireAll dropped %d records, want 0", st.Evictions)
	}
}

// TestExpireAllStaleIfError: an expired record whose re-read fails is
// served stale until FoundTTL+StaleTTL after its original read, not after
// the expiry.
func TestExpireAllStaleIfError(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FoundTTL = 30 * time.Second; c.StaleTTL = time.Minute })
	mustOutcome(t, e, testKey, "allowed")
	e.clock.Advance(10 * time.Second)
	e.srv.ExpireAll()
	e.store.set(func(s *fakeStore) { s.err = errVaultDown })
	mustOutcome(t, e, testKey, "allowed")
	wantSource(t, e, SourceStale)
	wantReads(t, e, 2)

	e.clock.Advance(80*time.Second - time.Nanosecond) // just inside 30s+1m of the read
	mustOutcome(t, e, testKey, "allowed")
	wantSource(t, e, SourceStale)
	e.clock.Advance(time.Nanosecond)
	mustOutcome(t, e, testKey, "store_unavailable")
}

// TestExpireAllNotReadLimited: an expired record stays known, so its
// re-read is made even when the store read rate refuses uncached ids.
func TestExpireAllNotReadLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StoreReadRate = 1e-9; c.StoreReadBurst = 1 })
	mustOutcome(t, e, testKey, "allowed") // spends the only token
	e.put(testKey, func(r *policy.Record) { r.Status = policy.StatusRevoked })
	e.put(otherKey, nil)
	e.srv.ExpireAll()
	mustOutcome(t, e, testKey, "revoked_key")
	wantReads(t, e, 2)
	mustOutcome(t, e, otherKey, "store_unavailable") // uncached ids are still limited
	wantReads(t, e, 2)
}

// TestExpireAllDuringInFlightRead: a read in flight when ExpireAll runs
// (it may have fetched the record before the change that made the caller
// expire everything) does not cache its result as fresh.
func TestExpireAllDuringInFlightRead(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LookupTimeout = time.Minute; c.FoundTTL = time.Minute })
	release, entered := make(chan struct{}), make(chan string, 1)
	e.store.set(func(s *fakeStore) { s.block, s.entered = release, entered })

	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := e.srv.Check(context.Background(), newReq().key(testKey).build()); err != nil {
			t.Errorf("Check: %v", err)
		}
	}()
	<-entered // the read has taken its snapshot of the active record

	e.put(testKey, func(r *policy.Record) { r.Status = policy.StatusRevoked })
	e.store.set(func(s *fakeStore) { s.block, s.entered = nil, nil })
	e.srv.ExpireAll()
	close(release)
	<-done

	mustOutcome(t, e, testKey, "revoked_key")
	wantReads(t, e, 2)
}

// TestExpireAllInFlightReadOfCachedKey: the same, for a cached key being
// refreshed: the old entry stays expired and the next use re-reads.
func TestExpireAllInFlightReadOfCachedKey(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LookupTimeout = time.Minute; c.FoundTTL = time.Minute })
	mustOutcome(t, e, testKey, "allowed")
	e.clock.Advance(time.Minute) // due for a refresh
	release, entered := make(chan struct{}), make(chan string, 1)
	e.store.set(func(s *fakeStore) { s.block, s.entered = release, entered })

	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := e.srv.Check(context.Background(), newReq().key(testKey).build()); err != nil {
			t.Errorf("Check: %v", err)
		}
	}()
	<-entered

	e.put(testKey, func(r *policy.Record) { r.Status = policy.StatusRevoked })
	e.store.set(func(s *fakeStore) { s.block, s.entered = nil, nil })
	e.srv.ExpireAll()
	close(release)
	<-done

	mustOutcome(t, e, testKey, "revoked_key")
	wantReads(t, e, 3)
}
