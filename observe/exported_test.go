package observe

import (
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/vault"
)

// series is one series name keygate exports (a histogram family yields
// three: _bucket, _sum and _count): its label names, each with the values
// the registry emitted for it.
type series map[string]map[string]bool

// targetLabels are added by Prometheus at scrape time, so any selector may
// use them.
var targetLabels = map[string]bool{"job": true, "instance": true}

// completeLabels are labels whose every value exported emits (every reason
// code, cache event and eviction cause, result, cache kind, Vault class and
// gRPC code, warm-up outcome), so a matcher on them may only use those
// values.
var completeLabels = map[string]bool{"result": true, "reason": true, "event": true, "cause": true,
	"kind": true, "class": true, "grpc_code": true, "outcome": true}

// vaultClasses are the Vault outcome classes vault.Store reports.
var vaultClasses = []string{vault.ClassOK, vault.ClassNotFound, vault.ClassInvalidRecord,
	vault.ClassTimeout, vault.ClassCanceled, vault.ClassUnreachable, vault.ClassForbidden,
	vault.ClassRateLimited, vault.ClassUnavailable, vault.ClassServerError,
	vault.ClassClientError, vault.ClassBadResponse}

// counts stands in for vault.Auth and audit.Logger.
type counts struct{}

func (counts) Logins() int64        { return 0 }
func (counts) LoginFailures() int64 { return 0 }
func (counts) Renewals() int64      { return 0 }
func (counts) Written() uint64      { return 0 }
func (counts) Dropped() uint64      { return 0 }

// exported builds keygate's registry as serve wires it with every option on
// (per-key counts, Vault auth, audit, cache, gRPC), gives each labelled
// collector its values, and returns every series name it exports.
func exported(t *testing.T) map[string]series {
	t.Helper()
	m := metrics.New(metrics.Config{Version: "test", KeyRequests: true, MaxKeyIDs: 1000})
	m.VaultAuth(counts{})
	m.Audit(counts{})
	m.WatchCache(func() extauthz.CacheStats { return extauthz.CacheStats{} })
	for r := range policy.NumReasons {
		m.Decision(extauthz.Decision{KeyID: "kid", Tenant: "acme", Reason: policy.Reason(r), Source: extauthz.SourceHit})
	}
	for _, class := range vaultClasses {
		m.VaultRequest("lookup", class, time.Millisecond)
	}
	m.RateLimitResults(ratelimit.Results)
	m.RateLimitRequest(ratelimit.ResultOK, time.Millisecond)
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, authv3.UnimplementedAuthorizationServer{})
	m.GRPC.InitializeMetrics(srv)
	srv.Stop()

	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]series{}
	for _, f := range families {
		for name, extra := range seriesNames(f) {
			s := series{}
			for _, mt := range f.GetMetric() {
				for _, l := range mt.GetLabel() {
					s.add(l.GetName(), l.GetValue())
				}
			}
			if extra != "" {
				s.add(extra, "")
			}
			out[name] = s
		}
	}
	return out
}

func (s series) add(label, value string) {
	if s[label] == nil {
		s[label] = map[string]bool{}
	}
	s[label][value] = true
}

// seriesNames maps the series names a family is scraped as to the label
// the exposition adds to that series ("" for none).
func seriesNames(f *dto.MetricFamily) map[string]string {
	name := f.GetName()
	switch f.GetType() {
	case dto.MetricType_HISTOGRAM:
		return map[string]string{name + "_bucket": "le", name + "_sum": "", name + "_count": ""}
	case dto.MetricType_SUMMARY:
		return map[string]string{name: "quantile", name + "_sum": "", name + "_count": ""}
	}
	return map[string]string{name: ""}
}

// TestExported guards the registry build itself: if it stopped exporting
// the labelled families, the expression checks would reject every query.
func TestExported(t *testing.T) {
	exp := exported(t)
	for name, label := range map[string]string{
		"keygate_checks_total": "reason", "keygate_check_duration_seconds_bucket": "le",
		"keygate_vault_requests_total": "class", "keygate_key_requests_total": "key_id",
		"keygate_cache_entries": "kind", "keygate_vault_login_failures_total": "",
		"keygate_audit_lines_dropped_total": "", "grpc_server_handled_total": "grpc_code",
		"grpc_server_handling_seconds_bucket": "le", "go_goroutines": "",
		"process_resident_memory_bytes": "", "keygate_ratelimit_requests_total": "result",
		"keygate_ratelimit_request_duration_seconds_bucket": "le", "keygate_change_feed_healthy": "",
	} {
		s, ok := exp[name]
		if !ok {
			t.Errorf("registry does not export %s", name)
		} else if label != "" && s[label] == nil {
			t.Errorf("%s has no label %q", name, label)
		}
	}
	if n := len(exp["keygate_checks_total"]["reason"]); n != policy.NumReasons {
		t.Errorf("keygate_checks_total has %d reasons, want %d", n, policy.NumReasons)
	}
}
