package server

import (
	"io"
	"time"

	"github.com/keygate/keygate/audit"
	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/internal/servetls"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/ratelimit"
)

// Config is keygate serve's whole configuration. Start from DefaultConfig:
// it is the one place the defaults are written (serve's flags take their
// defaults from it), and no field's zero value means "the default". Field
// names in Validate's errors are serve's flag names.
type Config struct {
	// GRPCAddr serves Check, health and reflection (HOST:PORT). Required.
	// Default "127.0.0.1:9191".
	GRPCAddr string
	// HTTPAddr serves the HTTP authorization mode and GET /healthz.
	// Default "": off.
	HTTPAddr string
	// AdminAddr serves the admin endpoint; ":PORT" binds loopback.
	// Default "": off.
	AdminAddr string
	// MetricsAddr serves Prometheus /metrics; ":PORT" binds loopback.
	// Default "": off.
	MetricsAddr string
	// Plaintext allows serving without TLS on an address that is not
	// loopback. Default false: such an address needs TLS.
	Plaintext bool
	// ShutdownDelay is how long the server keeps answering, NOT_SERVING,
	// after shutdown starts, so the proxies' health checks drain it first.
	// Default 0.
	ShutdownDelay time.Duration
	// ShutdownTimeout is the grace in-flight Checks get to finish before
	// the listeners are closed under them. Default 10s.
	ShutdownTimeout time.Duration
	// PepperRefresh is how often the store's HMAC peppers are re-read.
	// Default 1m.
	PepperRefresh time.Duration
	// JournalPoll is how often the store's change journal (Deps.Journal)
	// is read. 0 disables. Default 1s.
	JournalPoll time.Duration
	// GCMinHeapMiB is the heap size, in MiB, below which the garbage
	// collector does not run (by raising GOGC while the live heap is
	// small): a replica with few keys cached would otherwise be collected
	// tens of times a second under load. 0, or GOGC=off in the
	// environment: Go's default. Default 32.
	GCMinHeapMiB int
	// UsageInterval is how often keys' last use is written to the store
	// (Deps.Usage). 0 disables. Default 1h.
	UsageInterval time.Duration
	// WarmupTimeout bounds a starting replica's warm-up: with a store that
	// keeps hot keys (Deps.HotKeys), health stays NOT_SERVING until the
	// records of the keys the replicas served lately are loaded, or this
	// long after the first store login, whichever is first. 0 disables
	// (SERVING once the peppers are loaded). Default 30s.
	WarmupTimeout time.Duration
	// HotKeysInterval is about how often (±25%) this replica records the
	// ids of the keys it served lately in the store's hot keys
	// (Deps.HotKeys), from which starting replicas warm up. 0 disables; at
	// most 5m. Default 1m.
	HotKeysInterval time.Duration
	// AuditLog is where audit lines go: "stdout", "stderr", a file path
	// (appended, mode 0600) or "off". Default "stdout".
	AuditLog string

	Check   extauthz.Config // Check's own settings; Check.TrackUsage is set by New
	GRPC    GRPCConfig      // gRPC server limits
	TLS     servetls.Config // TLS for the gRPC and HTTP listeners; no files: plain text
	Audit   audit.Config    // audit lines; Out is set by New from AuditLog
	Metrics metrics.Config  // metrics; used when MetricsAddr is set
	// RateLimit is the rate limit service that counts keys' global limits
	// across replicas; used when RateLimit.Service is set (New sets
	// Check.Global to its client).
	RateLimit ratelimit.Config
}

// GRPCConfig are the gRPC server's limits, sized for Envoy. The message
// size limit follows Check.MaxRequestBytes (see
// extauthz.Server.GRPCOptions).
type GRPCConfig struct {
	// MaxStreams is the concurrent Checks per connection. Default 1024.
	MaxStreams int
	// MaxConnectionAge recycles connections (GOAWAY) so load spreads over
	// new replicas. 0 never; otherwise at least 1m. Default 30m.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace is how long in-flight Checks may finish on a
	// recycled connection. Default 1m.
	MaxConnectionAgeGrace time.Duration
	// KeepaliveMinTime is the shortest client ping interval accepted, at
	// least 1s. Default 5s.
	KeepaliveMinTime time.Duration
	// KeepaliveTime pings a connection idle this long, at least 1s.
	// Default 30s.
	KeepaliveTime time.Duration
	// StreamWorkers is how many goroutines are kept to run Checks. A Check
	// that finds them all busy runs on a goroutine of its own, as without
	// them. Kept goroutines keep their grown stacks: a new goroutine per
	// Check grew its stack anew each time, about a sixth of the server's
	// CPU under load. 0: none. Default 128.
	StreamWorkers int
}

// DefaultConfig is serve's configuration when given no flags.
func DefaultConfig() Config {
	return Config{
		GRPCAddr:        "127.0.0.1:9191",
		ShutdownTimeout: 10 * time.Second,
		PepperRefresh:   time.Minute,
		JournalPoll:     time.Second,
		UsageInterval:   time.Hour,
		WarmupTimeout:   30 * time.Second,
		GCMinHeapMiB:    32,
		HotKeysInterval: time.Minute,
		AuditLog:        "stdout",
		Check:           extauthz.DefaultConfig(),
		GRPC: GRPCConfig{
			MaxStreams:            1024,
			MaxConnectionAge:      30 * time.Minute,
			MaxConnectionAgeGrace: time.Minute,
			KeepaliveMinTime:      5 * time.Second,
			KeepaliveTime:         30 * time.Second,
			StreamWorkers:         128,
		},
		TLS:       servetls.DefaultConfig(),
		Audit:     audit.DefaultConfig(),
		Metrics:   metrics.DefaultConfig(),
		RateLimit: ratelimit.DefaultConfig(),
	}
}

