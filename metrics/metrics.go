// Package metrics exports keygate's Prometheus metrics. Labels come from
// closed sets only (results, reason codes, cache events and eviction
// causes, Vault operations and outcome classes); the one exception, per-key
// request counts, is opt-in and capped. No metric ever carries a raw key.
//
// The Check path pays for one histogram observation and a few atomic adds
// per decision; counters are read at scrape time.
package metrics

import (
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/policy"
)

// Config configures Metrics. Start from DefaultConfig.
type Config struct {
	// Version is reported by keygate_build_info. Default "".
	Version string
	// KeyRequests enables keygate_key_requests_total{key_id,tenant,result}.
	// Default false.
	KeyRequests bool
	// MaxKeyIDs caps the distinct key ids of keygate_key_requests_total;
	// later keys are counted under key_id="_other". At least 1. Default
	// 1000.
	MaxKeyIDs int
}

// DefaultConfig has per-key counts off, capped at 1000 ids when on.
func DefaultConfig() Config { return Config{MaxKeyIDs: 1000} }

// Validate reports every problem as *field.Error values ("max-keys").
// It does not change c.
func (c Config) Validate() error {
	var l field.List
	if c.MaxKeyIDs < 1 {
		l.Addf("max-keys", "must be >= 1, got %d", c.MaxKeyIDs)
	}
	return l.Err()
}

// Metrics holds keygate's collectors on their own registry.
type Metrics struct {
	reg *prometheus.Registry

	checks  [policy.NumReasons]atomic.Uint64
	sources [numEvents]atomic.Uint64
	latency [2]prometheus.Observer // allowed, denied

	keys *keyCounter // nil unless Config.KeyRequests

	vaultTook *prometheus.HistogramVec
	vaultReqs *prometheus.CounterVec

	rlTook prometheus.Histogram
	rlReqs *prometheus.CounterVec

	cacheStats   atomic.Pointer[func() extauthz.CacheStats]
	ready        atomic.Bool
	journalOK    atomic.Int64 // unix nanos of the last successful journal read; 0: none yet
	journalSince atomic.Int64 // unix nanos of when the journal began to be watched; 0: no journal
	journalPurge atomic.Uint64
	warmKeys     *prometheus.GaugeVec // by outcome
	warmTook     prometheus.Gauge

	// GRPC are the gRPC server metrics (grpc_server_*): register its
	// interceptors on the server.
	GRPC *grpcprom.ServerMetrics
}

