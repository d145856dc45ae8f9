package extauthz

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/policy"
)

var errVaultDown = errors.New("vault: 503 service unavailable")

func mustOutcome(t *testing.T, e *env, rawKey, want string) {
	t.Helper()
	if got := outcome(e.check(newReq().key(rawKey).build())); got != want {
		t.Fatalf("outcome %q, want %q", got, want)
	}
}

func wantReads(t *testing.T, e *env, want int64) {
	t.Helper()
	if got := e.store.reads.Load(); got != want {
		t.Fatalf("%d store reads, want %d", got, want)
	}
}

func TestCacheFoundTTL(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FoundTTL = 30 * time.Second })
	mustOutcome(t, e, testKey, "allowed")
	e.put(testKey, func(r *policy.Record) { r.Status = policy.StatusRevoked })

	e.clock.Advance(30*time.Second - time.Nanosecond)
	mustOutcome(t, e, testKey, "allowed") // the revocation is not seen before FoundTTL
	wantReads(t, e, 1)

	e.clock.Advance(time.Nanosecond)
	mustOutcome(t, e, testKey, "revoked_key") // and is seen at FoundTTL
	wantReads(t, e, 2)
}

func TestCacheNotFoundTTL(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.NotFoundTTL = 5 * time.Second })
	mustOutcome(t, e, otherKey, "unknown_key")
	e.put(otherKey, nil)
	mustOutcome(t, e, otherKey, "unknown_key")
	if d := e.lastDecision(); d.Source != SourceNegative {
		t.Errorf("source %v, want SourceNegative", d.Source)
	}
	wantReads(t, e, 1)

	e.clock.Advance(5 * time.Second)
	mustOutcome(t, e, otherKey, "allowed")
	wantReads(t, e, 2)
}

func TestCacheNegativeFloodKeepsValidKeys(t *testing.T) {
	// A long lookup timeout: 10,000 reads on a loaded machine must not
	// turn one into store_unavailable (as in TestCallerFlagsPruned).
	e := newEnv(t, func(c *Config) { c.CacheSize = 4; c.NegativeCacheSize = 16; c.LookupTimeout = time.Minute })
	mustOutcome(t, e, testKey, "allowed")
	f, _ := policy.NewFormat("kg")
	for range 10_000 {
		rawKey, _, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if got := outcome(e.check(newReq().key(rawKey).build())); got != "unknown_key" {
			t.Fatalf("random key: %q, want unknown_key", got)
		}
	}
	mustOutcome(t, e, testKey, "allowed")
	if d := e.lastDecision(); d.Source != SourceHit {
		t.Errorf("valid key source %v after the flood, want SourceHit", d.Source)
	}
	if n := e.store.readsFor(testID); n != 1 {
		t.Errorf("valid key read %d times, want 1 (evicted by unknown ids)", n)
	}
}

func TestCacheTransientErrorWithFreshEntry(t *testing.T) {
	e := newEnv(t)
	mustOutcome(t, e, testKey, "allowed")
	e.store.set(func(s *fakeStore) { s.err = errVaultDown })
	for range 10 {
		mustOutcome(t, e, testKey, "allowed")
	}
	wantReads(t, e, 1)
}

func TestCacheStaleIfError(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FoundTTL = 30 * time.Second; c.StaleTTL = 5 * time.Minute })
	mustOutcome(t, e, testKey, "allowed")
	e.store.set(func(s *fakeStore) { s.err = errVaultDown })

	e.clock.Advance(31 * time.Second)
	mustOutcome(t, e, testKey, "allowed")
	if d := e.lastDecision(); d.Source != SourceStale {
		t.Errorf("source %v, want SourceStale", d.Source)
	}
	wantReads(t, e, 2)

	// Within staleRetry the store is not asked again, however many Checks.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 20 {
				resp, err := e.srv.Check(context.Background(), newReq().key(testKey).build())
				if err != nil || outcome(resp) != "allowed" {
					t.Errorf("stale check: %v %v", outcome(resp), err)
					return
				}
			}
		})
	}
	wg.Wait()
	e.clock.Advance(staleRetry - time.Millisecond)
	mustOutcome(t, e, testKey, "allowed")
	wantReads(t, e, 2)

	e.clock.Advance(time.Millisecond) // one retry per staleRetry
	mustOutcome(t, e, testKey, "allowed")
	mustOutcome(t, e, testKey, "allowed")
	wantReads(t, e, 3)

	e.clock.Advance(5 * time.Minute) // past FoundTTL+StaleTTL
	mustOutcome(t, e, testKey, "store_unavailable")
}

