package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keygate/keygate/internal/rltest"
	"github.com/keygate/keygate/policy"
)

// TestGlobalLimits: with --ratelimit-service, a key's global limit is
// counted by the real service and refused past it, a key without global
// limits never calls it, the calls show in the metrics, and the client is
// closed with the server (goleak).
func TestGlobalLimits(t *testing.T) {
	redis := rltest.StartRedis(t)
	svc := rltest.Start(t, redis, rltest.Options{})
	kf := newKeyFile(t, 2)
	ctx := context.Background()
	rec, v, err := kf.fs.Get(ctx, kf.ids[0])
	if err != nil {
		t.Fatal(err)
	}
	rec.GlobalRateLimit = &policy.RateLimit{Requests: 2, Per: "hour"}
	if err := rec.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := kf.fs.Update(ctx, kf.ids[0], rec, v); err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); now.Truncate(time.Hour).Add(time.Hour).Sub(now) < 2*time.Second {
		time.Sleep(now.Truncate(time.Hour).Add(time.Hour).Sub(now) + 10*time.Millisecond) // three requests in one hour's window
	}
	cfg := testConfig()
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.RateLimit.Service, cfg.RateLimit.Timeout = svc.GRPCAddr, time.Second
	r := startServer(t, cfg, Deps{Log: discard, Store: kf.fs})
	// Until the peppers load, Checks are store_unavailable (fail closed).
	eventually(t, "SERVING", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	var got []string
	for range 3 {
		got = append(got, r.decide(t, kf.raw[0]))
	}
	for range 3 {
		got = append(got, r.decide(t, kf.raw[1]))
	}
	if want := "allowed allowed rate_limited allowed allowed allowed"; strings.Join(got, " ") != want {
		t.Errorf("decisions %v, want %s", got, want)
	}
	resp, err := http.Get("http://" + r.lis.metrics.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`keygate_ratelimit_requests_total{result="ok"} 2`, `keygate_ratelimit_requests_total{result="over_limit"} 1`,
		`keygate_ratelimit_requests_total{result="error"} 0`, `keygate_ratelimit_request_duration_seconds_count 3`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
}
