package policy

import (
	"strings"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	base := func() *Record { return &Record{Hash: "sha256:" + hex64, Tenant: "acme", Status: StatusActive} }
	ok := []struct {
		name string
		rl   *RateLimit
		q    *Quota
		want Limits
	}{
		{"5 per second, default burst", &RateLimit{Requests: 5, Per: "second"}, nil,
			Limits{Rate: 5, Burst: 5, RateRequests: 5, RateWindow: time.Second}},
		{"600 per minute, burst 20", &RateLimit{Requests: 600, Per: "minute", Burst: 20}, nil,
			Limits{Rate: 10, Burst: 20, RateRequests: 600, RateWindow: time.Minute}},
		{"quota only", nil, &Quota{Requests: 10000, Per: "day"}, Limits{Quota: 10000, QuotaWindow: 24 * time.Hour}},
		{"1 per hour, 1 per hour quota: the lowest", &RateLimit{Requests: 1, Per: "hour"}, &Quota{Requests: 1, Per: "hour"},
			Limits{Rate: 1.0 / 3600, Burst: 1, RateRequests: 1, RateWindow: time.Hour, Quota: 1, QuotaWindow: time.Hour}},
		{"the highest requests, burst and quota", &RateLimit{Requests: MaxLimitRequests, Per: "day", Burst: MaxLimitRequests},
			&Quota{Requests: MaxLimitRequests, Per: "minute"},
			Limits{Rate: MaxLimitRequests / 86400.0, Burst: MaxLimitRequests, RateRequests: MaxLimitRequests, RateWindow: 24 * time.Hour,
				Quota: MaxLimitRequests, QuotaWindow: time.Minute}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			r.RateLimit, r.Quota = tt.rl, tt.q
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := r.Compiled().Limits(); got == nil || *got != tt.want {
				t.Errorf("Limits = %+v, want %+v", got, tt.want)
			}
		})
	}
	if r := base(); r.Validate() != nil || r.Compiled().Limits() != nil {
		t.Errorf("a record without limits has limits")
	}
	bad := []struct {
		name, field string
		rl          *RateLimit
		q           *Quota
	}{
		{"unknown unit", "rate_limit.per", &RateLimit{Requests: 5, Per: "fortnight"}, nil},
		{"zero requests", "rate_limit.requests", &RateLimit{Requests: 0, Per: "second"}, nil},
		{"negative burst", "rate_limit.burst", &RateLimit{Requests: 5, Per: "second", Burst: -1}, nil},
		{"huge", "rate_limit.requests", &RateLimit{Requests: MaxLimitRequests + 1, Per: "day"}, nil},
		{"huge burst", "rate_limit.burst", &RateLimit{Requests: 5, Per: "second", Burst: MaxLimitRequests + 1}, nil},
		{"zero quota", "quota.requests", nil, &Quota{Requests: 0, Per: "day"}},
		{"huge quota", "quota.requests", nil, &Quota{Requests: MaxLimitRequests + 1, Per: "day"}},
		{"unknown quota unit", "quota.per", nil, &Quota{Requests: 5, Per: "week"}},
		{"quota per second", "quota.per", nil, &Quota{Requests: 5, Per: "second"}},
		{"negative quota", "quota.requests", nil, &Quota{Requests: -5, Per: "day"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			r.RateLimit, r.Quota = tt.rl, tt.q
			if err := r.Validate(); err == nil || !strings.Contains(err.Error(), `"`+tt.field+`"`) {
				t.Errorf("error %v, want one naming %s", err, tt.field)
			}
		})
	}
	if _, err := ParseRecord([]byte(`{"hash":"sha256:` + hex64 + `","tenant":"a","status":"active","rate_limit":{"requests":"5","per":"second"}}`)); err == nil {
		t.Error("string requests accepted")
	}
	if _, err := ParseRecord([]byte(`{"hash":"sha256:` + hex64 + `","tenant":"a","status":"active","quota":{"requests":5,"per":"day","window":1}}`)); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("unknown quota field: %v", err)
	}
}

