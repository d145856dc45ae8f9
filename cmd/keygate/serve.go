package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/servetls"
	"github.com/keygate/keygate/policy"
)

type serveFlags struct {
	grpcAddr        string
	httpAddr        string
	adminAddr       string
	routesFile      string
	logLevel        string
	shutdownTimeout time.Duration
	shutdownDelay   time.Duration
	pepperRefresh   time.Duration
	journalPoll     time.Duration
	usageInterval   time.Duration
	obs             observeFlags
	grpc            grpcFlags
	tls             tlsFlags
	fs              *pflag.FlagSet
	getenv          func(string) string
	store           storeFlags
	trustedProxies  []string
	unknownKeyPer   string
	cfg             extauthz.Config
}

func newServeCmd(e *env) *cobra.Command {
	f := &serveFlags{cfg: extauthz.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve Envoy's ext_authz Check API (gRPC) with health and reflection",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), e) },
	}
	fs := cmd.Flags()
	f.fs = fs
	fs.StringVar(&f.grpcAddr, "grpc-addr", "127.0.0.1:9191", "gRPC listen address (HOST:PORT; use 0.0.0.0:9191 in a container)")
	fs.StringVar(&f.httpAddr, "http-addr", "", "HTTP authorization listen address for Envoy http_service (/ext_authz), nginx auth_request, Caddy forward_auth, Traefik ForwardAuth (/auth); off when empty, e.g. 127.0.0.1:9192")
	fs.StringVar(&f.adminAddr, "admin-addr", "", "HTTP address of the admin endpoint (POST /v1/evict?id=, /v1/purge with header X-Keygate-Admin: 1; GET /v1/cache, /v1/config, /debug/pprof/); off when empty; :PORT binds loopback; keep it there, e.g. 127.0.0.1:9901")
	fs.StringVar(&f.routesFile, "routes-file", "", "YAML/JSON file mapping host/method/path prefix to required scopes (optional)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight Checks may finish after SIGTERM")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "after SIGTERM, report NOT_SERVING and keep serving this long so Envoy can drain (e.g. 5s)")
	fs.DurationVar(&f.pepperRefresh, "pepper-refresh", time.Minute, "how often HMAC peppers are re-read from the store")
	fs.DurationVar(&f.journalPoll, "journal-poll", time.Second, "how often the Vault change journal is read to evict changed keys (0: never)")
	fs.DurationVar(&f.usageInterval, "usage-interval", time.Hour, "how often when keys were last used is written to Vault, at most once per key (0: never)")
	f.obs.register(fs)
	f.grpc.register(fs)
	f.tls.register(fs)
	f.store.register(fs)
	c := &f.cfg
	fs.StringVar(&c.KeyPrefix, "key-prefix", policy.DefaultPrefix, "API key prefix")
	fs.StringVar(&c.KeyHeader, "key-header", "x-api-key", "header carrying a bare key")
	fs.StringVar(&c.AuthHeader, "auth-header", "authorization", `header carrying "Bearer <key>" or "ApiKey <key>"`)
	fs.BoolVar(&c.ImportedKeys, "imported-keys", false, "also accept keys imported with `keygate keys import` (credentials in no keygate format, found by hash)")
	fs.IntVar(&c.CacheSize, "cache-size", 100_000, "max cached key records")
	fs.IntVar(&c.NegativeCacheSize, "negative-cache-size", 10_000, "max cached unknown key ids")
	fs.DurationVar(&c.FoundTTL, "found-ttl", 30*time.Second, "how long a key record is used before it is re-read")
	fs.DurationVar(&c.NotFoundTTL, "not-found-ttl", 5*time.Second, "how long an unknown key id is remembered")
	fs.DurationVar(&c.StaleTTL, "stale-ttl", 5*time.Minute, "how long past --found-ttl a record is still used while the store fails (0: never)")
	fs.DurationVar(&c.LookupTimeout, "lookup-timeout", 150*time.Millisecond, "timeout of one store read on the Check path; keep under Envoy's ext_authz timeout")
	fs.Float64Var(&c.StoreReadRate, "store-read-rate", 500, "max store reads per second caused by cache misses (negative: unlimited)")
	fs.IntVar(&c.StoreReadBurst, "store-read-burst", 100, "burst over --store-read-rate")
	fs.Float64Var(&c.UnknownKeyRate, "unknown-key-rate", 50, "unknown keys per second a calling peer may send before its uncached keys get 429 caller_rate_limited (negative: unlimited)")
	fs.IntVar(&c.UnknownKeyBurst, "unknown-key-burst", 500, "burst over --unknown-key-rate")
	fs.StringVar(&f.unknownKeyPer, "unknown-key-per", "peer", "what --unknown-key-rate is counted per: peer (the calling proxy) or client (the client address Envoy reports, or in HTTP mode the one --trusted-proxies lead to)")
	fs.StringSliceVar(&f.trustedProxies, "trusted-proxies", nil, "HTTP mode: addresses or CIDRs of the proxies whose X-Forwarded-For is believed; the client is the rightmost entry not in the list (default none: the connecting peer is the client)")
	fs.StringSliceVar(&c.StripHeaders, "strip-headers", nil, "header names removed from every allowed request whose key does not set them (besides keygate's identity headers and every record header name already loaded): list the names your key records set")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", 256<<10, "largest request decided on (the CheckRequest over gRPC, the headers in HTTP mode); larger ones are denied 413 request_too_large")
	fs.IntVar(&c.MaxRequestBytes, "grpc-max-message-bytes", 256<<10, "")
	_ = fs.MarkDeprecated("grpc-max-message-bytes", "use --max-request-bytes (larger requests are now denied 413, not refused)")
	return cmd
}