// maxHotKeysInterval keeps three recordings within hotKeep, so an id in
// steady use never drops out of the hot keys.
const maxHotKeysInterval = hotKeep / 3

// minRequestBytes is the least Check.MaxRequestBytes serve accepts:
// Envoy's default header limit is 60 KiB, and a request it sends must fit.
const minRequestBytes = 64 << 10

// Validate reports every problem at once, as *field.Error values named as
// serve's flags ("grpc-addr", "audit-buffer", "tls-cert"...), including
// those of the embedded configurations. It does not change c and does no
// I/O: New reports the files and listeners it cannot open.
func (c Config) Validate() error {
	var l field.List
	if c.GRPCAddr == "" {
		l.Addf("grpc-addr", "required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{{"shutdown-timeout", c.ShutdownTimeout, 1}, {"pepper-refresh", c.PepperRefresh, 1},
		{"shutdown-delay", c.ShutdownDelay, 0}, {"journal-poll", c.JournalPoll, 0}, {"usage-interval", c.UsageInterval, 0},
		{"warmup-timeout", c.WarmupTimeout, 0}, {"hot-keys-interval", c.HotKeysInterval, 0}} {
		switch {
		case d.v >= d.min:
		case d.min > 0:
			l.Addf(d.name, "must be > 0, got %s", d.v)
		default:
			l.Addf(d.name, "must be >= 0 (0 disables), got %s", d.v)
		}
	}
	if c.HotKeysInterval > maxHotKeysInterval || c.HotKeysInterval > 0 && c.HotKeysInterval < time.Second {
		l.Addf("hot-keys-interval", "%s: want 1s to %s (ids not recorded within %s drop out), or 0 to disable", c.HotKeysInterval, maxHotKeysInterval, hotKeep)
	}
	if c.GCMinHeapMiB < 0 || c.GCMinHeapMiB > maxGCMinHeapMiB {
		l.Addf("gc-min-heap-mib", "must be between 0 and %d, got %d", maxGCMinHeapMiB, c.GCMinHeapMiB)
	}
	if c.AuditLog == "" {
		l.Addf("audit-log", `want "stdout", "stderr", a file path or "off"`)
	}
	checkErr := c.Check.Validate()
	l.Join(checkErr)
	if checkErr == nil && c.Check.MaxRequestBytes < minRequestBytes {
		l.Addf("max-request-bytes", "%d is under 64 KiB (Envoy's header limit is 60 KiB)", c.Check.MaxRequestBytes)
	}
	l.Join(c.GRPC.validate())
	l.Join(c.validateTLS())
	a := c.Audit
	a.Out = io.Discard // set by New
	l.Join(field.Prefix(a.Validate(), "audit-"))
	l.Join(field.Prefix(c.Metrics.Validate(), "metrics-"))
	l.Join(field.Prefix(c.RateLimit.Validate(), "ratelimit-"))
	return l.Err()
}

// validateTLS: the TLS files, and no plain text off loopback unless
// Plaintext says so.
func (c Config) validateTLS() error {
	var l field.List
	l.Join(c.TLS.Validate())
	if c.Plaintext && c.TLS.CertFile != "" {
		l.Add("give one", "plaintext", "tls-cert")
	}
	if c.TLS.CertFile == "" && !c.Plaintext {
		for _, a := range []struct{ name, addr string }{{"grpc-addr", c.GRPCAddr}, {"http-addr", c.HTTPAddr}} {
			if a.addr != "" && !isLoopback(a.addr) {
				l.Addf(a.name, "%s is not a loopback address: give --tls-cert and --tls-key "+
					"(and --tls-client-ca for mutual TLS), or --plaintext to serve without TLS on purpose", a.addr)
			}
		}
	}
	return l.Err()
}

func (g GRPCConfig) validate() error {
	var l field.List
	if g.MaxStreams < 1 {
		l.Addf("grpc-max-streams", "must be >= 1, got %d", g.MaxStreams)
	}
	if g.StreamWorkers < 0 || g.StreamWorkers > maxStreamWorkers {
		l.Addf("grpc-stream-workers", "must be between 0 and %d, got %d", maxStreamWorkers, g.StreamWorkers)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{{"grpc-max-connection-age", g.MaxConnectionAge, 0}, {"grpc-max-connection-age-grace", g.MaxConnectionAgeGrace, 0},
		{"grpc-keepalive-min-time", g.KeepaliveMinTime, time.Second}, {"grpc-keepalive-time", g.KeepaliveTime, time.Second}} {
		if d.v < d.min {
			l.Addf(d.name, "must be >= %s, got %s", d.min, d.v)
		}
	}
	if g.MaxConnectionAge > 0 && g.MaxConnectionAge < time.Minute {
		l.Addf("grpc-max-connection-age", "%s: under 1m makes Envoy reconnect constantly (0 disables)", g.MaxConnectionAge)
	}
	return l.Err()
}