// TestCacheStaleDisabled: with StaleTTL 0 a record that is not fresh is
// never served when its re-read fails, however it stopped being fresh:
// past FoundTTL, or made stale by ExpireAll while still within FoundTTL of
// its read.
func TestCacheStaleDisabled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stale func(e *env)
	}{
		{"past found TTL", func(e *env) { e.clock.Advance(31 * time.Second) }},
		{"expired within found TTL", func(e *env) { e.clock.Advance(10 * time.Second); e.srv.ExpireAll() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.StaleTTL = 0 })
			mustOutcome(t, e, testKey, "allowed")
			e.store.set(func(s *fakeStore) { s.err = errVaultDown })
			tc.stale(e)
			mustOutcome(t, e, testKey, "store_unavailable")
			wantReads(t, e, 2)
			mustOutcome(t, e, testKey, "store_unavailable") // nothing cached: read again
			wantReads(t, e, 3)
		})
	}
}

func TestCacheUnknownKeyDuringStoreFailure(t *testing.T) {
	e := newEnv(t)
	e.store.set(func(s *fakeStore) { s.err = errVaultDown })
	mustOutcome(t, e, otherKey, "store_unavailable")
	mustOutcome(t, e, testKey, "store_unavailable")

	// Transient errors are never cached.
	e.put(otherKey, nil)
	e.store.set(func(s *fakeStore) { s.err = nil })
	mustOutcome(t, e, otherKey, "allowed")
	mustOutcome(t, e, testKey, "allowed")
}

func TestCacheStoreErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"transient", errVaultDown, "store_unavailable"},
		{"deadline", context.DeadlineExceeded, "store_unavailable"},
		{"cancelled", context.Canceled, "store_unavailable"},
		{"wrapped not found", fmt.Errorf("vault: %w", policy.ErrKeyNotFound), "unknown_key"},
		{"wrapped invalid record", fmt.Errorf("vault: %w: field %q", policy.ErrInvalidRecord, "status"), "invalid_key_record"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.store.set(func(s *fakeStore) { s.idErr[testID] = tc.err })
			mustOutcome(t, e, testKey, tc.want)
		})
	}
}

func TestCacheInvalidRecord(t *testing.T) {
	e := newEnv(t)
	e.store.set(func(s *fakeStore) {
		s.idErr[testID] = fmt.Errorf("vault: %w: allowed_cidrs[0]: /33", policy.ErrInvalidRecord)
	})
	mustOutcome(t, e, testKey, "invalid_key_record")
	mustOutcome(t, e, testKey, "invalid_key_record")
	wantReads(t, e, 1) // cached

	e.store.set(func(s *fakeStore) { delete(s.idErr, testID) })
	e.clock.Advance(30 * time.Second)
	mustOutcome(t, e, testKey, "allowed")
}

func TestCacheUnusableRecords(t *testing.T) {
	tests := []struct {
		want string // default invalid_key_record
		name string
		cfg  func(*Config)
		rec  func(t *testing.T) *policy.Record
		req  *authv3.CheckRequest
	}{
		{
			name: "record header collides with the key header",
			cfg:  func(c *Config) { c.KeyHeader = "x-custom-key" },
			rec: func(t *testing.T) *policy.Record {
				return newRecord(t, testKey, func(r *policy.Record) { r.Headers = map[string]string{"x-custom-key": "v"} })
			},
			req: newReq().header("x-custom-key", testKey).build(),
		},
		{
			name: "record header collides with the auth header",
			cfg:  func(c *Config) { c.AuthHeader = "x-custom-auth" },
			rec: func(t *testing.T) *policy.Record {
				return newRecord(t, testKey, func(r *policy.Record) { r.Headers = map[string]string{"x-custom-auth": "v"} })
			},
			req: newReq().header("x-custom-auth", "Bearer "+testKey).build(),
		},
		{
			name: "record not validated by the store",
			rec: func(t *testing.T) *policy.Record {
				return &policy.Record{Hash: testHasher.Hash(testKey).String(), Tenant: "acme", Status: policy.StatusActive}
			},
			req: newReq().key(testKey).build(),
		},
		{
			// a pepper rotated after this server last loaded them: it is
			// loaded within --pepper-refresh, so deny 503, not 500
			want: "store_unavailable",
			name: "record hashed with a pepper we do not hold",
			rec: func(t *testing.T) *policy.Record {
				return newRecord(t, testKey, func(r *policy.Record) {
					r.Hash = "hmac-sha256:v7:" + fmt.Sprintf("%x", testHasher.Hash(testKey).Sum)
				})
			},
			req: newReq().key(testKey).build(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*Config)
			if tc.cfg != nil {
				mods = append(mods, tc.cfg)
			}
			e := newEnv(t, mods...)
			rec := tc.rec(t)
			e.store.set(func(s *fakeStore) { s.recs[testID] = rec })
			want := cmp.Or(tc.want, "invalid_key_record")
			if got := outcome(e.check(tc.req)); got != want {
				t.Errorf("outcome %q, want %s", got, want)
			}
		})
	}
}

