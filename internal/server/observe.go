package server

import (
	"io"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/keygate/keygate/audit"
	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/ratelimit"
)

// observability is the audit log and the metrics; either may be nil (off).
// Its methods are nil-safe hooks for the tasks.
type observability struct {
	metrics  *metrics.Metrics
	audit    *audit.Logger
	auditOut io.Closer // the audit file, if any
}

// openObservability creates the metrics (when MetricsAddr is set) and
// opens the audit output (unless AuditLog is "off").
func openObservability(cfg Config, deps Deps) (*observability, error) {
	ob := &observability{}
	if cfg.MetricsAddr != "" {
		ob.metrics = metrics.New(cfg.Metrics)
	}
	var out io.Writer
	switch cfg.AuditLog {
	case "off":
		return ob, nil
	case "stdout":
		out = deps.Stdout
	case "stderr":
		out = deps.Stderr
	default:
		f, err := os.OpenFile(cfg.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			var l field.List
			l.Addf("audit-log", "%v", err)
			return nil, l.Err()
		}
		out, ob.auditOut = f, f
	}
	ac := cfg.Audit
	ac.Out = out
	var err error
	if ob.audit, err = audit.New(ac); err != nil {
		ob.close()
		return nil, field.Prefix(err, "audit-")
	}
	return ob, nil
}

func (ob *observability) close() {
	if ob.auditOut != nil {
		ob.auditOut.Close()
	}
}

// wire connects Check, the rate limit client (nil if none) and the store
// to the audit log and metrics.
func (ob *observability) wire(srv *extauthz.Server, rl *ratelimit.Client, deps Deps) {
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
	if rl != nil {
		m.RateLimitResults(ratelimit.Results)
		rl.SetObserver(m.RateLimitRequest)
	}
	if deps.ObserveStore != nil {
		deps.ObserveStore(m.VaultRequest)
	}
	if deps.AuthCounts != nil {
		m.VaultAuth(deps.AuthCounts)
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

func (ob *observability) setReady(ok bool) {
	if ob.metrics != nil {
		ob.metrics.SetReady(ok)
	}
}

func (ob *observability) journalWatched(t time.Time) {
	if ob.metrics != nil {
		ob.metrics.JournalWatched(t)
	}
}

func (ob *observability) journalRead(t time.Time) {
	if ob.metrics != nil {
		ob.metrics.JournalRead(t)
	}
}

func (ob *observability) journalPurged() {
	if ob.metrics != nil {
		ob.metrics.JournalPurged()
	}
}

func (ob *observability) warmedUp(loaded, unknown, failed, notTried int, took time.Duration) {
	if ob.metrics != nil {
		ob.metrics.WarmUp(loaded, unknown, failed, notTried, took)
	}
}
