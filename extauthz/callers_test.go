package extauthz

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/peer"
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
