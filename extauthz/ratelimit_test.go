package extauthz

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/policy"
)

func rateLimit(n int, per string, burst int) func(*policy.Record) {
	return func(r *policy.Record) { r.RateLimit = &policy.RateLimit{Requests: n, Per: per, Burst: burst} }
}

func deniedHeader(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// TestRateLimit: a key limited to 5/s (burst 5) sent 20/s for 3 s gets its
// burst plus 5 a second, 429s with the headers for the rest, and recovers.
func TestRateLimit(t *testing.T) {
	e := newEnv(t)
	e.put(testKey, rateLimit(5, "second", 0))
	req := newReq().key(testKey).build()
	allowed := 0
	for range 60 { // 20/s for 3 s
		resp := e.check(req)
		switch outcome(resp) {
		case "allowed":
			allowed++
		case "rate_limited":
			if code := resp.GetDeniedResponse().GetStatus().GetCode(); code != 429 {
				t.Fatalf("status %d", code)
			}
			if ra, pol, rl := deniedHeader(resp, "retry-after"), deniedHeader(resp, "ratelimit-policy"), deniedHeader(resp, "ratelimit"); ra != "1" || pol != `"rate";q=5;w=1` || rl != `"rate";r=0;t=1` {
				t.Fatalf("headers retry-after %q, ratelimit-policy %q, ratelimit %q", ra, pol, rl)
			}
		default:
			t.Fatalf("outcome %s", outcome(resp))
		}
		e.clock.Advance(50 * time.Millisecond)
	}
	if allowed < 19 || allowed > 21 { // 5 burst + 5/s × 3 s
		t.Errorf("%d of 60 allowed at 20/s for 3 s, want ~20", allowed)
	}
	e.clock.Advance(time.Second)
	for i := range 5 {
		if got := outcome(e.check(req)); got != "allowed" {
			t.Fatalf("after a quiet second, request %d: %s (the bucket refills)", i, got)
		}
	}
	if d := e.lastDecision(); d.Reason != policy.Allowed || d.KeyID != testID {
		t.Errorf("decision %+v", d)
	}
}

// TestQuota: a quota admits N per UTC-aligned window, says when it resets,
// and starts over in the next window; other keys are unaffected.
func TestQuota(t *testing.T) {
	e := newEnv(t)
	e.put(testKey, func(r *policy.Record) { r.Quota = &policy.Quota{Requests: 3, Per: "minute"} })
	req := newReq().key(testKey).build()
	start := e.clock.Now()
	next := start.Truncate(time.Minute).Add(time.Minute)
	for i := range 3 {
		if got := outcome(e.check(req)); got != "allowed" {
			t.Fatalf("request %d: %s", i, got)
		}
	}
	resp := e.check(req)
	want := int(next.Sub(start).Seconds() + 0.999)
	if outcome(resp) != "quota_exceeded" || deniedHeader(resp, "retry-after") != strconv.Itoa(max(1, want)) {
		t.Fatalf("4th: %s retry-after %q, want quota_exceeded %d", outcome(resp), deniedHeader(resp, "retry-after"), want)
	}
	if got := outcome(e.check(newReq().key(otherKey).build())); got == "quota_exceeded" {
		t.Error("another key shares the quota")
	}
	e.clock.Advance(next.Sub(start))
	if got := outcome(e.check(req)); got != "allowed" {
		t.Errorf("next window: %s", got)
	}
}

// TestLimitsFollowRecordChanges: a changed record's limits apply at once,
// and a record without limits is never limited.
func TestLimitsFollowRecordChanges(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FoundTTL = time.Second })
	e.put(testKey, rateLimit(1, "hour", 1))
	req := newReq().key(testKey).build()
	e.check(req)
	if got := outcome(e.check(req)); got != "rate_limited" {
		t.Fatalf("second request in the hour: %s", got)
	}
	e.put(testKey, nil)
	e.clock.Advance(2 * time.Second) // the cache re-reads the record
	for range 50 {
		if got := outcome(e.check(req)); got != "allowed" {
			t.Fatalf("limit removed: %s", got)
		}
	}
	e.put(testKey, rateLimit(2, "hour", 2))
	e.clock.Advance(2 * time.Second)
	e.check(req)
	e.check(req)
	if got := outcome(e.check(req)); got != "rate_limited" {
		t.Errorf("new limit 2/hour, third request: %s", got)
	}
}

// TestRateLimitConcurrent: racing Checks never admit more than the burst
// (run with -race); the limiter's memory is bounded by CacheSize keys.
func TestRateLimitConcurrent(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CacheSize = 4 })
	e.put(testKey, rateLimit(100, "hour", 100))
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				resp, _ := e.srv.Check(context.Background(), newReq().key(testKey).build())
				if outcome(resp) == "allowed" {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Errorf("%d of 400 allowed with a burst of 100 and a frozen clock, want 100", n)
	}
	for range 10 {
		k, _ := e.newKey(rateLimit(1, "hour", 1))
		e.check(newReq().key(k).build())
	}
	if n := e.srv.limits.keys.Len(); n > 4 {
		t.Errorf("limiter holds %d keys, cap 4", n)
	}
}
