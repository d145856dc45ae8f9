package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAudit(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	in := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name  string
		mod   func(*Record)
		codes []string
	}{
		{"clean", func(r *Record) { r.ExpiresAt = in(90 * 24 * time.Hour) }, nil},
		{"no expiry", func(r *Record) { r.ExpiresAt = "" }, []string{"no_expiry"}},
		{"expired but active", func(r *Record) { r.ExpiresAt = in(-time.Hour) }, []string{"expired_active"}},
		{"long lived", func(r *Record) { r.ExpiresAt = in(400 * 24 * time.Hour) }, []string{"long_lived"}},
		{"wide cidrs", func(r *Record) {
			r.ExpiresAt = in(time.Hour)
			r.AllowedCIDRs = []string{"0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "2001:db8:1::/48"}
		}, []string{"wide_cidr", "wide_cidr", "wide_cidr"}},
		{"many and wildcard scopes", func(r *Record) {
			r.ExpiresAt = in(time.Hour)
			r.Scopes = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "orders:*"}
		}, []string{"many_scopes", "wildcard_scope"}},
		{"imported", func(r *Record) { r.ExpiresAt = in(time.Hour); r.Imported = true }, []string{"imported"}},
		{"revoked: nothing to report", func(r *Record) { r.Status = StatusRevoked; r.ExpiresAt = "" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Hash: "sha256:" + hex64, Tenant: "acme", Status: StatusActive}
			tt.mod(r)
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range Audit(r, now, AuditOptions{}) {
				got = append(got, f.Code)
			}
			if !slices.Equal(got, tt.codes) {
				t.Errorf("codes %v, want %v", got, tt.codes)
			}
		})
	}
	if f := Audit(&Record{Status: StatusActive}, now, AuditOptions{}); f != nil {
		t.Errorf("unvalidated record: %v, want nothing", f)
	}
}

func TestAuditUnused(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ago := func(days int) time.Time { return now.Add(-time.Duration(days) * 24 * time.Hour) }
	const window = 90 * 24 * time.Hour
	tests := []struct {
		name     string
		created  string
		status   string
		lastUsed time.Time
		want     string // finding detail prefix; "" for none
	}{
		{"used recently", ago(400).Format(time.RFC3339), StatusActive, ago(3), ""},
		{"used long ago", ago(400).Format(time.RFC3339), StatusActive, ago(120), "last used 2026-08-01T12:00:00Z"},
		{"used exactly at the window", ago(400).Format(time.RFC3339), StatusActive, ago(90), ""},
		{"never used, new", ago(10).Format(time.RFC3339), StatusActive, time.Time{}, ""},
		{"never used, old", ago(100).Format(time.RFC3339), StatusActive, time.Time{}, "never used since it was created 2026-08-21T12:00:00Z"},
		{"never used, age unknown", "", StatusActive, time.Time{}, "never used, and its age is unknown"},
		{"revoked", ago(400).Format(time.RFC3339), StatusRevoked, time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Hash: "sha256:" + hex64, Tenant: "acme", Status: tt.status, CreatedAt: tt.created}
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			f := AuditUnused(r, tt.lastUsed, now, window)
			switch {
			case tt.want == "" && f != nil:
				t.Errorf("finding %+v, want none", f)
			case tt.want != "" && (f == nil || f.Code != "unused" || !strings.HasPrefix(f.Detail, tt.want)):
				t.Errorf("finding %+v, want unused %q", f, tt.want)
			}
			if f := AuditUnused(r, tt.lastUsed, now, 0); f != nil {
				t.Errorf("window 0 (off): %+v", f)
			}
		})
	}
}

// TestAuditThresholds: each threshold is exclusive (a key exactly at it has
// no finding, one past it has), zero options take the documented defaults,
// and set options replace them.
func TestAuditThresholds(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	n := func(k int) []string {
		s := make([]string, k)
		for i := range s {
			s[i] = fmt.Sprint("s", i)
		}
		return s
	}
	tests := []struct {
		name      string
		opts      AuditOptions
		expiresIn time.Duration
		scopes    []string
		codes     []string
	}{
		{"default: 10 scopes", AuditOptions{}, time.Hour, n(10), nil},
		{"default: 11 scopes", AuditOptions{}, time.Hour, n(11), []string{"many_scopes"}},
		{"max 2: 2 scopes", AuditOptions{MaxScopes: 2}, time.Hour, n(2), nil},
		{"max 2: 3 scopes", AuditOptions{MaxScopes: 2}, time.Hour, n(3), []string{"many_scopes"}},
		{"negative max scopes is the default", AuditOptions{MaxScopes: -1}, time.Hour, n(10), nil},
		{"default: expires in exactly 365 days", AuditOptions{}, year, nil, nil},
		{"default: expires a second after 365 days", AuditOptions{}, year + time.Second, nil, []string{"long_lived"}},
		{"max 1h: expires in 1h", AuditOptions{MaxLifetime: time.Hour}, time.Hour, nil, nil},
		{"max 1h: expires in 1h1s", AuditOptions{MaxLifetime: time.Hour}, time.Hour + time.Second, nil, []string{"long_lived"}},
		{"expires exactly now", AuditOptions{}, 0, nil, []string{"expired_active"}},
		{"expires a second from now", AuditOptions{}, time.Second, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Hash: "sha256:" + hex64, Tenant: "acme", Status: StatusActive,
				ExpiresAt: now.Add(tt.expiresIn).Format(time.RFC3339), Scopes: tt.scopes}
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range Audit(r, now, tt.opts) {
				got = append(got, f.Code)
			}
			if !slices.Equal(got, tt.codes) {
				t.Errorf("codes %v, want %v", got, tt.codes)
			}
		})
	}
}