func (f *serveFlags) run(ctx context.Context, e *env) error {
	f.getenv = e.getenv
	errs := []error{e.envErr, f.checkFlags(), f.obs.check(), f.grpc.check(),
		f.tls.check(map[string]string{"--grpc-addr": f.grpcAddr, "--http-addr": f.httpAddr})}
	log, err := newLogger(e.stderr, f.logLevel)
	if err != nil {
		errs = append(errs, err)
		log, _ = newLogger(e.stderr, "info")
	}
	if f.grpcAddr == "" {
		errs = append(errs, errors.New("--grpc-addr: required"))
	}
	if f.cfg.Routes, err = loadRoutes(f.routesFile); err != nil {
		errs = append(errs, err)
	}
	store, err := f.store.open(ctx, e, log, false)
	if err != nil {
		errs = append(errs, err)
	}
	if _, ok := usageSink(store); ok && f.usageInterval > 0 {
		f.cfg.TrackUsage = true
	}
	srv, err := extauthz.NewServer(f.cfg, store, nil, log)
	if err != nil {
		errs = append(errs, err)
	}
	tlsr, err := f.tls.open(log)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", f.grpcAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	ls := listeners{grpc: lis, tls: tlsr}
	for _, l := range []struct {
		flag, addr string
		into       *net.Listener
	}{{"--http-addr", f.httpAddr, &ls.http}, {"--admin-addr", loopbackDefault(f.adminAddr), &ls.admin}} {
		if l.addr == "" {
			continue
		}
		if *l.into, err = net.Listen("tcp", l.addr); err != nil {
			ls.close()
			return fmt.Errorf("%s: %w", l.flag, err)
		}
	}
	ob, err := f.obs.open(e)
	if err != nil {
		ls.close()
		return err
	}
	defer ob.close()
	ob.wire(srv, store)
	return f.serve(ctx, log, ls, store, srv, ob)
}

// listeners are serve's sockets; http and admin are nil when off; tls is
// nil for plain text.
type listeners struct {
	grpc, http, admin net.Listener
	tls               *servetls.Reloader
}

func (l listeners) close() {
	for _, c := range []net.Listener{l.grpc, l.http, l.admin} {
		if c != nil {
			c.Close()
		}
	}
}

