package metrics

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// numEvents is the number of extauthz.Source values.
const numEvents = int(extauthz.SourceStale) + 1

// eventNames label cache events by extauthz.Source ("" : not a cache event).
var eventNames = [numEvents]string{
	extauthz.SourceNone:     "",
	extauthz.SourceHit:      "hit",
	extauthz.SourceNegative: "negative_hit",
	extauthz.SourceMiss:     "miss",
	extauthz.SourceStale:    "stale",
}

var (
	checksDesc = prometheus.NewDesc("keygate_checks_total",
		"Check decisions by result (allowed, denied) and reason code.", []string{"result", "reason"}, nil)
	cacheDesc = prometheus.NewDesc("keygate_cache_events_total",
		"Cache events: hit, negative_hit (a cached unknown id), miss (a store read), stale (served past found-ttl because the store failed), "+
			"eviction (a record dropped) by cause: size (the cache was full), sweep (no longer servable, fresh or stale), explicit (evicted by the change journal or the admin endpoint, or purged).",
		[]string{"event", "cause"}, nil)
	cacheSizeDesc = prometheus.NewDesc("keygate_cache_entries",
		"Entries in the cache by kind (records, unknown).", []string{"kind"}, nil)
	changeFeedDesc = prometheus.NewDesc("keygate_change_feed_healthy",
		"1 while a change feed vouches for cached records (the Vault change journal read within 3 polls, or the file store): "+
			"they are re-read when changed or at --max-record-age; 0: every --found-ttl.", nil, nil)
)

// decisionCollector reads the decision counters at scrape time, so Check
// pays atomic adds rather than label lookups.
type decisionCollector struct{ m *Metrics }

func (c decisionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- checksDesc
	ch <- cacheDesc
	ch <- cacheSizeDesc
	ch <- changeFeedDesc
}

func (c decisionCollector) Collect(ch chan<- prometheus.Metric) {
	for r := range policy.NumReasons {
		result := "denied"
		if policy.Reason(r) == policy.Allowed {
			result = "allowed"
		}
		ch <- prometheus.MustNewConstMetric(checksDesc, prometheus.CounterValue,
			float64(c.m.checks[r].Load()), result, policy.Reason(r).String())
	}
	for s, name := range eventNames {
		if name != "" {
			ch <- prometheus.MustNewConstMetric(cacheDesc, prometheus.CounterValue, float64(c.m.sources[s].Load()), name, "")
		}
	}
	if stats := c.m.cacheStats.Load(); stats != nil {
		st := (*stats)()
		for cause, n := range map[string]uint64{"size": st.SizeEvictions, "sweep": st.SweepEvictions, "explicit": st.ExplicitEvictions} {
			ch <- prometheus.MustNewConstMetric(cacheDesc, prometheus.CounterValue, float64(n), "eviction", cause)
		}
		ch <- prometheus.MustNewConstMetric(cacheSizeDesc, prometheus.GaugeValue, float64(st.Records), "records")
		ch <- prometheus.MustNewConstMetric(cacheSizeDesc, prometheus.GaugeValue, float64(st.Unknown), "unknown")
		ch <- prometheus.MustNewConstMetric(changeFeedDesc, prometheus.GaugeValue, b2f(st.ChangeFeed))
	}
}

// WatchCache reports the server's cache sizes and evictions by cause.
func (m *Metrics) WatchCache(stats func() extauthz.CacheStats) { m.cacheStats.Store(&stats) }

// Counters registers counters read from functions at scrape time (Vault
// logins, token renewals, audit lines); each fn must be monotonic.
func (m *Metrics) Counters(fns map[string]CounterFunc) {
	for name, f := range fns {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: f.Help}, f.Fn))
	}
}

// CounterFunc is a counter read from Fn at scrape time.
type CounterFunc struct {
	Help string
	Fn   func() float64
}

// AuthCounts is what VaultAuth reads; vault.Auth satisfies it.
type AuthCounts interface {
	Logins() int64
	LoginFailures() int64
	Renewals() int64
}

// VaultAuth registers keygate_vault_logins_total,
// keygate_vault_login_failures_total and keygate_vault_token_renewals_total,
// read from a at scrape time. The names live here, not with the caller, so
// that everything keygate exports is known to this package (dashboards and
// alert rules are checked against it).
func (m *Metrics) VaultAuth(a AuthCounts) {
	m.Counters(map[string]CounterFunc{
		"keygate_vault_logins_total":         {Help: "Successful Vault logins (first and re-logins).", Fn: func() float64 { return float64(a.Logins()) }},
		"keygate_vault_login_failures_total": {Help: "Failed Vault login attempts.", Fn: func() float64 { return float64(a.LoginFailures()) }},
		"keygate_vault_token_renewals_total": {Help: "Vault token renewals.", Fn: func() float64 { return float64(a.Renewals()) }},
	})
}

// AuditCounts is what Audit reads; audit.Logger satisfies it.
type AuditCounts interface {
	Written() uint64
	Dropped() uint64
}

// Audit registers keygate_audit_lines_total and
// keygate_audit_lines_dropped_total, read from a at scrape time.
func (m *Metrics) Audit(a AuditCounts) {
	m.Counters(map[string]CounterFunc{
		"keygate_audit_lines_total":         {Help: "Audit lines written.", Fn: func() float64 { return float64(a.Written()) }},
		"keygate_audit_lines_dropped_total": {Help: "Audit lines dropped because the buffer was full.", Fn: func() float64 { return float64(a.Dropped()) }},
	})
}

// keyCounter is keygate_key_requests_total with a cap on distinct key ids.
type keyCounter struct {
	vec   *prometheus.CounterVec
	max   int
	mu    sync.RWMutex
	known map[string]string // key id → its own copy (the caller's shares the raw key's memory)
}

const otherKeys = "_other"

func newKeyCounter(max int) *keyCounter {
	return &keyCounter{max: max, known: make(map[string]string), vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_key_requests_total",
		Help: "Checks of keys whose secret verified, by key id (never the key), tenant and result; past the cap on distinct ids, key_id and tenant are \"_other\".",
	}, []string{"key_id", "tenant", "result"})}
}

func (k *keyCounter) inc(keyID, tenant string, allowed bool) {
	k.mu.RLock()
	own, ok := k.known[keyID]
	k.mu.RUnlock()
	if !ok {
		k.mu.Lock()
		if own, ok = k.known[keyID]; !ok && len(k.known) < k.max {
			own, ok = strings.Clone(keyID), true
			k.known[own] = own
		}
		k.mu.Unlock()
	}
	keyID = own
	if !ok {
		keyID, tenant = otherKeys, otherKeys
	}
	result := "denied"
	if allowed {
		result = "allowed"
	}
	k.vec.WithLabelValues(keyID, tenant, result).Inc()
}