func TestCacheFreshRevokedReplacesStale(t *testing.T) {
	e := newEnv(t)
	mustOutcome(t, e, testKey, "allowed")
	e.store.set(func(s *fakeStore) { s.err = errVaultDown })
	e.clock.Advance(31 * time.Second)
	mustOutcome(t, e, testKey, "allowed") // stale

	e.put(testKey, func(r *policy.Record) { r.Status = policy.StatusRevoked })
	e.store.set(func(s *fakeStore) { s.err = nil })
	e.clock.Advance(staleRetry)
	mustOutcome(t, e, testKey, "revoked_key")

	// Failing again later never brings the stale allow back.
	e.store.set(func(s *fakeStore) { s.err = errVaultDown })
	e.clock.Advance(31 * time.Second)
	mustOutcome(t, e, testKey, "revoked_key")
}

func TestCacheDeletedKeyIsForgotten(t *testing.T) {
	e := newEnv(t)
	mustOutcome(t, e, testKey, "allowed")
	e.store.set(func(s *fakeStore) { delete(s.recs, testID) })
	e.clock.Advance(30 * time.Second)
	mustOutcome(t, e, testKey, "unknown_key")
	// A later outage does not resurrect the deleted key from the stale cache.
	e.store.set(func(s *fakeStore) { s.err = errVaultDown })
	e.clock.Advance(5 * time.Second)
	mustOutcome(t, e, testKey, "store_unavailable")
}

func TestCacheConcurrentMissOneRead(t *testing.T) {
	const n = 1000
	e := newEnv(t, func(c *Config) { c.LookupTimeout = time.Minute })
	release := make(chan struct{})
	e.store.set(func(s *fakeStore) { s.block = release })

	var waiting, done sync.WaitGroup
	waiting.Add(n)
	results := make(chan string, n)
	for range n {
		done.Go(func() {
			ctx := &doneSignal{Context: context.Background(), waiting: waiting.Done}
			resp, err := e.srv.Check(ctx, newReq().key(testKey).build())
			if err != nil {
				t.Errorf("Check: %v", err)
			}
			results <- outcome(resp)
		})
	}
	waiting.Wait() // every caller has joined the one in-flight read
	close(release)
	done.Wait()
	close(results)
	for got := range results {
		if got != "allowed" {
			t.Errorf("outcome %q, want allowed", got)
		}
	}
	wantReads(t, e, 1)
}

// TestCacheMissAfterFlightEndedNoRead: a caller that found no entry while
// another caller's read was in flight, and reaches the read only after it
// ended (preempted between the two, as under load), uses what that read
// cached: found or unknown, no second read. An evicted or expired entry is
// still read again.
func TestCacheMissAfterFlightEndedNoRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		id     string
		source Source
		reason policy.Reason
	}{
		{"found", testID, SourceHit, policy.Allowed},
		{"unknown", otherID, SourceNegative, policy.UnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := tc.id
			c := e.srv.cache
			now := e.clock.Now()
			if _, _, _, read := c.peekAt(id, now); !read { // the late caller's miss
				t.Fatal("a new id did not miss")
			}
			if _, _, reason := c.fetch(context.Background(), id); reason != tc.reason { // another caller's read, to its end
				t.Fatalf("first read: %s, want %s", reason, tc.reason)
			}
			_, source, reason := c.fetch(context.Background(), id) // the late caller
			if source != tc.source || reason != tc.reason {
				t.Errorf("late caller: %v %s, want %v %s", source, reason, tc.source, tc.reason)
			}
			wantReads(t, e, 1)
			c.evict(id)
			if _, source, _ := c.fetch(context.Background(), id); source != SourceMiss {
				t.Errorf("after an eviction: %v, want a read", source)
			}
			wantReads(t, e, 2)
			if tc.reason == policy.Allowed {
				c.expireAll()
				if _, source, _ := c.fetch(context.Background(), id); source != SourceMiss {
					t.Errorf("after ExpireAll: %v, want a read", source)
				}
				wantReads(t, e, 3)
			}
		})
	}
}

func TestCacheMalformedFloodNoReads(t *testing.T) {
	e := newEnv(t)
	f, _ := policy.NewFormat("kg")
	const n = 100_000
	var b [policy.IDLen]byte
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	req := newReq().key("").build()
	checked := 0
	for i := range n {
		v := i
		for j := range b {
			b[j] = base62[v%62]
			v /= 62
		}
		var k string
		switch i % 4 {
		case 0: // valid shape, checksum of another key
			k = "kg_" + string(b[:]) + testKey[3+policy.IDLen:]
		case 1: // wrong prefix
			k = "kx_" + string(b[:]) + testKey[3+policy.IDLen:]
		case 2: // truncated
			k = ("kg_" + string(b[:]) + testKey[3+policy.IDLen:])[:40+i%10]
		case 3: // bad alphabet
			k = "kg_" + string(b[:]) + testKey[3+policy.IDLen:len(testKey)-1] + "-"
		}
		if _, err := f.Parse(k); err == nil {
			continue // a one-in-billions accidental valid checksum
		}
		req.Attributes.Request.Http.Headers["x-api-key"] = k
		resp, err := e.srv.Check(context.Background(), req)
		if err != nil || outcome(resp) != "malformed_key" {
			t.Fatalf("key %d: %q %v, want malformed_key", i, outcome(resp), err)
		}
		checked++
	}
	if checked < n-10 {
		t.Fatalf("only %d malformed keys checked", checked)
	}
	wantReads(t, e, 0)
}

func TestCacheCancelledFirstCaller(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LookupTimeout = time.Minute })
	release, entered := make(chan struct{}), make(chan string, 1)
	e.store.set(func(s *fakeStore) { s.block, s.entered = release, entered })

	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	first := make(chan *authv3.CheckResponse, 1)
	go func() {
		resp, err := e.srv.Check(ctx1, newReq().key(testKey).build())
		if err != nil {
			t.Errorf("first Check: %v", err)
		}
		first <- resp
	}()
	<-entered // the first caller's read is in flight

	var joined sync.WaitGroup
	joined.Add(1)
	second := make(chan *authv3.CheckResponse, 1)
	go func() {
		ctx2 := &doneSignal{Context: context.Background(), waiting: joined.Done}
		resp, err := e.srv.Check(ctx2, newReq().key(testKey).build())
		if err != nil {
			t.Errorf("second Check: %v", err)
		}
		second <- resp
	}()
	joined.Wait() // the second caller shares the read

	cancel1()
	if r := <-first; outcome(r) == "allowed" || r.GetDeniedResponse() == nil {
		t.Errorf("cancelled first caller: %q, want a deny", outcome(r))
	}
	close(release)
	if r := <-second; outcome(r) != "allowed" {
		t.Errorf("second caller: %q, want allowed (the first caller's cancel leaked into the shared read)", outcome(r))
	}
	e.store.set(func(s *fakeStore) {
		for _, err := range s.ctxErrs {
			if err != nil {
				t.Errorf("store saw a done context: %v", err)
			}
		}
	})
	wantReads(t, e, 1)
}

func TestCacheStoreReadRate(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StoreReadRate = 1e-9; c.StoreReadBurst = 1 })
	e.put(otherKey, nil)
	mustOutcome(t, e, testKey, "allowed")
	mustOutcome(t, e, otherKey, "store_unavailable") // over the rate: deny, no read
	wantReads(t, e, 1)

	// A cached key past FoundTTL is re-read even over the rate: refusing
	// its refresh would let a flood of unknown ids keep a revoked key
	// alive on its stale entry.
	e.clock.Advance(31 * time.Second)
	e.put(testKey, func(r *policy.Record) { r.Status = policy.StatusRevoked })
	mustOutcome(t, e, testKey, "revoked_key")
	wantReads(t, e, 2)
	mustOutcome(t, e, otherKey, "store_unavailable") // unknown ids still limited
	wantReads(t, e, 2)
}

