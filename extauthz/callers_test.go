package extauthz

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/peer"

	"github.com/keygate/keygate/policy"
)

func callerLimit(rate float64, burst int) func(*Config) {
	return func(c *Config) { c.UnknownKeyRate, c.UnknownKeyBurst = rate, burst }
}

func fromPeer(ip string) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
}

// TestCallerLimited: a caller that sent its burst of unknown keys gets 429
// for keys not cached as valid until its budget refills; cached valid keys
// keep working; other callers are not affected.
func TestCallerLimited(t *testing.T) {
	e := newEnv(t, callerLimit(1, 3))
	guesser, other := fromPeer("10.0.0.7"), fromPeer("10.0.0.8")
	mustOutcomeCtx(t, e, guesser, testKey, "allowed") // cached before the guessing
	fresh, _ := e.newKey(nil)
	for range 3 {
		k, _ := newEnv(t).newKey(nil) // well-formed, unknown here
		mustOutcomeCtx(t, e, guesser, k, "unknown_key")
	}
	k, _ := newEnv(t).newKey(nil)
	reads := e.store.reads.Load()
	mustOutcomeCtx(t, e, guesser, k, "caller_rate_limited")
	mustOutcomeCtx(t, e, guesser, fresh, "caller_rate_limited") // not cached: no lookup for this caller now
	if n := e.store.reads.Load() - reads; n != 0 {
		t.Errorf("%d store reads for a blocked caller, want 0", n)
	}
	mustOutcomeCtx(t, e, guesser, testKey, "allowed")
	mustOutcomeCtx(t, e, guesser, "kg_nope", "malformed_key")
	mustOutcomeCtx(t, e, other, k, "unknown_key")
	mustOutcomeCtx(t, e, other, fresh, "allowed")

	e.clock.Advance(time.Second) // one token back
	mustOutcomeCtx(t, e, guesser, k, "unknown_key")
	mustOutcomeCtx(t, e, guesser, k, "caller_rate_limited")
}

// TestCallerLimitHTTP: the HTTP mode limits by the connecting address.
func TestCallerLimitHTTP(t *testing.T) {
	e := newEnv(t, callerLimit(0.001, 1))
	ts := serveHTTP(t, e)
	unknown, _ := newEnv(t).newKey(nil)
	e.keys = append(e.keys, unknown)
	var got []string
	for range 2 {
		resp := httpCase{target: "/ext_authz/", headers: map[string]string{"X-Api-Key": unknown}}.do(t, ts)
		got = append(got, resp.Header.Get(headerReason))
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get(headerReason) != "caller_rate_limited" {
			t.Errorf("429 reason %q", resp.Header.Get(headerReason))
		}
	}
	if got[0] != "unknown_key" || got[1] != "caller_rate_limited" {
		t.Errorf("reasons %v, want unknown_key then caller_rate_limited", got)
	}
}

// TestCallerLimitOff: a negative rate never limits.
func TestCallerLimitOff(t *testing.T) {
	e := newEnv(t, callerLimit(-1, 1))
	for range 50 {
		k, _ := newEnv(t).newKey(nil)
		mustOutcomeCtx(t, e, fromPeer("10.0.0.7"), k, "unknown_key")
	}
	if e.srv.callers != nil {
		t.Error("limiter built with a negative rate")
	}
}

func mustOutcomeCtx(t *testing.T, e *env, ctx context.Context, rawKey, want string) {
	t.Helper()
	if got := outcome(e.checkCtx(ctx, newReq().key(rawKey).build())); got != want {
		t.Fatalf("outcome %q, want %q", got, want)
	}
}

// TestCallerChargedBeforeRead: 200 concurrent unknown keys from one caller
// cost at most its budget in store reads (a slow store keeps every read in
// flight while the others arrive); the rest are 429 without a read.
func TestCallerChargedBeforeRead(t *testing.T) {
	const burst, n = 10, 200
	e := newEnv(t, callerLimit(0.001, burst))
	block := make(chan struct{})
	e.store.set(func(s *fakeStore) { s.block = block })
	keys := make([]string, n)
	for i := range keys {
		keys[i], _ = newEnv(t).newKey(nil) // well-formed, unknown here
	}
	e.keys = append(e.keys, keys...)
	var wg sync.WaitGroup
	reasons := make([]string, n)
	for i, k := range keys {
		wg.Go(func() { reasons[i] = outcome(e.checkCtx(fromPeer("10.0.0.7"), newReq().key(k).build())) })
	}
	// Every request has either entered a read or been refused before
	// the reads are let go.
	waitFor(t, func() bool { return e.store.reads.Load()+int64(countDecisions(e, "caller_rate_limited")) == n })
	close(block)
	wg.Wait()
	if reads := e.store.reads.Load(); reads > burst {
		t.Errorf("%d store reads for %d concurrent unknown keys, budget %d", reads, n, burst)
	}
	count := map[string]int{}
	for _, r := range reasons {
		count[r]++
	}
	if count["unknown_key"] != burst || count["caller_rate_limited"] != n-burst {
		t.Errorf("reasons %v, want %d unknown_key and the rest caller_rate_limited", count, burst)
	}
}

