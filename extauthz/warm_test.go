package extauthz

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

func mustWarm(t *testing.T, e *env, keyID string, want WarmResult) {
	t.Helper()
	got, err := e.srv.Warm(context.Background(), keyID)
	if got != want || (err != nil) != (want == WarmFailed) {
		t.Fatalf("Warm(%s) = %v, %v; want %v", keyID, got, err, want)
	}
}

// A warmed key is an ordinary cache entry: its first Check is a hit and
// reads nothing, and it is re-read at FoundTTL like any other.
func TestWarmLoads(t *testing.T) {
	e := newEnv(t)
	mustWarm(t, e, testID, WarmLoaded)
	wantReads(t, e, 1)
	mustOutcome(t, e, testKey, "allowed")
	if d := e.lastDecision(); d.Source != SourceHit {
		t.Errorf("first Check after Warm: source %v, want SourceHit", d.Source)
	}
	wantReads(t, e, 1)
	mustWarm(t, e, testID, WarmCached) // cached: no second read
	wantReads(t, e, 1)

	e.clock.Advance(e.srv.cfg.FoundTTL)
	mustOutcome(t, e, testKey, "allowed")
	wantReads(t, e, 2)
}

func TestWarmUnknown(t *testing.T) {
	e := newEnv(t)
	mustWarm(t, e, otherID, WarmUnknown)
	mustOutcome(t, e, otherKey, "unknown_key")
	if d := e.lastDecision(); d.Source != SourceNegative {
		t.Errorf("Check of a warmed unknown id: source %v, want SourceNegative", d.Source)
	}
	e.store.set(func(s *fakeStore) { s.idErr[otherID] = policy.ErrInvalidRecord })
	e.clock.Advance(e.srv.cfg.NotFoundTTL)
	mustWarm(t, e, otherID, WarmUnknown)
	mustOutcome(t, e, otherKey, "invalid_key_record")
	wantReads(t, e, 2)

	// Junk from a hot-key list never reaches the store: a raw key, a short
	// id, an empty one.
	for _, junk := range []string{testKey, "short", ""} {
		mustWarm(t, e, junk, WarmUnknown)
	}
	wantReads(t, e, 2)
}

// A store that fails caches nothing: the key is read again by its first
// Check, and denied 503 while the store is down (nothing stale to serve).
func TestWarmStoreFailing(t *testing.T) {
	e := newEnv(t)
	e.store.set(func(s *fakeStore) { s.err = errVaultDown })
	mustWarm(t, e, testID, WarmFailed)
	if st := e.srv.CacheStats(); st.Records != 0 || st.Unknown != 0 {
		t.Fatalf("after a failed warm read the cache holds %+v, want nothing", st)
	}
	mustOutcome(t, e, testKey, "store_unavailable")
	e.store.set(func(s *fakeStore) { s.err = nil })
	e.clock.Advance(staleRetry)
	mustOutcome(t, e, testKey, "allowed")
	wantReads(t, e, 3)
}

// An eviction while a warm read is in flight (a journaled revocation, a
// purge) keeps its result out of the cache.
func TestWarmEvictedMidRead(t *testing.T) {
	e := newEnv(t)
	block := make(chan struct{})
	entered := make(chan string, 1)
	e.store.set(func(s *fakeStore) { s.block, s.entered = block, entered })
	done := make(chan WarmResult, 1)
	go func() {
		r, _ := e.srv.Warm(context.Background(), testID)
		done <- r
	}()
	<-entered
	e.srv.Evict(testID)
	close(block)
	if r := <-done; r != WarmLoaded {
		t.Fatalf("Warm = %v, want loaded (the read itself succeeded)", r)
	}
	e.store.set(func(s *fakeStore) { s.block, s.entered = nil, nil })
	if st := e.srv.CacheStats(); st.Records != 0 {
		t.Fatalf("record cached although it was evicted during the read")
	}
	mustOutcome(t, e, testKey, "allowed")
	wantReads(t, e, 2)
}