// TestGlobalLimits: global_rate_limit and global_quota take the shapes
// of rate_limit and quota, compile apart from them, and refuse a burst
// (the rate limit service has none), naming the field.
func TestGlobalLimits(t *testing.T) {
	base := func() *Record { return &Record{Hash: "sha256:" + hex64, Tenant: "acme", Status: StatusActive} }
	r := base()
	r.RateLimit = &RateLimit{Requests: 5, Per: "second", Burst: 2}
	r.GlobalRateLimit = &RateLimit{Requests: 100, Per: "minute"}
	r.GlobalQuota = &Quota{Requests: 10000, Per: "day"}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Limits{Rate: 100.0 / 60, Burst: 100, RateRequests: 100, RateWindow: time.Minute, Quota: 10000, QuotaWindow: 24 * time.Hour}
	if got := r.Compiled().GlobalLimits(); got == nil || *got != want {
		t.Errorf("GlobalLimits = %+v, want %+v", got, want)
	}
	if got := r.Compiled().Limits(); got == nil || got.RateRequests != 5 || got.Burst != 2 || got.Quota != 0 {
		t.Errorf("Limits = %+v, want the local 5/s burst 2 only", got)
	}
	r = base()
	r.GlobalQuota = &Quota{Requests: 3, Per: "hour"}
	if err := r.Validate(); err != nil || r.Compiled().Limits() != nil || r.Compiled().GlobalLimits() == nil {
		t.Errorf("global quota only: %v, local %+v, global %+v", err, r.Compiled().Limits(), r.Compiled().GlobalLimits())
	}
	if r := base(); r.Validate() != nil || r.Compiled().GlobalLimits() != nil {
		t.Errorf("a record without global limits has some")
	}
	for _, tt := range []struct {
		name, field, want string
		rl                *RateLimit
		q                 *Quota
	}{
		{"burst", "global_rate_limit.burst", "no burst", &RateLimit{Requests: 5, Per: "second", Burst: 5}, nil},
		{"negative burst", "global_rate_limit.burst", "no burst", &RateLimit{Requests: 5, Per: "second", Burst: -1}, nil},
		{"unknown unit", "global_rate_limit.per", "fortnight", &RateLimit{Requests: 5, Per: "fortnight"}, nil},
		{"zero requests", "global_rate_limit.requests", "want 1", &RateLimit{Requests: 0, Per: "second"}, nil},
		{"huge", "global_rate_limit.requests", "want 1", &RateLimit{Requests: MaxLimitRequests + 1, Per: "day"}, nil},
		{"quota per second", "global_quota.per", "minute, hour or day", nil, &Quota{Requests: 5, Per: "second"}},
		{"negative quota", "global_quota.requests", "want 1", nil, &Quota{Requests: -5, Per: "day"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			r.GlobalRateLimit, r.GlobalQuota = tt.rl, tt.q
			err := r.Validate()
			if err == nil || !strings.Contains(err.Error(), `"`+tt.field+`"`) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %s and saying %q", err, tt.field, tt.want)
			}
			if r.Compiled() != nil {
				t.Error("a record that failed validation compiled")
			}
		})
	}
	rec, err := ParseRecord([]byte(`{"hash":"sha256:` + hex64 + `","tenant":"a","status":"active",` +
		`"global_rate_limit":{"requests":100,"per":"minute"},"global_quota":{"requests":10000,"per":"day"}}`))
	if err != nil || rec.GlobalRateLimit.Requests != 100 || rec.GlobalQuota.Per != "day" {
		t.Errorf("ParseRecord: %+v, %v", rec, err)
	}
	if _, err := ParseRecord([]byte(`{"hash":"sha256:` + hex64 + `","tenant":"a","status":"active","global_quota":{"requests":5,"per":"day","burst":1}}`)); err == nil || !strings.Contains(err.Error(), "burst") {
		t.Errorf("a burst in global_quota: %v", err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]struct {
		n   int
		per string
	}{"5/s": {5, "second"}, "100/second": {100, "second"}, "6000/min": {6000, "minute"}, "1/h": {1, "hour"}, "10000/day": {10000, "day"}} {
		n, per, err := ParseRate(in)
		if err != nil || n != want.n || per != want.per {
			t.Errorf("ParseRate(%q) = %d %q %v", in, n, per, err)
		}
	}
	for _, in := range []string{"", "5", "5/", "/s", "0/s", "-1/s", "5/week", "five/s", "5/S"} {
		if _, _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
	if LimitUnit(time.Minute) != "MINUTE" || LimitUnit(3*time.Second) != "UNKNOWN" {
		t.Error("LimitUnit")
	}
}
