package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/keygate/keygate/audit"
	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/vault"
)

// observeFlags configure the audit log and the metrics endpoint.
type observeFlags struct {
	metricsAddr    string
	metricsKeys    bool
	metricsMaxKeys int
	auditLog       string
	auditSample    float64
	auditBuffer    int
	auditKeepQuery bool
}

func (o *observeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "HTTP address serving Prometheus /metrics, e.g. 127.0.0.1:9090; :PORT binds loopback, 0.0.0.0:PORT every interface (off when empty)")
	fs.BoolVar(&o.metricsKeys, "metrics-key-requests", false, "export keygate_key_requests_total{key_id,tenant,result} (capped by --metrics-max-keys): shows key ids and tenants to whoever can scrape /metrics")
	fs.IntVar(&o.metricsMaxKeys, "metrics-max-keys", 1000, `distinct key ids in keygate_key_requests_total; later keys count as "_other"`)
	fs.StringVar(&o.auditLog, "audit-log", "stdout", `where audit lines go: "stdout", "stderr", a file path (appended), or "off"`)
	fs.Float64Var(&o.auditSample, "audit-sample-allows", 1, "fraction of allow decisions written to the audit log (denies are always written)")
	fs.IntVar(&o.auditBuffer, "audit-buffer", 8192, "audit lines that may wait to be written; past it lines are dropped and counted")
	fs.BoolVar(&o.auditKeepQuery, "audit-keep-query", false, "keep the query string in audit lines' path (dropped by default: it may carry secrets)")
}

func (o *observeFlags) check() error {
	var errs []error
	if o.auditSample < 0 || o.auditSample > 1 {
		errs = append(errs, fmt.Errorf("--audit-sample-allows: %v is not between 0 and 1", o.auditSample))
	}
	if o.auditBuffer < 1 {
		errs = append(errs, fmt.Errorf("--audit-buffer: must be >= 1, got %d", o.auditBuffer))
	}
	if o.metricsMaxKeys < 1 {
		errs = append(errs, fmt.Errorf("--metrics-max-keys: must be >= 1, got %d", o.metricsMaxKeys))
	}
	if o.auditLog == "" {
		errs = append(errs, errors.New(`--audit-log: want "stdout", "stderr", a file path or "off"`))
	}
	return errors.Join(errs...)
}

// observability is serve's audit log and metrics; either may be nil (off).
type observability struct {
	metrics    *metrics.Metrics
	audit      *audit.Logger
	auditOut   io.Closer // the audit file, if any
	metricsLis net.Listener
}

// open opens the audit output and the metrics listener.
func (o *observeFlags) open(e *env) (*observability, error) {
	ob := &observability{}
	if o.metricsAddr != "" {
		lis, err := net.Listen("tcp", loopbackDefault(o.metricsAddr))
		if err != nil {
			return nil, fmt.Errorf("--metrics-addr: %w", err)
		}
		ob.metricsLis = lis
		ob.metrics = metrics.New(metrics.Config{Version: version, KeyRequests: o.metricsKeys, MaxKeyIDs: o.metricsMaxKeys})
	}
	var out io.Writer
	switch o.auditLog {
	case "off":
		return ob, nil
	case "stdout":
		out = e.stdout
	case "stderr":
		out = e.stderr
	default:
		f, err := os.OpenFile(o.auditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			ob.close()
			return nil, fmt.Errorf("--audit-log: %w", err)
		}
		out, ob.auditOut = f, f
	}
	var err error
	ac := audit.DefaultConfig()
	ac.Out, ac.SampleAllows, ac.Buffer, ac.KeepQuery = out, o.auditSample, o.auditBuffer, o.auditKeepQuery
	ob.audit, err = audit.New(ac)
	if err != nil {
		ob.close()
		return nil, err
	}
	return ob, nil
}

func (ob *observability) close() {
	if ob.metricsLis != nil {
		ob.metricsLis.Close()
	}
	if ob.auditOut != nil {
		ob.auditOut.Close()
	}
}

// wire connects the server and the store to the audit log and metrics.
func (ob *observability) wire(srv *extauthz.Server, store *openedStore) {
	m, a := ob.metrics, ob.audit
	switch {
	case m != nil && a != nil:
		srv.OnDecision = func(d extauthz.Decision) { m.Decision(d); a.Log(d) }
	case m != nil:
		srv.OnDecision = m.Decision
	case a != nil:
		srv.OnDecision = a.Log
	}
	if m == nil {
		return
	}
	m.WatchCache(srv.CacheStats)
	if vs, ok := store.keyStore.(*vault.Store); ok {
		vs.SetObserver(m.VaultRequest)
	}
	if store.auth != nil {
		m.VaultAuth(store.auth)
	}
	if a != nil {
		m.Audit(a)
	}
}

// grpcOptions are the gRPC server metrics' interceptors, if metrics are on.
func (ob *observability) grpcOptions() []grpc.ServerOption {
	if ob.metrics == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(ob.metrics.GRPC.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(ob.metrics.GRPC.StreamServerInterceptor())}
}

// run writes the audit log until stopped closes (so the last decisions are
// written) and serves /metrics until ctx ends.
func (ob *observability) run(ctx context.Context, stopped <-chan struct{}, grp *errgroup.Group, log *slog.Logger) {
	if ob.audit != nil {
		grp.Go(func() error {
			actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			defer cancel()
			go func() {
				select {
				case <-stopped:
				case <-actx.Done():
				}
				cancel()
			}()
			return ob.audit.Run(actx)
		})
	}
	if ob.metricsLis != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", ob.metrics.Handler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
		grp.Go(func() error {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return hs.Shutdown(shutdown)
		})
		grp.Go(func() error {
			log.Info("serving metrics", "metrics_addr", ob.metricsLis.Addr().String())
			if err := hs.Serve(ob.metricsLis); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("--metrics-addr: %w", err)
			}
			return nil
		})
	}
}

// Nil-safe hooks for serve and the journal watcher.

func (ob *observability) setReady(ok bool) {
	if ob != nil && ob.metrics != nil {
		ob.metrics.SetReady(ok)
	}
}

func (ob *observability) journalRead(t time.Time) {
	if ob != nil && ob.metrics != nil {
		ob.metrics.JournalRead(t)
	}
}

func (ob *observability) journalPurged() {
	if ob != nil && ob.metrics != nil {
		ob.metrics.JournalPurged()
	}
}
