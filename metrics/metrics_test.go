package metrics

import (
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
		"keygate_cache_events_total,event=hit":                          4,
		"keygate_cache_events_total,event=miss":                         1,
		"keygate_checks_total,reason=caller_rate_limited,result=denied": 0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
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