// TestCallerRefundForFoundKeys: a read that finds a valid key gives the
// token back, so a caller sending new valid keys is never throttled; a
// wrong secret for a key that exists costs a token like an unknown id.
func TestCallerRefundForFoundKeys(t *testing.T) {
	e := newEnv(t, callerLimit(0.001, 2))
	guesser := fromPeer("10.0.0.7")
	for range 5 {
		k, _ := e.newKey(nil)
		mustOutcomeCtx(t, e, guesser, k, "allowed")
	}
	mustOutcomeCtx(t, e, guesser, wrongSecretKey, "unknown_key") // reads testKey's record: charged
	mustOutcomeCtx(t, e, guesser, wrongSecretKey, "unknown_key") // cached now: charged after
	unknown, _ := newEnv(t).newKey(nil)
	mustOutcomeCtx(t, e, guesser, unknown, "caller_rate_limited")
}

// TestCallerFlagsPruned: callers that ran out of budget and were never seen
// again are dropped with the LRU, and so are their flags: the blocked count
// returns to zero and the one-atomic-load fast path comes back.
func TestCallerFlagsPruned(t *testing.T) {
	// A long lookup timeout: 10,000 reads under -race on a loaded machine
	// must not turn one into store_unavailable.
	e := newEnv(t, callerLimit(0.001, 1), func(c *Config) { c.LookupTimeout = time.Minute })
	f, _ := policy.NewFormat("kg")
	for i := range maxCallers + 10 {
		k, _, err := f.Generate() // well-formed, unknown
		if err != nil {
			t.Fatal(err)
		}
		ip := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String()
		mustOutcomeCtx(t, e, fromPeer(ip), k, "unknown_key")
	}
	if got := e.srv.callers.blocked.Load(); got != maxCallers {
		t.Errorf("blocked = %d, want %d (the callers still tracked)", got, maxCallers)
	}
	if got := e.srv.callers.buckets.Len(); got != maxCallers {
		t.Errorf("%d callers tracked, want %d", got, maxCallers)
	}
	e.clock.Advance(time.Hour)
	for i := range maxCallers {
		ip := net.IPv4(11, byte(i>>16), byte(i>>8), byte(i)).String()
		e.srv.Evict(testID)
		mustOutcomeCtx(t, e, fromPeer(ip), testKey, "allowed") // a read: tracked, refunded, never flagged
	}
	if got := e.srv.callers.blocked.Load(); got != 0 {
		t.Errorf("blocked = %d after every flagged caller was dropped, want 0", got)
	}
}

// TestCallerPerClient: with UnknownKeyPerClient, clients behind one proxy
// have their own budgets; without a client address, the peer pays.
func TestCallerPerClient(t *testing.T) {
	e := newEnv(t, callerLimit(0.001, 1), func(c *Config) { c.UnknownKeyPer = PerClient })
	proxy := fromPeer("10.0.0.7")
	check := func(source, rawKey, want string) {
		t.Helper()
		if got := outcome(e.checkCtx(proxy, newReq().key(rawKey).source(source).build())); got != want {
			t.Errorf("source %q: outcome %q, want %q", source, got, want)
		}
	}
	k1, _ := newEnv(t).newKey(nil)
	k2, _ := newEnv(t).newKey(nil)
	check("203.0.113.1", k1, "unknown_key")
	check("203.0.113.1", k2, "caller_rate_limited")
	check("203.0.113.2", k2, "unknown_key") // another client, same proxy
	check("", k1, "unknown_key")            // no client address: the proxy's budget
	check("", k2, "caller_rate_limited")
}

