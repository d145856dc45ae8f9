package ratelimit

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/internal/rltest"
	"github.com/keygate/keygate/internal/testpki"
	"github.com/keygate/keygate/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// observed counts the results a Client reports.
type observed struct {
	mu      sync.Mutex
	results map[string]int
}

func (o *observed) observe(result string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.results == nil {
		o.results = map[string]int{}
	}
	o.results[result]++
}

func (o *observed) count(result string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.results[result]
}

// client returns a Client of svc's, changed by mod, closed at cleanup.
func client(t *testing.T, addr string, mod func(*Config)) (*Client, *observed) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Service = addr
	cfg.Timeout = time.Second // a loaded test machine; the timeout tests set their own
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	o := &observed{}
	c.SetObserver(o.observe)
	return c, o
}

func limits(rate int, rateWindow time.Duration, quota int, quotaWindow time.Duration) *policy.Limits {
	return &policy.Limits{RateRequests: rate, RateWindow: rateWindow, Quota: quota, QuotaWindow: quotaWindow}
}

// clearOfEdge waits, if need be, until a new window of w has just begun
// when fewer than margin remain of the current one, so that counts a test
// makes land in one window.
func clearOfEdge(t *testing.T, w, margin time.Duration) {
	t.Helper()
	now := time.Now()
	if left := now.Truncate(w).Add(w).Sub(now); left < margin {
		t.Logf("waiting %s for the next %s window", left.Round(time.Millisecond), w)
		time.Sleep(left + 10*time.Millisecond)
	}
}

// TestTake: against the real service, each limit admits its count in its
// window and then refuses with the right reason and the service's time to
// reset; keys never share counts; the quota wins when both are over.
func TestTake(t *testing.T) {
	redis := rltest.StartRedis(t)
	svc := rltest.Start(t, redis, rltest.Options{})
	c, obs := client(t, svc.GRPCAddr, nil)
	clearOfEdge(t, time.Hour, 2*time.Second)
	ctx := context.Background()

	for _, tt := range []struct {
		name   string
		keyID  string
		lim    *policy.Limits
		admits int
		then   policy.Reason
		window time.Duration // of the refusing limit
	}{
		{"rate 3/hour", "RateOnly0001", limits(3, time.Hour, 0, 0), 3, policy.RateLimited, time.Hour},
		{"quota 2/day", "QuotaOnly001", limits(0, 0, 2, 24*time.Hour), 2, policy.QuotaExceeded, 24 * time.Hour},
		{"rate 5/hour, quota 2/day: the quota", "BothQuota001", limits(5, time.Hour, 2, 24*time.Hour), 2, policy.QuotaExceeded, 24 * time.Hour},
		{"rate 2/hour, quota 5/day: the rate", "BothRate0001", limits(2, time.Hour, 5, 24*time.Hour), 2, policy.RateLimited, time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.admits {
				if reason, _ := c.Take(ctx, tt.keyID, tt.lim); reason != policy.Allowed {
					t.Fatalf("request %d: %s, want allowed", i+1, reason)
				}
			}
			for i := range 3 {
				reason, retry := c.Take(ctx, tt.keyID, tt.lim)
				if reason != tt.then || retry <= 0 || retry > tt.window {
					t.Fatalf("request %d over: %s retry %s, want %s within %s", tt.admits+i+1, reason, retry, tt.then, tt.window)
				}
			}
		})
	}
	// Another key with the same limits starts from zero.
	if reason, _ := c.Take(ctx, "RateOnly0002", limits(3, time.Hour, 0, 0)); reason != policy.Allowed {
		t.Errorf("a fresh key: %s", reason)
	}
	if obs.count(ResultOK) != 3+2+2+2+1 || obs.count(ResultOverLimit) != 4*3 {
		t.Errorf("observed %v", obs.results)
	}
}

