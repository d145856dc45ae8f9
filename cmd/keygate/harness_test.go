package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keygate/keygate/internal/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// syncBuffer collects a command's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// envMap is a getenv for run.
type envMap map[string]string

func (m envMap) get(k string) string { return m[k] }

func (m envMap) with(kv ...string) envMap {
	out := envMap{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// cli runs one keygate command in-process and returns stdout, stderr and
// the error run returned.
func cli(t *testing.T, env envMap, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, args, env.get, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// mustCLI is cli that fails the test on error.
func mustCLI(t *testing.T, env envMap, args ...string) string {
	t.Helper()
	out, stderr, err := cli(t, env, args...)
	if err != nil {
		t.Fatalf("keygate %s: %v\nstderr: %s", args[0], err, redact(stderr))
	}
	return out
}

// created is the JSON `keys create --json` and `keys rotate --json` print.
type created struct {
	ID       string `json:"id"`
	Key      string `json:"key"`
	Previous string `json:"previous"`
}

func createKey(t *testing.T, env envMap, args ...string) created {
	t.Helper()
	out := mustCLI(t, env, append([]string{"keys", "create", "--json"}, args...)...)
	var c created
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" || c.Key == "" {
		t.Fatalf("keys create --json: want {id, key}, got %d bytes (err %v)", len(out), err)
	}
	return c
}

var keyShape = regexp.MustCompile(`[a-z][a-z0-9]{0,9}_[0-9A-Za-z]{50}`)

// redact hides anything key-shaped, so failure messages never print a key.
func redact(s string) string { return keyShape.ReplaceAllString(s, "<key>") }

// server is a `keygate serve` running in-process.
type server struct {
	addr   string
	logs   *syncBuffer
	client authv3.AuthorizationClient
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

var servingRE = regexp.MustCompile(`"msg":"serving","grpc_addr":"([^"]+)"`)

// serve starts `keygate serve` on a random loopback port with debug logs and
// waits until health says SERVING. It is stopped at test cleanup, which
// also checks that the server's logs hold none of keys.
func serve(t *testing.T, env envMap, keys func() []string, args ...string) *server {
	t.Helper()
	s := startServe(t, env, keys, args...)
	s.waitServing(t)
	return s
}

// startServe is serve without waiting for SERVING: it returns once the
// gRPC port is open (health may still say NOT_SERVING).
func startServe(t *testing.T, env envMap, keys func() []string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	args = append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--log-level", "debug"}, args...)
	go func() { s.done <- run(ctx, args, env.get, strings.NewReader(""), s.logs, s.logs) }()
	t.Cleanup(func() { s.stop(t, keys) })
	deadline := time.Now().Add(20 * time.Second)
	for s.addr == "" {
		if m := servingRE.FindStringSubmatch(s.logs.String()); m != nil {
			s.addr = m[1]
			break
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve exited: %v\n%s", err, redact(s.logs.String()))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", redact(s.logs.String()))
		}
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	s.conn, s.client = conn, authv3.NewAuthorizationClient(conn)
	return s
}

func (s *server) waitServing(t *testing.T) {
	t.Helper()
	hc := healthpb.NewHealthClient(s.conn)
	for _, service := range []string{"", "envoy.service.auth.v3.Authorization"} {
		eventually(t, 20*time.Second, "health SERVING for "+service, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
		})
	}
}

func (s *server) stop(t *testing.T, keys func() []string) {
	s.once.Do(func() { s.stopNow(t, keys) })
}

func (s *server) stopNow(t *testing.T, keys func() []string) {
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("serve did not stop within 20s")
	}
	if s.conn != nil {
		s.conn.Close()
	}
	logs := s.logs.String()
	for _, k := range keys() {
		if strings.Contains(logs, k) {
			t.Errorf("serve logs contain a raw key")
		}
	}
	if keyShape.MatchString(logs) {
		t.Errorf("serve logs contain something shaped like a raw key")
	}
}

// eventually polls cond every 20ms until it holds or the bound passes.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func writeFileBytes(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
