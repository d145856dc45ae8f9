// Package rltest runs the real global rate limit parts for tests: a Redis
// and the envoyproxy/ratelimit service of one test's own, on loopback
// ports, killed (and their files removed) when the test ends.
//
//	redis := rltest.StartRedis(t)
//	svc := rltest.Start(t, redis, rltest.Options{}) // envoy/ratelimit-service.yaml
//	... dial svc.GRPCAddr ...
//
// The binaries are $KEYGATE_RATELIMIT_BIN and $KEYGATE_REDIS_BIN, else
// <repo>/.tools/ratelimit and <repo>/.tools/redis-server (installed by
// scripts/ratelimit.sh); without them tests skip, or fail when $CI is set.
package rltest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a Redis or service start may take.
const startTimeout = 20 * time.Second

// Redis is a redis-server of one test's own: loopback only, no
// persistence, so a restart forgets every counter.
type Redis struct {
	Addr string // 127.0.0.1:PORT

	bin, dir, port string
	proc           process
}

// StartRedis starts a Redis for t and waits until it answers PING.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{bin: binary(t, "redis-server", "KEYGATE_REDIS_BIN"), dir: t.TempDir()}
	t.Cleanup(r.Kill)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var ports []string
		if ports, err = freePorts(1); err != nil {
			break
		}
		r.port, r.Addr = ports[0], "127.0.0.1:"+ports[0]
		if err = r.launch(); !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		t.Fatalf("rltest: redis: %v", err)
	}
	return r
}

func (r *Redis) logPath() string { return filepath.Join(r.dir, "redis.log") }

func (r *Redis) launch() error {
	args := []string{"--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "yes"}
	done, err := r.proc.start(r.bin, args, childEnv(), r.dir, r.logPath())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		if err := ping(r.Addr); err == nil {
			return nil
		}
		select {
		case <-done:
			if strings.Contains(logTail(r.logPath(), 20), "Address already in use") {
				return fmt.Errorf("%s: %w", r.Addr, errPortTaken)
			}
			return fmt.Errorf("redis-server exited during startup:\n%s", logTail(r.logPath(), 20))
		case <-ctx.Done():
			r.Kill()
			return fmt.Errorf("redis not ready after %s:\n%s", startTimeout, logTail(r.logPath(), 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends one PING in Redis's inline protocol and wants +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf[:n])
	}
	return nil
}

// Kill stops Redis abruptly (SIGKILL) and waits for it to exit.
func (r *Redis) Kill() { r.proc.kill() }

// Restart starts Redis again on the same address, empty.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Kill()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = r.launch(); !errors.Is(err, errPortTaken) {
			break
		}
		time.Sleep(100 * time.Millisecond) // same address: wait for the port
	}
	if err != nil {
		t.Fatalf("rltest: redis restart: %v", err)
	}
}

// Options configure a ratelimit service.
type Options struct {
	// Config is the service's configuration file (YAML). nil: the
	// repository's envoy/ratelimit-service.yaml, as shipped.
	Config []byte
	// TLS, if set, serves gRPC with TLS (and, with ClientCAFile, requires
	// client certificates from that CA).
	TLS *TLS
}

// TLS are PEM files for the service's gRPC listener.
type TLS struct {
	CertFile, KeyFile string
	ClientCAFile      string // "": no client certificate asked for
}

// Service is a running envoyproxy/ratelimit service.
type Service struct {
	GRPCAddr  string // 127.0.0.1:PORT: RateLimitService/ShouldRateLimit and gRPC health
	HTTPAddr  string // 127.0.0.1:PORT: /healthcheck and /json
	DebugAddr string // 127.0.0.1:PORT: /rlconfig (the loaded configuration) and pprof

	bin, dir string
	env      []string
	proc     process
}

// Start starts the service for t against redis, with opts, and waits until
// it is healthy: its configuration loaded and Redis reachable.
func Start(t testing.TB, redis *Redis, opts Options) *Service {
	t.Helper()
	s, err := Load(t, redis, opts)
	if err != nil {
		t.Fatalf("rltest: %v", err)
	}
	return s
}

// ErrConfig wraps the error the service reports when it cannot load its
// configuration.
var ErrConfig = errors.New("the ratelimit service did not load its configuration")