// TestTakeConcurrent: calls racing from many goroutines (as from several
// replicas) are admitted exactly up to the limit.
func TestTakeConcurrent(t *testing.T) {
	redis := rltest.StartRedis(t)
	svc := rltest.Start(t, redis, rltest.Options{})
	c, _ := client(t, svc.GRPCAddr, nil)
	clearOfEdge(t, time.Hour, 2*time.Second)
	lim := limits(25, time.Hour, 0, 0)
	var mu sync.Mutex
	got := map[policy.Reason]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				reason, _ := c.Take(context.Background(), "Concurrent01", lim)
				mu.Lock()
				got[reason]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got[policy.Allowed] != 25 || got[policy.RateLimited] != 55 {
		t.Errorf("80 concurrent calls under 25/hour: %v, want 25 allowed and 55 rate_limited", got)
	}
}

// TestFailureModes: with Redis down the service answers errors; each
// failure mode answers as documented (auto: deny keys with a global quota,
// allow keys with only a rate), promptly; once Redis is back the counts
// work again.
func TestFailureModes(t *testing.T) {
	redis := rltest.StartRedis(t)
	svc := rltest.Start(t, redis, rltest.Options{})
	rateOnly, withQuota := limits(100, time.Minute, 0, 0), limits(100, time.Minute, 1000, 24*time.Hour)
	clients := map[Failure]*Client{}
	obs := map[Failure]*observed{}
	for _, mode := range []Failure{FailAuto, FailDeny, FailAllow} {
		clients[mode], obs[mode] = client(t, svc.GRPCAddr, func(c *Config) { c.Failure = mode })
		if reason, _ := clients[mode].Take(context.Background(), "Failure00001", withQuota); reason != policy.Allowed {
			t.Fatalf("%s, healthy: %s", mode, reason)
		}
	}
	redis.Kill()
	for _, tt := range []struct {
		mode          Failure
		rate, quota   policy.Reason // for a key with only a rate limit, with a quota too
		wantUnhealthy bool
	}{
		{FailAuto, policy.Allowed, policy.RateLimitUnavailable, true},
		{FailDeny, policy.RateLimitUnavailable, policy.RateLimitUnavailable, true},
		{FailAllow, policy.Allowed, policy.Allowed, true},
	} {
		c := clients[tt.mode]
		start := time.Now()
		gotRate, _ := c.Take(context.Background(), "Failure00001", rateOnly)
		gotQuota, _ := c.Take(context.Background(), "Failure00001", withQuota)
		took := time.Since(start)
		if gotRate != tt.rate || gotQuota != tt.quota {
			t.Errorf("%s with Redis down: rate-only key %s, key with a quota %s; want %s, %s", tt.mode, gotRate, gotQuota, tt.rate, tt.quota)
		}
		if n := obs[tt.mode].count(ResultError); n != 2 {
			t.Errorf("%s: %d errors observed (%v), want 2", tt.mode, n, obs[tt.mode].results)
		}
		if took > time.Second {
			t.Errorf("%s: two calls took %s with Redis down", tt.mode, took)
		}
	}
	redis.Restart(t)
	c := clients[FailDeny]
	recovered := waitFor(t, 10*time.Second, func() bool {
		reason, _ := c.Take(context.Background(), "Failure00002", withQuota)
		return reason == policy.Allowed
	})
	t.Logf("Redis restarted: counting again after %s", recovered.Round(time.Millisecond))
}