// New returns Metrics with every keygate collector, Go runtime and process
// collectors, and build info, registered. Call cfg.Validate first: New
// takes cfg as it is.
func New(cfg Config) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	checkTook := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "keygate_check_duration_seconds",
		Help:    "Time from the start of a Check to its decision, by result.",
		Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3},
	}, []string{"result"})
	m.latency = [2]prometheus.Observer{checkTook.WithLabelValues("allowed"), checkTook.WithLabelValues("denied")}
	m.vaultTook = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "keygate_vault_request_duration_seconds",
		Help:    "Duration of Vault requests by operation.",
		Buckets: []float64{1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5},
	}, []string{"operation"})
	m.vaultReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_vault_requests_total",
		Help: "Vault requests by operation and outcome class (ok, not_found, timeout, unreachable, forbidden, rate_limited, unavailable, server_error, client_error, bad_response, canceled).",
	}, []string{"operation", "class"})
	m.rlTook = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "keygate_ratelimit_request_duration_seconds",
		Help:    "Duration of calls to the rate limit service (--ratelimit-service), failed ones included.",
		Buckets: []float64{250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3},
	})
	m.rlReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_ratelimit_requests_total",
		Help: "Calls to the rate limit service for keys with global limits, by result (ok, over_limit, timeout, error).",
	}, []string{"result"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keygate_build_info", Help: "keygate's version and Go version; always 1.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(cfg.Version, runtime.Version()).Set(1)
	m.GRPC = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3, 100e-3, 250e-3})))
	m.warmKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keygate_warmup_keys",
		Help: "Keys of the working set this replica's warm-up handled, by outcome: loaded (cached), unknown (no usable record), failed (the store did not answer), not_tried (the deadline came first); 0 before the warm-up ends or without one.",
	}, []string{"outcome"})
	for _, r := range warmOutcomes {
		m.warmKeys.WithLabelValues(r)
	}
	m.warmTook = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keygate_warmup_duration_seconds",
		Help: "Seconds this replica's warm-up took, from the first store login (at most about --warmup-timeout); 0 before it ends or without one.",
	})
	m.reg.MustRegister(checkTook, m.vaultTook, m.vaultReqs, m.rlTook, m.rlReqs, build, m.GRPC, decisionCollector{m}, m.warmKeys, m.warmTook,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keygate_ready", Help: "1 when keygate reports SERVING, else 0."}, func() float64 {
			return b2f(m.ready.Load())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keygate_journal_lag_seconds",
			Help: "Seconds since the change journal was last read successfully, or, before the first read, since it began to be watched (changes made since may not be applied yet); 0 without a journal.",
		}, m.journalLag),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_journal_cache_purges_total",
			Help: "Times this replica fell behind the change journal (or it went back) and expired its whole cache: every cached key is re-read on its next use.",
		}, func() float64 { return float64(m.journalPurge.Load()) }),
	)
	if cfg.KeyRequests {
		m.keys = newKeyCounter(cfg.MaxKeyIDs)
		m.reg.MustRegister(m.keys.vec)
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Decision records one Check decision; set it as Server.OnDecision (or call
// it from there).
func (m *Metrics) Decision(d extauthz.Decision) {
	m.checks[d.Reason].Add(1)
	m.sources[d.Source].Add(1)
	result := 0
	if d.Reason != policy.Allowed {
		result = 1
	}
	m.latency[result].Observe(d.Latency.Seconds())
	if m.keys != nil && d.KeyID != "" && d.Tenant != "" { // only keys whose secret verified
		m.keys.inc(d.KeyID, d.Tenant, d.Reason == policy.Allowed)
	}
}

// VaultRequest records one Vault request; pass it to vault.Store.SetObserver.
func (m *Metrics) VaultRequest(op, class string, took time.Duration) {
	m.vaultTook.WithLabelValues(op).Observe(took.Seconds())
	m.vaultReqs.WithLabelValues(op, class).Inc()
}

// RateLimitResults makes keygate_ratelimit_requests_total export each
// result from the start (at 0), so rates over them exist before the
// first failure.
func (m *Metrics) RateLimitResults(results []string) {
	for _, r := range results {
		m.rlReqs.WithLabelValues(r)
	}
}

// RateLimitRequest records one call to the rate limit service; pass it to
// ratelimit.Client.SetObserver.
func (m *Metrics) RateLimitRequest(result string, took time.Duration) {
	m.rlTook.Observe(took.Seconds())
	m.rlReqs.WithLabelValues(result).Inc()
}

// SetReady mirrors gRPC health: true while SERVING.
func (m *Metrics) SetReady(ok bool) { m.ready.Store(ok) }

// JournalWatched records that the change journal began to be watched at t:
// until its first successful read, the lag counts from t (a replica that
// can never read it lags, rather than reading 0).
func (m *Metrics) JournalWatched(t time.Time) { m.journalSince.Store(t.UnixNano()) }

// JournalRead records a successful read of the change journal at t.
func (m *Metrics) JournalRead(t time.Time) { m.journalOK.Store(t.UnixNano()) }

// JournalPurged records a whole-cache expiry for falling behind the journal
// (the metric keeps its old name, keygate_journal_cache_purges_total).
func (m *Metrics) JournalPurged() { m.journalPurge.Add(1) }

// warmOutcomes are keygate_warmup_keys' outcome label values, in WarmUp's
// argument order.
var warmOutcomes = [...]string{"loaded", "unknown", "failed", "not_tried"}

// WarmUp records how the warm-up ended: the working set's keys by outcome,
// and how long it took.
func (m *Metrics) WarmUp(loaded, unknown, failed, notTried int, took time.Duration) {
	for i, n := range [...]int{loaded, unknown, failed, notTried} {
		m.warmKeys.WithLabelValues(warmOutcomes[i]).Set(float64(n))
	}
	m.warmTook.Set(took.Seconds())
}

func (m *Metrics) journalLag() float64 {
	last := m.journalOK.Load()
	if last == 0 {
		last = m.journalSince.Load()
	}
	if last == 0 {
		return 0
	}
	return time.Since(time.Unix(0, last)).Seconds()
}

// Handler serves /metrics in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Gatherer is the registry, for tests that read the metrics directly.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }
