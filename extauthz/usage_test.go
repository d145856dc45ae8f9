package extauthz

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

func trackUsage(c *Config) { c.TrackUsage = true }

// TestUsageNotesVerifiedKeys: a use is noted only when the key's secret
// verified (allowed or denied by its policy), once per period, with the time
// of its first use in the period.
func TestUsageNotesVerifiedKeys(t *testing.T) {
	e := newEnv(t, trackUsage)
	revoked, revokedID := e.newKey(func(r *policy.Record) { r.Status = policy.StatusRevoked })
	unknown, _ := newEnv(t).newKey(nil) // well-formed, in another store
	first := e.clock.Now()
	for i := range 3 {
		for _, req := range []struct {
			key  string
			want string
		}{
			{testKey, "allowed"},
			{revoked, "revoked_key"},
			{wrongSecretKey, "unknown_key"},
			{unknown, "unknown_key"},
			{"kg_garbage", "malformed_key"},
		} {
			if got := outcome(e.check(newReq().key(req.key).build())); got != req.want {
				t.Fatalf("round %d: %s, want %s", i, got, req.want)
			}
		}
		e.clock.Advance(time.Second)
	}
	got, dropped := e.srv.TakeUsage()
	want := map[string]time.Time{testID: first, revokedID: first}
	if len(got) != len(want) || dropped != 0 {
		t.Fatalf("TakeUsage = %v (dropped %d), want %v", got, dropped, want)
	}
	for id, at := range want {
		if !got[id].Equal(at) {
			t.Errorf("%s noted at %v, want its first use %v", id, got[id], at)
		}
	}

	// A new period notes afresh; an idle key is not noted.
	if got, _ := e.srv.TakeUsage(); len(got) != 0 {
		t.Errorf("second take with no traffic: %v, want empty", got)
	}
	e.check(newReq().key(testKey).build())
	if got, _ := e.srv.TakeUsage(); len(got) != 1 || !got[testID].Equal(e.clock.Now()) {
		t.Errorf("take after one use: %v, want %s at %v", got, testID, e.clock.Now())
	}
}

// TestUsageRefetchAndEvict: an entry read again (TTL, eviction) in the same
// period is not noted twice, and is noted again in the next period.
func TestUsageRefetchAndEvict(t *testing.T) {
	e := newEnv(t, trackUsage, func(c *Config) { c.FoundTTL = time.Second })
	e.check(newReq().key(testKey).build())
	e.clock.Advance(2 * time.Second) // expired: the next Check reads the store
	e.check(newReq().key(testKey).build())
	e.srv.Evict(testID)
	e.check(newReq().key(testKey).build())
	if n := e.store.readsFor(testID); n != 3 {
		t.Fatalf("%d store reads, want 3 (test setup)", n)
	}
	if got, _ := e.srv.TakeUsage(); len(got) != 1 {
		t.Errorf("take: %v, want one id", got)
	}
	e.check(newReq().key(testKey).build())
	if got, _ := e.srv.TakeUsage(); len(got) != 1 {
		t.Errorf("next period: %v, want the key noted again", got)
	}
}

// TestUsageBounded: past CacheSize pending ids, uses are counted, not held.
func TestUsageBounded(t *testing.T) {
	e := newEnv(t, trackUsage, func(c *Config) { c.CacheSize = 2 })
	for range 4 {
		k, _ := e.newKey(nil)
		if got := outcome(e.check(newReq().key(k).build())); got != "allowed" {
			t.Fatal(got)
		}
	}
	got, dropped := e.srv.TakeUsage()
	if len(got) != 2 || dropped != 2 {
		t.Errorf("take: %d ids, %d dropped; want 2, 2", len(got), dropped)
	}
	if _, dropped := e.srv.TakeUsage(); dropped != 0 {
		t.Errorf("dropped count not reset: %d", dropped)
	}
}

// TestUsageOff: without TrackUsage nothing is held.
func TestUsageOff(t *testing.T) {
	e := newEnv(t)
	e.check(newReq().key(testKey).build())
	if got, dropped := e.srv.TakeUsage(); got != nil || dropped != 0 {
		t.Errorf("TakeUsage with tracking off = %v, %d", got, dropped)
	}
}

// TestUsageConcurrent: Checks racing with takes lose no key: every key used
// in a period appears in that take or the next (run with -race).
func TestUsageConcurrent(t *testing.T) {
	e := newEnv(t, trackUsage)
	keys := make([]string, 8)
	for i := range keys {
		keys[i], _ = e.newKey(nil)
	}
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx := context.Background()
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				e.srv.Check(ctx, newReq().key(k).build())
			}
		}()
	}
	for range 50 {
		got, _ := e.srv.TakeUsage()
		mu.Lock()
		for id := range got {
			seen[id] = true
		}
		mu.Unlock()
	}
	wg.Wait()
	got, _ := e.srv.TakeUsage()
	for id := range got {
		seen[id] = true
	}
	if len(seen) != len(keys) {
		t.Errorf("%d of %d keys seen across takes", len(seen), len(keys))
	}
}