// waitFor polls ok every 50ms until it holds (and returns how long that
// took) or fails t after limit.
func waitFor(t *testing.T, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("not within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestTimeout: a service that does not answer (stopped with SIGSTOP) costs
// each call at most the timeout, answered by the failure mode.
func TestTimeout(t *testing.T) {
	redis := rltest.StartRedis(t)
	svc := rltest.Start(t, redis, rltest.Options{})
	const timeout = 50 * time.Millisecond
	deny, denyObs := client(t, svc.GRPCAddr, func(c *Config) { c.Timeout, c.Failure = timeout, FailDeny })
	auto, _ := client(t, svc.GRPCAddr, func(c *Config) { c.Timeout = timeout })
	lim := limits(10, time.Second, 0, 0)
	for _, c := range []*Client{deny, auto} { // connected, warm
		waitFor(t, 5*time.Second, func() bool {
			r, _ := c.Take(context.Background(), "Timeout00001", limits(1000, time.Second, 0, 0))
			return r == policy.Allowed
		})
	}
	svc.Pause(t)
	var worst time.Duration
	for range 5 {
		start := time.Now()
		reason, _ := deny.Take(context.Background(), "Timeout00001", lim)
		took := time.Since(start)
		worst = max(worst, took)
		if reason != policy.RateLimitUnavailable {
			t.Errorf("deny mode, service stopped: %s", reason)
		}
		if reason, _ := auto.Take(context.Background(), "Timeout00001", lim); reason != policy.Allowed {
			t.Errorf("auto mode, rate-only key, service stopped: %s", reason)
		}
	}
	if n := denyObs.count(ResultTimeout); n != 5 {
		t.Errorf("%d timeouts observed (%v), want 5", n, denyObs.results)
	}
	t.Logf("timeout %s: slowest call %s", timeout, worst.Round(time.Millisecond))
	if worst > timeout+150*time.Millisecond {
		t.Errorf("a call took %s with a %s timeout", worst, timeout)
	}
	// A caller's own deadline, shorter than the timeout, is kept too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if reason, _ := deny.Take(ctx, "Timeout00001", lim); reason != policy.RateLimitUnavailable {
		t.Errorf("cancelled caller: %s", reason)
	}
	svc.Resume(t)
	waitFor(t, 5*time.Second, func() bool { r, _ := deny.Take(context.Background(), "Timeout00002", lim); return r == policy.Allowed })
}

// TestServiceRestart: a killed service fails calls at once (no waiting
// for a connection), and a restarted one is used again within seconds.
func TestServiceRestart(t *testing.T) {
	redis := rltest.StartRedis(t)
	svc := rltest.Start(t, redis, rltest.Options{})
	c, obs := client(t, svc.GRPCAddr, func(c *Config) { c.Failure = FailDeny })
	var logs syncBuf
	c.log = slog.New(slog.NewTextHandler(&logs, nil))
	lim := limits(1000, time.Second, 0, 0)
	if reason, _ := c.Take(context.Background(), "Restart00001", lim); reason != policy.Allowed {
		t.Fatalf("healthy: %s", reason)
	}
	svc.Kill()
	for range 5 {
		start := time.Now()
		if reason, _ := c.Take(context.Background(), "Restart00001", lim); reason != policy.RateLimitUnavailable {
			t.Errorf("service down: %s", reason)
		}
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("a call to a dead service took %s", took)
		}
	}
	if obs.count(ResultError) != 5 {
		t.Errorf("observed %v, want 5 errors", obs.results)
	}
	svc.Restart(t)
	took := waitFor(t, 10*time.Second, func() bool { r, _ := c.Take(context.Background(), "Restart00001", lim); return r == policy.Allowed })
	t.Logf("service restarted: used again after %s", took.Round(time.Millisecond))
	// The outage is two log lines, not one per failed call.
	if got := logs.String(); strings.Count(got, "level=WARN") != 1 || strings.Count(got, "answering again") != 1 ||
		!strings.Contains(got, "failure=deny") || strings.Count(got, "\n") != 2 {
		t.Errorf("logs:\n%s", got)
	}
}