func countDecisions(e *env, reason string) (n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.decisions {
		if d.Reason.String() == reason {
			n++
		}
	}
	return n
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCallerValidKeysNeverDrain: reads of valid, uncached keys hold a token
// only while they run and give it back whole, however they interleave. (A
// rate.Reservation cancelled after later reservations gives back only part
// of its token: at 50/s, a reservation 20 ms later takes the whole refund,
// so a proxy sending many new valid keys at once, as to a cold replica, was
// drained and throttled.) Here four reads overlap, one starting every 5 ms.
func TestCallerValidKeysNeverDrain(t *testing.T) {
	c := newCallers(&Config{UnknownKeyRate: 50, UnknownKeyBurst: 10})
	ctx, in := fromPeer("10.0.0.7"), &incoming{}
	start := time.Unix(1_700_000_000, 0)
	var reading []func(bool, time.Time)
	for i := range 400 {
		now := start.Add(time.Duration(i) * 5 * time.Millisecond)
		settle, ok := c.reserve(ctx, in, now)
		if !ok {
			t.Fatalf("valid key %d throttled", i)
		}
		if reading = append(reading, settle); len(reading) == 4 {
			reading[0](false, now) // found: released whole
			reading = reading[1:]
		}
	}
	now := start.Add(2 * time.Second)
	for _, settle := range reading {
		settle(false, now)
	}
	for i := range 10 { // the burst, untouched by 400 valid keys
		settle, ok := c.reserve(ctx, in, now)
		if !ok {
			t.Fatalf("unknown key %d of the untouched budget throttled", i)
		}
		settle(true, now)
	}
	if _, ok := c.reserve(ctx, in, now); ok {
		t.Error("an 11th unknown key within the same instant was not throttled")
	}
}

// TestCallerFlaggedOnlyWhenOut: a caller is flagged (counted in blocked,
// which makes every Check look its caller up, and moves callers in the
// LRU that decides whose budget is forgotten first) only once it has less
// than one token to spare: one token left, spendable or held by nothing,
// is not out of budget.
func TestCallerFlaggedOnlyWhenOut(t *testing.T) {
	const spend, reserve = "spend", "reserve"
	for _, tc := range []struct {
		name    string
		steps   []string
		blocked bool
	}{
		{"one of two tokens spent", []string{spend}, false},
		{"both spent", []string{spend, spend}, true},
		{"one of two held by a read", []string{reserve}, false},
		{"both held by reads", []string{reserve, reserve}, true},
		{"one spent, one held", []string{spend, reserve}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCallers(&Config{UnknownKeyRate: 0.001, UnknownKeyBurst: 2})
			ctx, in, now := fromPeer("10.0.0.7"), &incoming{}, time.Unix(1_700_000_000, 0)
			for _, step := range tc.steps {
				if step == spend {
					c.spend(ctx, in, now)
				} else if _, ok := c.reserve(ctx, in, now); !ok {
					t.Fatal("reserve refused with a token to spare")
				}
			}
			want := int64(0)
			if tc.blocked {
				want = 1
			}
			if got := c.blocked.Load(); got != want {
				t.Errorf("blocked = %d, want %d", got, want)
			}
			if got := c.blockedAt(ctx, in, now); got != tc.blocked {
				t.Errorf("blockedAt = %v, want %v", got, tc.blocked)
			}
		})
	}
}

// TestCancelledCallerExact: a caller whose context ends while its store
// read is in flight gets exactly store_unavailable (503), is recorded as
// such, and is not charged to the unknown-key throttle: with a budget of
// one, its next unknown key is read and answered unknown_key, not
// caller_rate_limited. The read itself finishes for whoever shares it.
func TestCancelledCallerExact(t *testing.T) {
	e := newEnv(t, callerLimit(0.001, 1), func(c *Config) { c.LookupTimeout = time.Minute })
	release, entered := make(chan struct{}), make(chan string, 1)
	e.store.set(func(s *fakeStore) { s.block, s.entered = release, entered })
	unknown, _ := newEnv(t).newKey(nil)
	e.keys = append(e.keys, unknown)

	base, cancel := context.WithCancel(fromPeer("10.0.0.7"))
	done := make(chan *authv3.CheckResponse, 1)
	go func() {
		resp, err := e.srv.Check(base, newReq().key(unknown).build())
		if err != nil {
			t.Errorf("Check returned an error (Envoy may fail open on it): %v", err)
		}
		done <- resp
	}()
	<-entered // the read is in flight
	cancel()
	resp := <-done
	if got := outcome(resp); got != "store_unavailable" {
		t.Fatalf("cancelled caller: %q, want store_unavailable", got)
	}
	if code := resp.GetDeniedResponse().GetStatus().GetCode(); int(code) != 503 {
		t.Errorf("cancelled caller: HTTP %d, want 503", code)
	}
	if n := countDecisions(e, "store_unavailable"); n != 1 {
		t.Errorf("%d store_unavailable decisions recorded, want exactly 1", n)
	}
	close(release)
	e.store.set(func(s *fakeStore) { s.block, s.entered = nil, nil })

	other, _ := newEnv(t).newKey(nil)
	e.keys = append(e.keys, other)
	if got := outcome(e.checkCtx(fromPeer("10.0.0.7"), newReq().key(other).build())); got != "unknown_key" {
		t.Errorf("the same caller's next unknown key: %q, want unknown_key (the cancelled read must not have spent its token)", got)
	}
	third, _ := newEnv(t).newKey(nil)
	e.keys = append(e.keys, third)
	if got := outcome(e.checkCtx(fromPeer("10.0.0.7"), newReq().key(third).build())); got != "caller_rate_limited" {
		t.Errorf("a third unknown key, its one token spent: %q, want caller_rate_limited", got)
	}
}