func TestCacheLookupTimeout(t *testing.T) {
	tests := []struct {
		name  string
		store func(s *fakeStore)
	}{
		{"blocks until ctx done", func(s *fakeStore) { s.block = make(chan struct{}) }},
		{"slow", func(s *fakeStore) { s.delay = time.Hour }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.LookupTimeout = 20 * time.Millisecond })
			e.store.set(tc.store)
			mustOutcome(t, e, testKey, "store_unavailable")
		})
	}
}

func TestCacheEvictAndPurge(t *testing.T) {
	for _, drop := range []struct {
		name string
		fn   func(s *Server)
	}{{"evict", func(s *Server) { s.Evict(testID) }}, {"purge", func(s *Server) { s.Purge() }}} {
		t.Run(drop.name, func(t *testing.T) {
			e := newEnv(t)
			mustOutcome(t, e, testKey, "allowed")
			mustOutcome(t, e, otherKey, "unknown_key")
			e.put(testKey, func(r *policy.Record) { r.Status = policy.StatusRevoked })
			e.put(otherKey, nil)
			drop.fn(e.srv)
			mustOutcome(t, e, testKey, "revoked_key")
			if drop.name == "purge" {
				mustOutcome(t, e, otherKey, "allowed")
			}
		})
	}
}

// A revocation's Evict that lands while a read of the old record is in
// flight must not be undone when that read completes.
func TestCacheEvictDuringInFlightRead(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LookupTimeout = time.Minute })
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
	e.srv.Evict(testID) // the change feed reports the revocation
	close(release)
	<-done

	// This request starts after the revocation and the Evict.
	mustOutcome(t, e, testKey, "revoked_key")
}

// TestCacheDropsDuringInFlightRead: however many cache drops (Evict,
// Purge, PurgeUnknown) land while a read is in flight, in any order, the
// read does not cache what it fetched: each one moves the generation on,
// and a later drop never brings it back to the read's.
func TestCacheDropsDuringInFlightRead(t *testing.T) {
	evict := func(s *Server) { s.Evict(testID) }
	for _, tc := range []struct {
		name  string
		drops []func(s *Server)
	}{
		{"evict", []func(*Server){evict}},
		{"purge", []func(*Server){(*Server).Purge}},
		{"evict, purge unknown", []func(*Server){evict, (*Server).PurgeUnknown}},
		{"purge unknown, evict", []func(*Server){(*Server).PurgeUnknown, evict}},
		{"evict, purge", []func(*Server){evict, (*Server).Purge}},
		{"purge, evict", []func(*Server){(*Server).Purge, evict}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.LookupTimeout = time.Minute })
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
			for _, drop := range tc.drops {
				drop(e.srv)
			}
			close(release)
			<-done

			mustOutcome(t, e, testKey, "revoked_key")
			wantReads(t, e, 2)
		})
	}
}

// TestCacheSweep: records past found-ttl + stale-ttl and unknown ids past
// their expiry are dropped; fresh ones and records still within the stale
// window stay.
func TestCacheSweep(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FoundTTL, c.StaleTTL, c.NotFoundTTL = time.Second, 2*time.Second, time.Second })
	old, _ := e.newKey(nil)
	mustOutcome(t, e, old, "allowed")
	mustOutcome(t, e, otherKey, "unknown_key")
	e.clock.Advance(2 * time.Second) // old: past found-ttl, inside the stale window; unknown id expired
	mustOutcome(t, e, testKey, "allowed")
	if r, u := e.srv.Sweep(); r != 0 || u != 1 {
		t.Errorf("first sweep dropped %d records, %d unknown ids; want 0, 1", r, u)
	}
	e.clock.Advance(1500 * time.Millisecond) // old: past the stale window; testKey still within it
	if r, u := e.srv.Sweep(); r != 1 || u != 0 {
		t.Errorf("second sweep dropped %d records, %d unknown ids; want 1, 0", r, u)
	}
	if st := e.srv.CacheStats(); st.Records != 1 || st.Unknown != 0 {
		t.Errorf("after sweeps: %+v, want 1 record", st)
	}
	mustOutcome(t, e, old, "allowed") // simply read again
}

// get is Check's cache stage alone: the entry for keyID, read from the
// store on a miss, or the reason there is none usable.
func (c *cache) get(ctx context.Context, keyID string) (*entry, Source, policy.Reason) {
	e, source, reason, read := c.peekAt(keyID, c.cfg.Now())
	if read {
		return c.fetch(ctx, keyID)
	}
	return e, source, reason
}