func (f *serveFlags) serve(ctx context.Context, log *slog.Logger, ls listeners, store *openedStore, srv *extauthz.Server, ob *observability) error {
	opts := append(append(f.grpc.options(), srv.GRPCOptions()...), ob.grpcOptions()...)
	if ls.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(ls.tls.ServerConfig("h2"))))
	}
	g := grpc.NewServer(opts...)
	srv.Register(g)
	hs := health.NewServer()
	setHealth(hs, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	if ob.metrics != nil {
		ob.metrics.GRPC.InitializeMetrics(g)
	}

	grp, ctx := errgroup.WithContext(ctx)
	stopped := make(chan struct{}) // closed once no Check can be answered any more
	ob.run(ctx, stopped, grp, log)
	grp.Go(func() error {
		log.Info("serving", "grpc_addr", ls.grpc.Addr().String(), "store", store.name)
		return g.Serve(ls.grpc)
	})
	var hsrv *http.Server
	if ls.http != nil {
		hsrv = newHTTPServer(httpHandler(srv, hs), f.cfg.GRPCTransportLimit(), log)
		httpLis := ls.http
		if ls.tls != nil {
			httpLis = tls.NewListener(httpLis, ls.tls.ServerConfig("http/1.1"))
		}
		grp.Go(func() error { return serveHTTPMode(hsrv, httpLis, log) })
	}
	if ls.tls != nil {
		grp.Go(func() error { ls.tls.Run(ctx); return nil })
	}
	peppersChanged := evictChanges(store, srv, f.cfg.StoreReadBurst, log)
	if store.watch != nil {
		grp.Go(func() error { return store.watch(ctx) })
	}
	grp.Go(func() error { sweepCache(ctx, log, srv); return nil })
	if ls.admin != nil {
		config := func() map[string]string { return f.effectiveConfig(f.getenv) }
		h := adminHandler(srv, log, config, isLoopbackAddr(ls.admin.Addr()))
		grp.Go(func() error { return serveAdmin(ctx, ls.admin, h, log) })
	}
	if j, ok := store.keyStore.(journalReader); ok && f.journalPoll > 0 {
		grp.Go(func() error {
			if store.ready != nil { // no "cannot read the journal" noise before the first login
				select {
				case <-store.ready:
				case <-ctx.Done():
					return nil
				}
			}
			watchJournal(ctx, log, j, srv, f.journalPoll, ob)
			return nil
		})
	}
	if w, ok := usageSink(store); ok && f.cfg.TrackUsage {
		grp.Go(func() error { writeUsage(ctx, stopped, log, w, srv, f.usageInterval); return nil })
	}
	if store.run != nil { // Vault login, renewal and re-login
		grp.Go(func() error { return store.run(ctx) })
	}
	grp.Go(func() error {
		if store.ready != nil { // NOT_SERVING until the first Vault login
			select {
			case <-store.ready:
			case <-ctx.Done():
				return nil
			}
		}
		keepPeppers(ctx, log, store, srv, f.pepperRefresh, peppersChanged, func() {
			setHealth(hs, healthpb.HealthCheckResponse_SERVING)
			ob.setReady(true)
			log.Info("ready")
		})
		return nil
	})
	grp.Go(func() error {
		<-ctx.Done()
		hs.Shutdown() // NOT_SERVING, so Envoy stops sending before we stop
		ob.setReady(false)
		if f.shutdownDelay > 0 {
			log.Info("draining", "delay", f.shutdownDelay.String())
			time.Sleep(f.shutdownDelay)
		}
		var stopping sync.WaitGroup
		if hsrv != nil {
			stopping.Go(func() { stopHTTP(hsrv, f.shutdownTimeout, log) })
		}
		stopGracefully(g, f.shutdownTimeout, log)
		stopping.Wait()
		close(stopped)
		return nil
	})
	return grp.Wait()
}

// setHealth sets the overall status and the Authorization service's, which
// is what a health check naming the service asks for.
func setHealth(hs *health.Server, s healthpb.HealthCheckResponse_ServingStatus) {
	hs.SetServingStatus("", s)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, s)
}

// stopGracefully lets in-flight Checks finish, then forces the stop.
func stopGracefully(g *grpc.Server, timeout time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		log.Info("stopped")
	case <-t.C:
		log.Warn("shutdown timeout: stopping with Checks in flight")
		g.Stop()
		<-done
	}
}

// keepPeppers loads the store's HMAC peppers (retrying with backoff until
// the store answers), installs the hasher, reports readiness once, and
// refreshes every interval, and whenever changed fires, until ctx ends.
func keepPeppers(ctx context.Context, log *slog.Logger, store keyStore, srv *extauthz.Server, every time.Duration, changed <-chan struct{}, ready func()) {
	backoff, isReady := 100*time.Millisecond, false
	for {
		wait := every
		if p, err := loadPeppers(ctx, store); err != nil {
			log.Warn("cannot load peppers from the store", "err", err)
			wait, backoff = backoff, min(backoff*2, 10*time.Second)
		} else {
			h, _ := policy.NewHasher(policy.AlgSHA256, p) // sha256 needs no pepper; p was checked
			srv.SetHasher(h)
			backoff = 100 * time.Millisecond // the next outage starts retrying quickly again
			if !isReady {
				isReady = true
				ready()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-changed:
		}
	}
}

func loadPeppers(ctx context.Context, store keyStore) (policy.Peppers, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := store.Peppers(ctx)
	if err != nil {
		return p, err
	}
	if _, err := policy.NewHasher(policy.AlgSHA256, p); err != nil {
		return p, fmt.Errorf("stored peppers: %w", err)
	}
	return p, nil
}
