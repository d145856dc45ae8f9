package extauthz

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/policy"
)

// sidecarRequest is a CheckRequest shaped like the one an Envoy sidecar sends:
// ~15 headers, a peer address and a per-route context extension.
func sidecarRequest(rawKey string) *authv3.CheckRequest {
	b := newReq().key(rawKey).scopes("orders:read")
	for name, value := range map[string]string{
		":authority":            "api.example.com",
		":method":               "GET",
		":path":                 "/v1/orders?limit=20",
		":scheme":               "https",
		"accept":                "application/json",
		"accept-encoding":       "gzip, deflate, br",
		"user-agent":            "acme-client/2.3.1 (linux; amd64)",
		"x-request-id":          "4b9f3c1e-8a2d-4e5f-9c7b-1a2b3c4d5e6f",
		"x-forwarded-proto":     "https",
		"x-forwarded-for":       "203.0.113.7",
		"x-b3-traceid":          "80f198ee56343ba864fe8b2a57d3eff7",
		"x-b3-spanid":           "e457b5a2e4d86bd1",
		"x-b3-sampled":          "1",
		"x-envoy-attempt-count": "1",
	} {
		b.header(name, value)
	}
	r := b.path("/v1/orders?limit=20").build()
	r.Attributes.Destination = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: "10.0.0.9", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}},
	}}}
	return r
}

func benchEnv(b *testing.B, mods ...func(*Config)) *env {
	e := newEnv(b, mods...)
	e.srv.OnDecision = nil
	return e
}

func benchOutcome(b *testing.B, e *env, req *authv3.CheckRequest, want string) {
	b.Helper()
	resp, err := e.srv.Check(context.Background(), req)
	if err != nil || outcome(resp) != want {
		b.Fatalf("outcome %q %v, want %q", outcome(resp), err, want)
	}
}

// BenchmarkCheck is the cache-hit path.
func BenchmarkCheck(b *testing.B) { benchHit(b, benchEnv(b)) }

// benchHit runs Check on a cache hit of testKey.
func benchHit(b *testing.B, e *env) {
	req := sidecarRequest(testKey)
	benchOutcome(b, e, req, "allowed")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = served(e).Check(ctx, req)
	}
	benchOutcome(b, e, req, "allowed")
}

// BenchmarkCheckFeedFresh is the cache-hit path of a record past FoundTTL
// that a healthy change feed keeps fresh.
func BenchmarkCheckFeedFresh(b *testing.B) {
	e := benchEnv(b)
	e.srv.ChangeFeed(e.clock.Now().Add(time.Hour))
	benchOutcome(b, e, sidecarRequest(testKey), "allowed")
	e.clock.Advance(time.Minute)
	benchHit(b, e)
	if n := e.store.reads.Load(); n != 1 {
		b.Fatalf("%d store reads, want 1: not the fresh path", n)
	}
}

func BenchmarkCheckParallel(b *testing.B) {
	e := benchEnv(b)
	req := sidecarRequest(testKey)
	benchOutcome(b, e, req, "allowed")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = served(e).Check(ctx, req)
		}
	})
}

// BenchmarkCheckMiss reads the store on every Check: the clock moves past
// FoundTTL between calls.
func BenchmarkCheckMiss(b *testing.B) {
	e := benchEnv(b, func(c *Config) { c.FoundTTL = time.Second })
	req := sidecarRequest(testKey)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		e.clock.Advance(time.Second)
		_, _ = served(e).Check(ctx, req)
	}
	b.StopTimer()
	if n := e.store.reads.Load(); n < int64(b.N) {
		b.Fatalf("%d store reads for %d checks: not the miss path", n, b.N)
	}
	benchOutcome(b, e, req, "allowed")
}

func BenchmarkCheckMalformed(b *testing.B) {
	e := benchEnv(b)
	bad := testKey[:len(testKey)-1] + "0"
	if bad == testKey {
		bad = testKey[:len(testKey)-1] + "1"
	}
	req := sidecarRequest(bad)
	benchOutcome(b, e, req, "malformed_key")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = served(e).Check(ctx, req)
	}
	if n := e.store.reads.Load(); n != 0 {
		b.Fatalf("%d store reads for malformed keys", n)
	}
}

// sidecarRawRequest is sidecarRequest as Envoy sends it with
// encode_raw_headers (the envoy.yaml default): every header in header_map
// with its value in raw_value.
func sidecarRawRequest(rawKey string) *authv3.CheckRequest {
	r := sidecarRequest(rawKey)
	http := r.Attributes.Request.Http
	for name, value := range http.Headers {
		http.HeaderMap = appendRaw(http.HeaderMap, name, value)
	}
	http.Headers = nil
	return r
}

func appendRaw(m *corev3.HeaderMap, name, value string) *corev3.HeaderMap {
	if m == nil {
		m = &corev3.HeaderMap{}
	}
	m.Headers = append(m.Headers, &corev3.HeaderValue{Key: name, RawValue: []byte(value)})
	return m
}

// BenchmarkCheckRawHeaders is the cache-hit path with Envoy's raw headers.
func BenchmarkCheckRawHeaders(b *testing.B) {
	e := benchEnv(b)
	req := sidecarRawRequest(testKey)
	benchOutcome(b, e, req, "allowed")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := served(e).Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// served is the Server as gRPC calls it (Register): what production runs.
func served(e *env) authv3.AuthorizationServer { return wireServer{s: e.srv} }

// BenchmarkCheckTrackUsage is BenchmarkCheck with last-used tracking on:
// the cost is one atomic load per Check once a key is noted in a period.
func BenchmarkCheckTrackUsage(b *testing.B) {
	e := benchEnv(b, trackUsage)
	benchHit(b, e)
	if got, _ := e.srv.TakeUsage(); len(got) != 1 {
		b.Fatalf("usage not noted: %v", got)
	}
}

// BenchmarkCheckRateLimited is a cache hit of a key with a rate limit and
// a quota that it stays under: the limiter's cost per Check.
func BenchmarkCheckRateLimited(b *testing.B) {
	e := benchEnv(b)
	e.put(testKey, func(r *policy.Record) {
		r.RateLimit = &policy.RateLimit{Requests: policy.MaxLimitRequests, Per: "second"}
		r.Quota = &policy.Quota{Requests: policy.MaxLimitRequests, Per: "day"}
	})
	benchHit(b, e)
}

// allowAll is a GlobalLimiter that allows at no cost: what the global
// limit stage itself adds per Check, without a call to a service.
type allowAll struct{}

func (allowAll) Take(context.Context, string, *policy.Limits) (policy.Reason, time.Duration) {
	return policy.Allowed, 0
}

// BenchmarkCheckGlobalLimited is a cache hit of a key with global limits,
// under a limiter that allows at once: the stage's own cost (the real one
// adds a gRPC call to the rate limit service). BenchmarkCheck, a key
// without global limits beside a limiter, must not change.
func BenchmarkCheckGlobalLimited(b *testing.B) {
	e := benchEnv(b, withGlobal(allowAll{}))
	e.put(testKey, func(r *policy.Record) {
		r.GlobalRateLimit = &policy.RateLimit{Requests: 100, Per: "minute"}
		r.GlobalQuota = &policy.Quota{Requests: 10000, Per: "day"}
	})
	benchHit(b, e)
}