// Warm spends StoreReadRate as misses do, waiting where a miss is refused:
// while a warm-up holds the budget, a Check's miss is denied 503, and the
// warm-up itself takes as long as the rate says.
func TestWarmSharesStoreReadRate(t *testing.T) {
	const rate, n = 50.0, 6
	e := newEnv(t, func(c *Config) { c.StoreReadRate, c.StoreReadBurst = rate, 1 })
	ids := make([]string, n)
	for i := range ids {
		_, ids[i] = e.newKey(nil)
	}
	start := time.Now()
	for _, id := range ids {
		mustWarm(t, e, id, WarmLoaded)
	}
	// The first read takes the burst; each later one waits 1/rate.
	if took, want := time.Since(start), time.Duration(float64(n-1)/rate*float64(time.Second)); took < want*9/10 {
		t.Errorf("%d warm reads at %v/s took %s, want at least %s", n, rate, took, want)
	}
	// The clock has not moved: the budget is spent (and then some).
	mustOutcome(t, e, otherKey, "store_unavailable")
	wantReads(t, e, n)
}

// A warm-up cut off while waiting for the read rate gives its token back
// and reads nothing.
func TestWarmCancelledWhileWaiting(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StoreReadRate, c.StoreReadBurst = 0.1, 1 })
	mustWarm(t, e, testID, WarmLoaded) // takes the burst
	_, id := e.newKey(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := e.srv.Warm(ctx, id)
	if r != WarmFailed || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Warm with a 10 s wait and a 50 ms deadline = %v, %v; want failed, deadline exceeded", r, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Warm waited %s past its deadline", took)
	}
	if tokens := e.srv.cache.limit.TokensAt(e.clock.Now()); tokens < -0.001 {
		t.Errorf("after the cancelled wait the read budget is %.2f tokens, want 0 (its reservation given back)", tokens)
	}
	wantReads(t, e, 1)

	// A warm-up whose deadline has passed reads nothing, even with budget
	// left (the read would run detached from ctx).
	e2 := newEnv(t)
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if r, err := e2.srv.Warm(done, testID); r != WarmFailed || !errors.Is(err, context.Canceled) {
		t.Errorf("Warm with an ended ctx = %v, %v; want failed, canceled", r, err)
	}
	wantReads(t, e2, 0)
}

// RecentKeys is the working set Checks used, most recent first: not what
// only a warm-up read (until a Check re-reads it), not invalid records.
func TestRecentKeys(t *testing.T) {
	e := newEnv(t)
	k1, id1 := e.newKey(nil)
	k2, id2 := e.newKey(nil)
	kw, warmedID := e.newKey(nil)
	k3, id3 := e.newKey(nil)
	e.store.set(func(s *fakeStore) { s.idErr[id3] = policy.ErrInvalidRecord })

	mustOutcome(t, e, testKey, "allowed")
	mustOutcome(t, e, k1, "allowed")
	mustOutcome(t, e, k2, "allowed")
	mustOutcome(t, e, k3, "invalid_key_record")
	mustWarm(t, e, warmedID, WarmLoaded)
	mustOutcome(t, e, k1, "allowed") // k1 is now the most recent
	if got, want := e.srv.RecentKeys(10), []string{id1, id2, testID}; !slices.Equal(got, want) {
		t.Errorf("RecentKeys = %v, want %v", got, want)
	}
	if got, want := e.srv.RecentKeys(2), []string{id1, id2}; !slices.Equal(got, want) {
		t.Errorf("RecentKeys(2) = %v, want %v", got, want)
	}

	// A warmed key a Check uses is passed on once a Check has re-read it.
	mustOutcome(t, e, kw, "allowed") // a hit on the warmed entry
	if slices.Contains(e.srv.RecentKeys(10), warmedID) {
		t.Errorf("RecentKeys lists %s before any Check re-read it", warmedID)
	}
	e.clock.Advance(e.srv.cfg.FoundTTL)
	mustOutcome(t, e, kw, "allowed") // the refresh
	if got := e.srv.RecentKeys(1); !slices.Equal(got, []string{warmedID}) {
		t.Errorf("RecentKeys(1) after the warmed key's refresh = %v, want [%s]", got, warmedID)
	}
}
