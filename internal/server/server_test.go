package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// testConfig serves gRPC on a free loopback port, without an audit log.
func testConfig() Config {
	c := DefaultConfig()
	c.GRPCAddr, c.AuditLog = "127.0.0.1:0", "off"
	return c
}

// running is a Server under Run, with a gRPC client.
type running struct {
	*Server
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, cfg Config, deps Deps) *running {
	t.Helper()
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return runServer(t, s)
}

func runServer(t *testing.T, s *Server) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Server: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	var err error
	if r.conn, err = grpc.NewClient(s.lis.grpc.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run (if it still runs) and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		r.conn.Close()
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s")
		return nil
	}
}

func (r *running) health(t *testing.T) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	return resp.GetStatus()
}

func (r *running) decide(t *testing.T, rawKey string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(r.conn).Check(ctx, checkRequest(rawKey))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return reason(resp)
}

// fakeJournal counts reads of an empty journal.
type fakeJournal struct{ reads atomic.Int32 }

func (j *fakeJournal) JournalSince(context.Context, int) ([]JournalEntry, int, bool, error) {
	j.reads.Add(1)
	return nil, 0, true, nil
}

// Health is NOT_SERVING, and the store-reading tasks wait, until the first
// login; then the peppers load, health says SERVING and keys are allowed.
func TestReadinessWaitsForLogin(t *testing.T) {
	var ev events
	kf := newKeyFile(t, 1)
	loggedIn := make(chan struct{})
	j := &fakeJournal{}
	cfg := testConfig()
	cfg.JournalPoll = 10 * time.Millisecond
	r := startServer(t, cfg, Deps{Log: ev.logger(), Store: kf.fs, StoreName: "file", LoggedIn: loggedIn, Journal: j})

	eventually(t, "peppers and journal waiting for the login", func() bool {
		n := 0
		for _, e := range ev.list() {
			if e == "log:task waiting" {
				n++
			}
		}
		return n == 2
	})
	if st := r.health(t); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health before the login: %v, want NOT_SERVING", st)
	}
	if got := r.decide(t, kf.raw[0]); got != "store_unavailable" {
		t.Errorf("a key before the peppers are loaded: %s, want store_unavailable", got)
	}
	if n := j.reads.Load(); n != 0 {
		t.Errorf("the journal was read %d times before the login", n)
	}

	close(loggedIn)
	eventually(t, "SERVING after the login", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	if got := r.decide(t, kf.raw[0]); got != "allowed" {
		t.Errorf("a key once ready: %s", got)
	}
	eventually(t, "the journal read after the login", func() bool { return j.reads.Load() > 0 })
	if !ev.has("log:serving") || !ev.has("log:ready") {
		t.Errorf("logs %v: want serving and ready", ev.list())
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// usageRecorder records the final flush as an event.
type usageRecorder struct{ ev *events }

func (u usageRecorder) RecordUsage(context.Context, string, time.Time) error {
	u.ev.add("usage written")
	return nil
}

// The shutdown sequence: NOT_SERVING at once; Checks still answered during
// the delay (held here until the test has checked); the gRPC and HTTP
// listeners drained; then the key-use flush and the audit log; then the
// background tasks (login, watch) and the endpoints stop.
func TestShutdownSequence(t *testing.T) {
	var ev events
	kf := newKeyFile(t, 1)
	var audit syncBuf
	cfg := testConfig()
	cfg.HTTPAddr, cfg.AdminAddr, cfg.MetricsAddr, cfg.AuditLog = "127.0.0.1:0", ":0", "127.0.0.1:0", "stdout"
	cfg.ShutdownDelay = time.Hour // held by the test, never waited for
	deps := Deps{Log: ev.logger(), Store: kf.fs, StoreName: "file", Usage: usageRecorder{&ev}, Stdout: &audit,
		Login: func(ctx context.Context) error { <-ctx.Done(); ev.add("login stopped"); return ctx.Err() },
		Watch: func(ctx context.Context) error {
			err := kf.fs.Watch(ctx, 10*time.Millisecond)
			ev.add("watch stopped")
			return err
		}}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	s.pause = func(ctx context.Context, d time.Duration) { ev.add("delay"); <-release }
	r := runServer(t, s)
	eventually(t, "SERVING", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	if got := r.decide(t, kf.raw[0]); got != "allowed" {
		t.Fatalf("before shutdown: %s", got)
	}

	r.cancel() // SIGTERM
	eventually(t, "the delay", func() bool { return ev.has("delay") })
	if st := r.health(t); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health while draining: %v, want NOT_SERVING", st)
	}
	if got := r.decide(t, kf.raw[0]); got != "allowed" {
		t.Errorf("a Check while draining: %s, want allowed", got)
	}
	if code := get(t, "http://"+s.lis.admin.Addr().String()+"/v1/cache"); code != 200 {
		t.Errorf("admin endpoint while draining: %d", code)
	}
	ev.add("checked while draining")
	close(release)
	if err := r.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}

	order := []string{"log:serving", "log:ready", "log:draining", "delay", "checked while draining", "log:stopped", "usage written"}
	for i := 1; i < len(order); i++ {
		if a, b := ev.index(order[i-1]), ev.index(order[i]); a < 0 || b < a {
			t.Errorf("%q (at %d) must come before %q (at %d): %v", order[i-1], a, order[i], b, ev.list())
		}
	}
	for _, bg := range []string{"login stopped", "watch stopped"} {
		if a, b := ev.index("log:stopped"), ev.index(bg); b < a {
			t.Errorf("%q (at %d) before the listeners drained (at %d): background tasks must outlive the drain", bg, b, a)
		}
	}
	if n := strings.Count(audit.String(), `"decision":"allow"`); n != 2 {
		t.Errorf("%d allow lines in the audit log, want 2 (written out at shutdown)", n)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Shutdown's ctx hurries the sequence: a delay of an hour is cut short,
// and Run and Shutdown return.
func TestShutdownInterrupted(t *testing.T) {
	kf := newKeyFile(t, 0)
	cfg := testConfig()
	cfg.ShutdownDelay, cfg.ShutdownTimeout = time.Hour, time.Hour
	r := startServer(t, cfg, Deps{Log: discard, Store: kf.fs})
	eventually(t, "SERVING", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })

	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- r.Shutdown(ctx) }()
	eventually(t, "NOT_SERVING", func() bool { return r.health(t) == healthpb.HealthCheckResponse_NOT_SERVING })
	cancel()
	select {
	case err := <-shut:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return once its ctx ended")
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
}

// A task that fails stops the server, which still shuts down in order,
// and Run returns the task's error.
func TestRunTaskFails(t *testing.T) {
	kf := newKeyFile(t, 0)
	boom := errors.New("store watch: file gone")
	r := startServer(t, testConfig(), Deps{Log: discard, Store: kf.fs, Watch: func(context.Context) error { return boom }})
	select {
	case err := <-r.done:
		r.done <- err
		if !errors.Is(err, boom) {
			t.Errorf("Run: %v, want %v", err, boom)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after a task failed")
	}
}

// New reports what it cannot open, named by flag, and leaves nothing open.
func TestNewErrors(t *testing.T) {
	kf := newKeyFile(t, 0)
	taken, err := New(testConfig(), Deps{Log: discard, Store: kf.fs})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.lis.close()
	for _, tt := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"port taken", func(c *Config) { c.GRPCAddr = taken.lis.grpc.Addr().String() }, "grpc-addr: listen tcp"},
		{"bad HTTP address", func(c *Config) { c.HTTPAddr = "127.0.0.1:notaport" }, "http-addr: listen tcp"},
		{"TLS files missing", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = "/nonexistent/c.pem", "/nonexistent/k.pem" }, "--tls-cert: open"},
		{"audit file in no directory", func(c *Config) { c.AuditLog = t.TempDir() + "/no/such/dir/audit.log" }, "audit-log: open"},
		{"invalid config", func(c *Config) { c.Check.FoundTTL = 0 }, "found-ttl: must be > 0"},
		{"rate limit CA missing", func(c *Config) { c.RateLimit.Service, c.RateLimit.CAFile = "127.0.0.1:1", "/nonexistent/ca.pem" },
			"ratelimit-tls-ca: open"},
		{"port taken after the rate limit client was made", func(c *Config) { // the client is closed (goleak)
			c.RateLimit.Service, c.GRPCAddr = "127.0.0.1:1", taken.lis.grpc.Addr().String()
		}, "grpc-addr: listen tcp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mod(&cfg)
			cfg.MetricsAddr = "127.0.0.1:0" // opened before the failure, then closed
			if _, err := New(cfg, Deps{Log: discard, Store: kf.fs}); err == nil || !hasLine(err, tt.want) {
				t.Errorf("New: %v, want a problem starting %q", err, tt.want)
			}
		})
	}
	if _, err := New(testConfig(), Deps{}); err == nil {
		t.Error("New without a logger and a store")
	}
}
