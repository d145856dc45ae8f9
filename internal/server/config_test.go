package server

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/field"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

// Validate names every problem as serve's flag, all at once, and leaves
// the config as it was.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // each a whole "name: problem" prefix
	}{
		{"no gRPC address", func(c *Config) { c.GRPCAddr = "" }, []string{"grpc-addr: required"}},
		{"durations", func(c *Config) {
			c.ShutdownTimeout, c.PepperRefresh, c.ShutdownDelay, c.JournalPoll, c.UsageInterval = 0, -1, -1, -time.Second, -time.Hour
		}, []string{"shutdown-timeout: must be > 0", "pepper-refresh: must be > 0", "shutdown-delay: must be >= 0",
			"journal-poll: must be >= 0 (0 disables)", "usage-interval: must be >= 0 (0 disables)"}},
		{"warm-up", func(c *Config) { c.WarmupTimeout, c.HotKeysInterval = -time.Second, 6*time.Minute },
			[]string{"warmup-timeout: must be >= 0 (0 disables)", "hot-keys-interval: 6m0s: want 1s to 5m0s"}},
		{"hot keys recorded too often", func(c *Config) { c.HotKeysInterval = 10 * time.Millisecond },
			[]string{"hot-keys-interval: 10ms: want 1s to 5m0s"}},
		{"Check settings", func(c *Config) { c.Check.FoundTTL, c.Check.StaleTTL, c.Check.KeyHeader = 0, -1, "X-Key" },
			[]string{"found-ttl: must be > 0", "stale-ttl: must be >= 0", `key-header: "X-Key"`}},
		{"requests Envoy may send must fit", func(c *Config) { c.Check.MaxRequestBytes = 32 << 10 },
			[]string{"max-request-bytes: 32768 is under 64 KiB"}},
		{"gRPC limits", func(c *Config) {
			c.GRPC.MaxStreams, c.GRPC.MaxConnectionAge, c.GRPC.KeepaliveMinTime = 0, 10*time.Second, time.Millisecond
		}, []string{"grpc-max-streams: must be >= 1", "grpc-max-connection-age: 10s: under 1m", "grpc-keepalive-min-time: must be >= 1s"}},
		{"audit and metrics", func(c *Config) { c.AuditLog, c.Audit.SampleAllows, c.Audit.Buffer, c.Metrics.MaxKeyIDs = "", 2, 0, 0 },
			[]string{"audit-log: want", "audit-sample-allows: 2 is not between 0 and 1", "audit-buffer: must be >= 1", "metrics-max-keys: must be >= 1"}},
		{"plain text off loopback", func(c *Config) { c.GRPCAddr, c.HTTPAddr = "0.0.0.0:9191", ":9192" },
			[]string{"grpc-addr: 0.0.0.0:9191 is not a loopback address", "http-addr: :9192 is not a loopback address"}},
		{"rate limit service", func(c *Config) {
			c.RateLimit.Service, c.RateLimit.Timeout, c.RateLimit.Failure, c.RateLimit.CAFile, c.RateLimit.CertFile = "ratelimit", 0, "open", "ca.pem", "c.pem"
		}, []string{"ratelimit-service: \"ratelimit\": want HOST:PORT", "ratelimit-timeout: must be > 0", `ratelimit-failure: "open"`,
			"ratelimit-tls-cert and ratelimit-tls-key: give both"}},
		{"TLS", func(c *Config) { c.TLS.CertFile, c.Plaintext, c.TLS.Reload = "c.pem", true, 0 },
			[]string{"tls-cert and tls-key: give both", "plaintext and tls-cert: give one", "tls-reload: must be > 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			before := c
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !hasLine(err, w) {
					t.Errorf("no problem starting %q in:\n%v", w, err)
				}
			}
			for _, e := range field.Split(err) {
				if fe := (*field.Error)(nil); !errors.As(e, &fe) {
					t.Errorf("%v: not a *field.Error, so the flag cannot be named", e)
				}
			}
			before.Check.Now, c.Check.Now = nil, nil
			if !reflect.DeepEqual(before, c) {
				t.Error("Validate changed the config")
			}
		})
	}
}

// Plain text is fine on loopback, with TLS, or with --plaintext.
func TestConfigPlaintext(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.GRPCAddr, c.HTTPAddr = "localhost:9191", "[::1]:9192" },
		func(c *Config) { c.GRPCAddr, c.Plaintext = "0.0.0.0:9191", true },
		func(c *Config) { c.GRPCAddr, c.TLS.CertFile, c.TLS.KeyFile = "0.0.0.0:9191", "c.pem", "k.pem" },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", c.GRPCAddr, err)
		}
	}
}

func hasLine(err error, prefix string) bool {
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}
