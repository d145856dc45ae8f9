package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/rltest"
	"github.com/keygate/keygate/policy"
)

// BenchmarkTake is one call to the real service over loopback (and its
// Redis round trip) for a key with a global rate limit and quota it stays
// under: what a Check of such a key adds.
func BenchmarkTake(b *testing.B) {
	redis := rltest.StartRedis(b)
	svc := rltest.Start(b, redis, rltest.Options{})
	cfg := DefaultConfig()
	cfg.Service, cfg.Timeout, cfg.Failure = svc.GRPCAddr, time.Second, FailDeny
	c, err := New(cfg, discard)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	lim := &policy.Limits{RateRequests: policy.MaxLimitRequests, RateWindow: time.Second,
		Quota: policy.MaxLimitRequests, QuotaWindow: 24 * time.Hour}
	ctx := context.Background()
	if r, _ := c.Take(ctx, "BenchTake001", lim); r != policy.Allowed {
		b.Fatalf("first call: %s", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := c.Take(ctx, "BenchTake001", lim); r != policy.Allowed {
			b.Fatalf("%s", r)
		}
	}
}
