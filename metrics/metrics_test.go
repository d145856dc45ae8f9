package metrics

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// TestDecisions: decisions land in checks_total and cache events by their
// closed labels; per-key counts stop at the cap, the rest under _other.
func TestDecisions(t *testing.T) {
	m := New(Config{KeyRequests: true, MaxKeyIDs: 2})
	for i, id := range []string{"AAAAAAAAAAA1", "AAAAAAAAAAA2", "AAAAAAAAAAA3", "AAAAAAAAAAA1"} {
		m.Decision(extauthz.Decision{KeyID: id, Tenant: "acme", Reason: policy.Allowed, Source: extauthz.SourceHit, Latency: time.Duration(i) * time.Microsecond})
	}
	m.Decision(extauthz.Decision{Reason: policy.MalformedKey})
	m.Decision(extauthz.Decision{KeyID: "AAAAAAAAAAA9", Reason: policy.UnknownKey, Source: extauthz.SourceMiss}) // no tenant: secret not verified
	want := `
# HELP keygate_key_requests_total Checks of keys whose secret verified, by key id (never the key), tenant and result; past the cap on distinct ids, key_id and tenant are "_other".
# TYPE keygate_key_requests_total counter
keygate_key_requests_total{key_id="AAAAAAAAAAA1",result="allowed",tenant="acme"} 2
keygate_key_requests_total{key_id="AAAAAAAAAAA2",result="allowed",tenant="acme"} 1
keygate_key_requests_total{key_id="_other",result="allowed",tenant="_other"} 1
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "keygate_key_requests_total"); err != nil {
		t.Error(err)
	}
	got := map[string]float64{}
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, x := range f.GetMetric() {
			key := f.GetName()
			for _, l := range x.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = x.GetCounter().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"keygate_checks_total,reason=allowed,result=allowed":            4,
		"keygate_checks_total,reason=malformed_key,result=denied":       1,
		"keygate_checks_total,reason=unknown_key,result=denied":         1,
		"keygate_cache_events_total,cause=,event=hit":                   4,
		"keygate_cache_events_total,cause=,event=miss":                  1,
		"keygate_checks_total,reason=caller_rate_limited,result=denied": 0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestCacheStats: evictions are event="eviction" with a cause label per
// cause (the other events have none), and the cache sizes their own gauge.
func TestCacheStats(t *testing.T) {
	m := New(Config{})
	m.WatchCache(func() extauthz.CacheStats {
		return extauthz.CacheStats{Records: 7, Unknown: 3, SizeEvictions: 1, SweepEvictions: 2, ExplicitEvictions: 4, Evictions: 7}
	})
	m.Decision(extauthz.Decision{Reason: policy.UnknownKey, Source: extauthz.SourceNegative})
	want := `
# HELP keygate_cache_entries Entries in the cache by kind (records, unknown).
# TYPE keygate_cache_entries gauge
keygate_cache_entries{kind="records"} 7
keygate_cache_entries{kind="unknown"} 3
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "keygate_cache_entries"); err != nil {
		t.Error(err)
	}
	if v := changeFeed(t, m); v != 0 {
		t.Errorf("keygate_change_feed_healthy = %v without a healthy feed, want 0", v)
	}
	m.WatchCache(func() extauthz.CacheStats { return extauthz.CacheStats{ChangeFeed: true} })
	if v := changeFeed(t, m); v != 1 {
		t.Errorf("keygate_change_feed_healthy = %v with a healthy feed, want 1", v)
	}
	m.WatchCache(func() extauthz.CacheStats {
		return extauthz.CacheStats{Records: 7, Unknown: 3, SizeEvictions: 1, SweepEvictions: 2, ExplicitEvictions: 4, Evictions: 7}
	})
	got := map[string]float64{}
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "keygate_cache_events_total" {
			for _, x := range f.GetMetric() {
				key := ""
				for _, l := range x.GetLabel() { // sorted by name: cause, event
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				got[key[1:]] = x.GetCounter().GetValue()
			}
		}
	}
	wantEvents := map[string]float64{
		"cause=,event=hit": 0, "cause=,event=negative_hit": 1, "cause=,event=miss": 0, "cause=,event=stale": 0,
		"cause=size,event=eviction": 1, "cause=sweep,event=eviction": 2, "cause=explicit,event=eviction": 4,
	}
	if !maps.Equal(got, wantEvents) {
		t.Errorf("keygate_cache_events_total = %v, want %v", got, wantEvents)
	}
}

// TestWarmUp: every result is exported from the start (0), and WarmUp
// sets each to its count, and the duration.
func TestWarmUp(t *testing.T) {
	m := New(Config{})
	zero := `
# HELP keygate_warmup_keys Keys of the working set this replica's warm-up handled, by outcome: loaded (cached), unknown (no usable record), failed (the store did not answer), not_tried (the deadline came first); 0 before the warm-up ends or without one.
# TYPE keygate_warmup_keys gauge
keygate_warmup_keys{outcome="failed"} 0
keygate_warmup_keys{outcome="loaded"} 0
keygate_warmup_keys{outcome="not_tried"} 0
keygate_warmup_keys{outcome="unknown"} 0
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(zero), "keygate_warmup_keys"); err != nil {
		t.Error(err)
	}
	m.WarmUp(5000, 3, 2, 1, 1500*time.Millisecond)
	want := `
# HELP keygate_warmup_keys Keys of the working set this replica's warm-up handled, by outcome: loaded (cached), unknown (no usable record), failed (the store did not answer), not_tried (the deadline came first); 0 before the warm-up ends or without one.
# TYPE keygate_warmup_keys gauge
keygate_warmup_keys{outcome="failed"} 2
keygate_warmup_keys{outcome="loaded"} 5000
keygate_warmup_keys{outcome="not_tried"} 1
keygate_warmup_keys{outcome="unknown"} 3
# HELP keygate_warmup_duration_seconds Seconds this replica's warm-up took, from the first store login (at most about --warmup-timeout); 0 before it ends or without one.
# TYPE keygate_warmup_duration_seconds gauge
keygate_warmup_duration_seconds 1.5
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "keygate_warmup_keys", "keygate_warmup_duration_seconds"); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	if err := (Config{MaxKeyIDs: 0}).Validate(); err == nil || !strings.Contains(err.Error(), "max-keys") {
		t.Errorf("MaxKeyIDs 0: %v, want an error naming max-key-ids", err)
	}
}

// changeFeed is the value of keygate_change_feed_healthy, -1 if absent.
func changeFeed(t *testing.T, m *Metrics) float64 {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "keygate_change_feed_healthy" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestJournalLag: 0 without a journal; from when the journal began to be
// watched until its first read (a replica that can never read it must
// trip KeygateJournalLag, not read 0); then from the last read.
func TestJournalLag(t *testing.T) {
	m := New(Config{})
	if lag := m.journalLag(); lag != 0 {
		t.Errorf("no journal: lag %v, want 0", lag)
	}
	m.JournalWatched(time.Now().Add(-time.Minute))
	if lag := m.journalLag(); lag < 59 || lag > 120 {
		t.Errorf("watched a minute ago, never read: lag %v s, want about 60", lag)
	}
	m.JournalRead(time.Now().Add(-2 * time.Second))
	if lag := m.journalLag(); lag < 1.9 || lag > 60 {
		t.Errorf("read 2 s ago: lag %v s, want about 2", lag)
	}
}