// syncBuf is a log destination safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMutualTLS: with the service serving TLS and requiring client
// certificates, a client with the CA and a certificate is answered; one
// without a certificate, or trusting another CA, fails (and its failure
// mode answers).
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("ratelimit test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	for _, step := range []error{
		ca.WriteCert(f("ca.pem")),
		other.WriteCert(f("other.pem")),
		ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "ratelimit"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, f("server.pem"), f("server-key.pem")),
		ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "keygate"}, DNSNames: []string{"keygate"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, f("client.pem"), f("client-key.pem")),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	redis := rltest.StartRedis(t)
	svc := rltest.Start(t, redis, rltest.Options{TLS: &rltest.TLS{CertFile: f("server.pem"), KeyFile: f("server-key.pem"), ClientCAFile: f("ca.pem")}})
	lim := limits(1, time.Hour, 0, 0)
	clearOfEdge(t, time.Hour, 2*time.Second)

	good, _ := client(t, svc.GRPCAddr, func(c *Config) {
		c.CAFile, c.CertFile, c.KeyFile, c.Failure = f("ca.pem"), f("client.pem"), f("client-key.pem"), FailDeny
	})
	if reason, _ := good.Take(context.Background(), "MutualTLS001", lim); reason != policy.Allowed {
		t.Errorf("with a client certificate: %s", reason)
	}
	if reason, _ := good.Take(context.Background(), "MutualTLS001", lim); reason != policy.RateLimited {
		t.Errorf("second request of 1/hour: %s", reason)
	}
	for name, mod := range map[string]func(*Config){
		"no client certificate": func(c *Config) { c.CAFile = f("ca.pem") },
		"another CA": func(c *Config) {
			c.CAFile, c.CertFile, c.KeyFile = f("other.pem"), f("client.pem"), f("client-key.pem")
		},
		"plain text": func(*Config) {},
	} {
		c, obs := client(t, svc.GRPCAddr, func(c *Config) { mod(c); c.Failure = FailDeny })
		if reason, _ := c.Take(context.Background(), "MutualTLS002", lim); reason != policy.RateLimitUnavailable || obs.count(ResultError) != 1 {
			t.Errorf("%s: %s, observed %v; want ratelimit_unavailable after an error", name, reason, obs.results)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	good := DefaultConfig()
	good.Service, good.CAFile, good.CertFile, good.KeyFile = "ratelimit.ratelimit.svc:8081", "ca.pem", "c.pem", "k.pem"
	if err := good.Validate(); err != nil {
		t.Errorf("a full config: %v", err)
	}
	for _, tt := range []struct {
		name  string
		mod   func(*Config)
		names []string
	}{
		{"no port", func(c *Config) { c.Service = "ratelimit" }, []string{"service"}},
		{"bad port", func(c *Config) { c.Service = "ratelimit:http" }, []string{"service"}},
		{"port 0", func(c *Config) { c.Service = "ratelimit:0" }, []string{"service"}},
		{"port with zeros", func(c *Config) { c.Service = "ratelimit:08081" }, []string{"service"}},
		{"no host", func(c *Config) { c.Service = ":8081" }, []string{"service"}},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, []string{"timeout"}},
		{"long timeout", func(c *Config) { c.Timeout = 2 * time.Second }, []string{"timeout"}},
		{"failure mode", func(c *Config) { c.Failure = "open" }, []string{"failure"}},
		{"empty failure mode", func(c *Config) { c.Failure = "" }, []string{"failure"}},
		{"cert without key", func(c *Config) { c.Service, c.CAFile, c.CertFile = "r:1", "ca", "c" }, []string{"tls-cert", "tls-key"}},
		{"cert without CA", func(c *Config) { c.Service, c.CertFile, c.KeyFile = "r:1", "c", "k" }, []string{"tls-cert", "tls-ca"}},
		{"TLS without a service", func(c *Config) { c.CAFile = "ca" }, []string{"tls-ca", "service"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			var fe *field.Error
			if !errors.As(err, &fe) || strings.Join(fe.Names, ",") != strings.Join(tt.names, ",") {
				t.Errorf("Validate: %v, want a problem with %v", err, tt.names)
			}
		})
	}
	var f Failure
	if err := f.UnmarshalText([]byte("deny")); err != nil || f != FailDeny {
		t.Errorf("UnmarshalText(deny): %v %q", err, f)
	}
}

// TestNewTLSFiles: unreadable TLS files are errors naming the setting;
// New does not wait for (or need) the service.
func TestNewTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Service, cfg.CAFile = "127.0.0.1:1", filepath.Join(dir, "missing.pem")
	if _, err := New(cfg, discard); err == nil || !strings.HasPrefix(err.Error(), "tls-ca: ") {
		t.Errorf("missing CA: %v", err)
	}
	cfg.CAFile = filepath.Join(dir, "ca.pem")
	ca, _ := testpki.NewCA("x")
	if err := ca.WriteCert(cfg.CAFile); err != nil {
		t.Fatal(err)
	}
	cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if _, err := New(cfg, discard); err == nil || !strings.HasPrefix(err.Error(), "tls-cert: ") {
		t.Errorf("missing client certificate: %v", err)
	}
	cfg.CertFile, cfg.KeyFile = "", ""
	start := time.Now()
	c, err := New(cfg, discard) // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("New took %s: it must not wait for the service", took)
	}
	if _, err := New(DefaultConfig(), discard); err == nil {
		t.Error("New without a service address")
	}
}
