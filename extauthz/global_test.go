package extauthz

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// fakeGlobal is a GlobalLimiter answering what it is told, recording each
// call. The real one (package ratelimit) is tested against the real
// service; this one checks what Check does with each answer.
type fakeGlobal struct {
	mu     sync.Mutex
	reason policy.Reason
	retry  time.Duration
	calls  []globalCall
}

type globalCall struct {
	keyID string
	lim   policy.Limits
}

func (g *fakeGlobal) Take(_ context.Context, keyID string, lim *policy.Limits) (policy.Reason, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, globalCall{keyID, *lim})
	return g.reason, g.retry
}

func (g *fakeGlobal) answer(reason policy.Reason, retry time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reason, g.retry = reason, retry
}

func (g *fakeGlobal) taken() []globalCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]globalCall(nil), g.calls...)
}

func withGlobal(g GlobalLimiter) func(*Config) { return func(c *Config) { c.Global = g } }

func globalLimits(rate *policy.RateLimit, quota *policy.Quota) func(*policy.Record) {
	return func(r *policy.Record) { r.GlobalRateLimit, r.GlobalQuota = rate, quota }
}

// TestGlobalLimitAnswers: each answer of the limiter becomes the matching
// decision; a 429 carries the global limits' headers and the limiter's
// retry time; a failure is 503 ratelimit_unavailable; an answer outside
// the contract never allows.
func TestGlobalLimitAnswers(t *testing.T) {
	for _, tt := range []struct {
		name      string
		reason    policy.Reason
		retry     time.Duration
		want      string
		status    int
		headers   map[string]string // on the deny
		noHeaders bool
	}{
		{name: "allowed", reason: policy.Allowed, want: "allowed"},
		{name: "rate", reason: policy.RateLimited, retry: 42 * time.Second, want: "rate_limited", status: 429, headers: map[string]string{
			"retry-after":      "42",
			"ratelimit-policy": `"rate";q=100;w=60, "quota";q=10000;w=86400`,
			"ratelimit":        `"rate";r=0;t=42`,
		}},
		{name: "quota", reason: policy.QuotaExceeded, retry: 3 * time.Hour, want: "quota_exceeded", status: 429, headers: map[string]string{
			"retry-after": "10800",
			"ratelimit":   `"quota";r=0;t=10800`,
		}},
		{name: "retry under a second reads 1", reason: policy.RateLimited, retry: 0, want: "rate_limited", status: 429, headers: map[string]string{"retry-after": "1"}},
		{name: "unavailable", reason: policy.RateLimitUnavailable, want: "ratelimit_unavailable", status: 503, noHeaders: true},
		{name: "a reason outside the contract", reason: policy.Revoked, want: "ratelimit_unavailable", status: 503, noHeaders: true},
		{name: "an out-of-range reason", reason: policy.Reason(250), want: "ratelimit_unavailable", status: 503, noHeaders: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGlobal{reason: tt.reason, retry: tt.retry}
			e := newEnv(t, withGlobal(g))
			e.put(testKey, globalLimits(&policy.RateLimit{Requests: 100, Per: "minute"}, &policy.Quota{Requests: 10000, Per: "day"}))
			resp := e.check(newReq().key(testKey).build())
			if got := outcome(resp); got != tt.want {
				t.Fatalf("outcome %s, want %s", got, tt.want)
			}
			if d := e.lastDecision(); d.Reason.String() != tt.want || d.KeyID != testID {
				t.Errorf("decision %+v", d)
			}
			calls := g.taken()
			wantLim := policy.Limits{Rate: 100.0 / 60, Burst: 100, RateRequests: 100, RateWindow: time.Minute, Quota: 10000, QuotaWindow: 24 * time.Hour}
			if len(calls) != 1 || calls[0].keyID != testID || calls[0].lim != wantLim {
				t.Fatalf("Take calls %+v, want one for %s with %+v", calls, testID, wantLim)
			}
			if tt.status == 0 {
				return
			}
			if code := int(resp.GetDeniedResponse().GetStatus().GetCode()); code != tt.status {
				t.Errorf("status %d, want %d", code, tt.status)
			}
			for name, want := range tt.headers {
				if got := deniedHeader(resp, name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if tt.noHeaders && (deniedHeader(resp, "retry-after") != "" || deniedHeader(resp, "ratelimit") != "") {
				t.Errorf("a 503 with rate limit headers: %v", resp.GetDeniedResponse().GetHeaders())
			}
		})
	}
}

// TestGlobalLimitStage: only keys with global limits reach the limiter,
// only once everything else (their local limits included) allowed them;
// local limits keep working beside the global ones; a key with global
// limits on a server without a limiter is denied, not allowed unlimited.
func TestGlobalLimitStage(t *testing.T) {
	g := &fakeGlobal{}
	e := newEnv(t, withGlobal(g))
	e.put(otherKey, rateLimit(2, "hour", 2)) // local limits only
	for range 3 {
		e.check(newReq().key(otherKey).build())
	}
	if got := outcome(e.check(newReq().key(otherKey).build())); got != "rate_limited" {
		t.Errorf("local limit beside a limiter: %s", got)
	}
	if n := len(g.taken()); n != 0 {
		t.Fatalf("%d Take calls for a key without global limits", n)
	}

	e.put(testKey, func(r *policy.Record) {
		r.RateLimit = &policy.RateLimit{Requests: 2, Per: "hour"}
		r.GlobalQuota = &policy.Quota{Requests: 1000, Per: "day"}
		r.Scopes = []string{"orders:read"}
	})
	if got := outcome(e.check(newReq().key(testKey).scopes("admin").build())); got != "scope_denied" {
		t.Fatalf("scope: %s", got)
	}
	if got := outcome(e.check(newReq().key(wrongSecretKey).build())); got != "unknown_key" {
		t.Fatalf("wrong secret: %s", got)
	}
	for i := range 2 {
		if got := outcome(e.check(newReq().key(testKey).build())); got != "allowed" {
			t.Fatalf("request %d: %s", i, got)
		}
	}
	if got := outcome(e.check(newReq().key(testKey).build())); got != "rate_limited" {
		t.Fatalf("third request in the hour: %s (the local limit)", got)
	}
	if n := len(g.taken()); n != 2 {
		t.Errorf("%d Take calls, want 2: a request denied before the last stage must not be counted globally", n)
	}

	noLimiter := newEnv(t)
	noLimiter.put(testKey, globalLimits(&policy.RateLimit{Requests: 100, Per: "second"}, nil))
	noLimiter.put(otherKey, nil)
	if got := outcome(noLimiter.check(newReq().key(testKey).build())); got != "ratelimit_unavailable" {
		t.Errorf("global limit without a limiter: %s, want ratelimit_unavailable", got)
	}
	if got := outcome(noLimiter.check(newReq().key(otherKey).build())); got != "allowed" {
		t.Errorf("a key without global limits, no limiter: %s", got)
	}
}

// TestGlobalLimitHTTPMode: the HTTP mode answers the same decisions, with
// the 429's headers for the proxy and 503 for a failed service.
func TestGlobalLimitHTTPMode(t *testing.T) {
	g := &fakeGlobal{reason: policy.QuotaExceeded, retry: 90 * time.Second}
	e := newEnv(t, withGlobal(g))
	e.put(testKey, globalLimits(nil, &policy.Quota{Requests: 5, Per: "hour"}))
	ts := serveHTTP(t, e)
	c := httpCase{target: "/auth", headers: fwd("GET", "/v1/orders", "api.example.com", map[string]string{"X-Api-Key": testKey})}
	resp := c.do(t, ts)
	h := resp.Header
	if resp.StatusCode != http.StatusTooManyRequests || h.Get("X-Keygate-Reason") != "quota_exceeded" ||
		h.Get("Retry-After") != "90" || h.Get("RateLimit-Policy") != `"quota";q=5;w=3600` || h.Get("RateLimit") != `"quota";r=0;t=90` {
		t.Errorf("quota: %d %v", resp.StatusCode, h)
	}
	g.answer(policy.RateLimitUnavailable, 0)
	if resp := c.do(t, ts); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Keygate-Reason") != "ratelimit_unavailable" {
		t.Errorf("unavailable: %d %v", resp.StatusCode, resp.Header)
	}
	g.answer(policy.Allowed, 0)
	if resp := c.do(t, ts); resp.StatusCode != http.StatusOK {
		t.Errorf("allowed: %d %v", resp.StatusCode, resp.Header)
	}
}