// Load is Start, returning an error instead of failing t. An error wrapping
// ErrConfig holds the service's own complaint about the configuration (it
// keeps running, unhealthy, without one); Load then kills it.
func Load(t testing.TB, redis *Redis, opts Options) (*Service, error) {
	t.Helper()
	s := &Service{bin: binary(t, "ratelimit", "KEYGATE_RATELIMIT_BIN"), dir: t.TempDir()}
	t.Cleanup(s.Kill)
	cfg := opts.Config
	if cfg == nil {
		root, err := repoRoot()
		if err != nil {
			return nil, err
		}
		if cfg, err = os.ReadFile(filepath.Join(root, "envoy", "ratelimit-service.yaml")); err != nil {
			return nil, err
		}
	}
	confDir := filepath.Join(s.dir, "runtime", "ratelimit", "config")
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(confDir, "keygate.yaml"), cfg, 0o600); err != nil {
		return nil, err
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var ports []string
		if ports, err = freePorts(3); err != nil {
			break
		}
		s.setEnv(redis, ports, opts.TLS)
		if err = s.launch(); !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// setEnv sets the service's settings (it reads them from the environment
// only): loopback ports, the config under RUNTIME_ROOT (read once, not
// watched), Redis over TCP, no statsd, and healthy only with a config.
func (s *Service) setEnv(redis *Redis, ports []string, tls *TLS) {
	s.GRPCAddr, s.HTTPAddr, s.DebugAddr = "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1], "127.0.0.1:"+ports[2]
	s.env = childEnv(
		"RUNTIME_ROOT="+filepath.Join(s.dir, "runtime"), "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false",
		"USE_STATSD=false", "LOG_FORMAT=json", "LOG_LEVEL=warn",
		"REDIS_SOCKET_TYPE=tcp", "REDIS_URL="+redis.Addr, "REDIS_TIMEOUT=1s",
		"GRPC_HOST=127.0.0.1", "GRPC_PORT="+ports[0], "HOST=127.0.0.1", "PORT="+ports[1],
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT="+ports[2],
		"HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED=true",
	)
	if tls != nil {
		s.env = append(s.env, "GRPC_SERVER_USE_TLS=true", "GRPC_SERVER_TLS_CERT="+tls.CertFile, "GRPC_SERVER_TLS_KEY="+tls.KeyFile)
		if tls.ClientCAFile != "" {
			s.env = append(s.env, "GRPC_CLIENT_TLS_CACERT="+tls.ClientCAFile)
		}
	}
}

func (s *Service) logPath() string { return filepath.Join(s.dir, "ratelimit.log") }

// launch starts the process and waits until /healthcheck answers 200 and
// the gRPC port accepts connections, or the log says the configuration did
// not load.
func (s *Service) launch() error {
	offset := fileSize(s.logPath())
	done, err := s.proc.start(s.bin, nil, s.env, s.dir, s.logPath())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if s.healthy(ctx, client) {
			return nil
		}
		if msg := s.loadError(offset); msg != "" {
			s.Kill()
			return fmt.Errorf("%w: %s", ErrConfig, msg)
		}
		select {
		case <-done:
			tail := logTail(s.logPath(), 30)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%s: %w", s.GRPCAddr, errPortTaken)
			}
			return fmt.Errorf("the ratelimit service exited during startup:\n%s", tail)
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("the ratelimit service is not healthy after %s:\n%s", startTimeout, logTail(s.logPath(), 30))
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (s *Service) healthy(ctx context.Context, client *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HTTPAddr+"/healthcheck", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", s.GRPCAddr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// loadError is the service's "Error loading new configuration" message
// logged since offset, or "".
func (s *Service) loadError(offset int64) string {
	data, err := os.ReadFile(s.logPath())
	if err != nil || int64(len(data)) < offset {
		return ""
	}
	for _, line := range strings.Split(string(data[offset:]), "\n") {
		if _, msg, ok := strings.Cut(line, "Error loading new configuration: "); ok {
			msg, _, _ = strings.Cut(msg, `","@timestamp"`)
			return msg
		}
	}
	return ""
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Kill stops the service abruptly (SIGKILL) and waits for it to exit.
func (s *Service) Kill() { s.proc.kill() }

// Pause stops the service without closing its connections (SIGSTOP) and
// returns once it is stopped: its callers wait for answers that do not
// come, until Resume.
func (s *Service) Pause(t testing.TB) {
	t.Helper()
	if err := s.proc.signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("rltest: pause: %v", err)
	}
	t.Cleanup(func() { s.proc.signal(syscall.SIGCONT) }) // never leave it stopped
	for deadline := time.Now().Add(5 * time.Second); !stopped(s.proc.pid()); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("rltest: pause: the service did not stop within 5s")
		}
	}
}

// Resume continues a paused service (SIGCONT).
func (s *Service) Resume(t testing.TB) {
	t.Helper()
	if err := s.proc.signal(syscall.SIGCONT); err != nil {
		t.Fatalf("rltest: resume: %v", err)
	}
}

// Restart starts the service again on the same addresses and waits until
// it is healthy.
func (s *Service) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.launch(); !errors.Is(err, errPortTaken) {
			break
		}
		time.Sleep(100 * time.Millisecond) // same address: wait for the port
	}
	if err != nil {
		t.Fatalf("rltest: restart: %v", err)
	}
}

// LoadedConfig is what the service's debug endpoint GET /rlconfig says it
// loaded: one line per limit, "domain.key: unit=… requests_per_unit=…".
func (s *Service) LoadedConfig(t testing.TB) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.DebugAddr + "/rlconfig")
	if err != nil {
		t.Fatalf("rltest: GET /rlconfig: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("rltest: GET /rlconfig: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rltest: GET /rlconfig: HTTP %d", resp.StatusCode)
	}
	return string(body)
}

// Log is the end of the service's log, for failure messages.
func (s *Service) Log() string { return logTail(s.logPath(), 40) }
