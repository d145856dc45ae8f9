// Package server is keygate's running process: the gRPC and HTTP
// listeners, the admin and metrics endpoints, the audit log, and the
// background tasks that keep the Check cache right (store login and
// reloads, peppers, the change journal, last-use write-back, cache sweep,
// TLS reloads), with readiness and an ordered shutdown.
//
// cmd/keygate binds flags into a Config from DefaultConfig, opens the
// store into Deps, and calls New(cfg, deps).Run(ctx).
package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/servetls"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// Store is what the server reads from the key store: records (for Check)
// and the HMAC peppers.
type Store interface {
	extauthz.Store
	Peppers(ctx context.Context) (policy.Peppers, error)
}

// Deps are what the caller opens for the server: the store and what runs
// beside it, the logger, and the process's output. Optional abilities of
// the store are nil when it lacks them.
type Deps struct {
	Log   *slog.Logger // required
	Store Store        // required
	// StoreName names the store in the "serving" log line ("vault", "file").
	StoreName string
	// Login keeps the store's credentials fresh (Vault login, renewal,
	// re-login) until ctx ends.
	Login func(ctx context.Context) error
	// LoggedIn closes after the first successful login: the tasks that
	// read the store (the peppers, hence readiness; the journal) wait for
	// it. nil: they start at once.
	LoggedIn <-chan struct{}
	// Watch reloads the store when its source changes (the file store),
	// until ctx ends.
	Watch func(ctx context.Context) error
	// OnChange registers a function told what each reload changed; the
	// server evicts those keys at once.
	OnChange func(func(StoreChange))
	// Journal is the store's change journal, polled every JournalPoll.
	Journal Journal
	// Usage records keys' last use, written back every UsageInterval.
	Usage UsageWriter
	// HotKeys are the ids of the keys the replicas served lately: a
	// starting replica loads them (WarmupTimeout) and each records its own
	// (HotKeysInterval).
	HotKeys HotKeys
	// ObserveStore installs a function told of every store request (for
	// metrics).
	ObserveStore func(observe func(op, class string, took time.Duration))
	// AuthCounts are the store login counters (for metrics).
	AuthCounts metrics.AuthCounts
	// Settings is the effective configuration the admin endpoint shows at
	// GET /v1/config, secrets only as set or unset. nil: empty.
	Settings func() map[string]string
	// Stdout and Stderr are the process's, for AuditLog "stdout" and
	// "stderr".
	Stdout, Stderr io.Writer
}

// Server is keygate serve. New opens it; Run runs it once.
type Server struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	check *extauthz.Server
	rl    *ratelimit.Client // nil without --ratelimit-service
	lis   listeners
	tls   *servetls.Reloader // nil: plain text
	obs   *observability

	grpc                *grpc.Server
	health              *health.Server
	http, admin, metric *http.Server // nil when off
	peppersChanged      <-chan struct{}
	journalRead         <-chan struct{} // closed after the journal's first read (the warm-up waits for it)

	mu       sync.Mutex
	draining bool // health is NOT_SERVING for good

	state               atomic.Int32 // 0 new, 1 running
	stopped, bg, hurry  context.Context
	markStopped, stopBG context.CancelFunc
	cut                 context.CancelFunc // ends hurry
	stopReq, done       chan struct{}
	stopOnce            sync.Once                                  // closes stopReq
	pause               func(ctx context.Context, d time.Duration) // the shutdown delay (tests hold it)
}

// New validates cfg, loads the TLS files, opens the audit output and every
// listener, and builds the Check server. Nothing runs until Run, which
// also closes what New opened. Configuration errors are *field.Error
// values named as serve's flags.
func New(cfg Config, deps Deps) (_ *Server, err error) {
	if deps.Log == nil || deps.Store == nil {
		return nil, errors.New("server: Deps.Log and Deps.Store are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Check.TrackUsage = deps.Usage != nil && cfg.UsageInterval > 0
	rl, err := openRateLimit(cfg, deps)
	if err != nil {
		return nil, err
	}
	defer func() { // a failed New leaves nothing open
		if err != nil && rl != nil {
			rl.Close()
		}
	}()
	cfg.Check.Global = globalLimiter(rl)
	s := &Server{cfg: cfg, deps: deps, log: deps.Log, rl: rl, stopReq: make(chan struct{}), done: make(chan struct{}), pause: pause}
	if s.check, err = extauthz.NewServer(cfg.Check, deps.Store, nil, deps.Log); err != nil {
		return nil, err
	}
	if cfg.TLS.CertFile != "" {
		if s.tls, err = servetls.New(cfg.TLS, deps.Log); err != nil {
			return nil, err
		}
	}
	if s.obs, err = openObservability(cfg, deps); err != nil {
		return nil, err
	}
	if s.lis, err = listen(cfg); err != nil {
		s.obs.close()
		return nil, err
	}
	s.wire()
	return s, nil
}

// wire connects the parts New opened.
func (s *Server) wire() {
	s.obs.wire(s.check, s.rl, s.deps)
	s.peppersChanged = evictChanges(s.deps.OnChange, s.check, s.cfg.Check.StoreReadBurst, s.log)
	s.deps.Journal, s.journalRead = gateJournal(s.deps.Journal, s.cfg.JournalPoll)
	s.health = newHealth()
	if s.lis.http != nil {
		s.http = newHTTPServer(httpHandler(s.check, s.health), s.cfg.Check.GRPCTransportLimit(), s.log)
	}
	if s.lis.admin != nil {
		settings := s.deps.Settings
		if settings == nil {
			settings = func() map[string]string { return map[string]string{} }
		}
		s.admin = newEndpoint(adminHandler(s.check, s.log, settings, isLoopbackAddr(s.lis.admin.Addr())), 10*time.Second)
	}
	if s.lis.metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.obs.metrics.Handler())
		s.metric = newEndpoint(mux, 30*time.Second)
	}
	s.stopped, s.markStopped = context.WithCancel(context.Background())
	s.bg, s.stopBG = context.WithCancel(context.Background())
	s.hurry, s.cut = context.WithCancel(context.Background())
}
