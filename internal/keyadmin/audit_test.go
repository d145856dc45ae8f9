package keyadmin_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// usage adds key use to the file store, which keeps none: uses holds when
// each key was last used, broken the keys whose use cannot be read (a
// fault: a junk usage entry).
type usage struct {
	keyadmin.Store
	uses   map[string]time.Time
	broken map[string]bool
}

func (u usage) LastUsed(_ context.Context, id string) (time.Time, bool, error) {
	if u.broken[id] {
		return time.Time{}, false, errors.New("usage entry does not parse")
	}
	at, ok := u.uses[id]
	return at, ok, nil
}

func TestAuditFindings(t *testing.T) {
	tests := []struct {
		name   string
		fields keyadmin.Fields
		setup  func(t *testing.T, f *fixture, id string, u *usage)
		opts   keyadmin.AuditOptions
		want   []string // finding codes, in order; nil: not reported
	}{
		{"clean", keyadmin.Fields{ExpiresIn: 30 * day, AllowedCIDRs: &[]string{"10.1.2.0/24"}}, nil, keyadmin.AuditOptions{}, nil},
		{"no expiry", keyadmin.Fields{}, nil, keyadmin.AuditOptions{}, []string{"no_expiry"}},
		{"long lived", keyadmin.Fields{ExpiresIn: 400 * day}, nil, keyadmin.AuditOptions{}, []string{"long_lived"}},
		{"long lived, own threshold", keyadmin.Fields{ExpiresIn: 30 * day}, nil,
			keyadmin.AuditOptions{AuditOptions: policy.AuditOptions{MaxLifetime: 7 * day}}, []string{"long_lived"}},
		{"expired, not revoked", keyadmin.Fields{ExpiresIn: time.Hour}, func(_ *testing.T, f *fixture, _ string, _ *usage) {
			f.clock.Set(t0.Add(2 * time.Hour))
		}, keyadmin.AuditOptions{}, []string{"expired_active"}},
		{"wide CIDR, wildcard scope", keyadmin.Fields{ExpiresIn: day, AllowedCIDRs: &[]string{"0.0.0.0/0", "2001:db8::/32"}, Scopes: &[]string{"orders:*"}},
			nil, keyadmin.AuditOptions{}, []string{"wide_cidr", "wide_cidr", "wildcard_scope"}},
		{"many scopes", keyadmin.Fields{ExpiresIn: day, Scopes: &[]string{"a", "b", "c"}}, nil,
			keyadmin.AuditOptions{AuditOptions: policy.AuditOptions{MaxScopes: 2}}, []string{"many_scopes"}},
		{"revoked: nothing", keyadmin.Fields{}, func(t *testing.T, f *fixture, id string, _ *usage) {
			if _, err := f.svc.Revoke(context.Background(), id, ""); err != nil {
				t.Fatal(err)
			}
		}, keyadmin.AuditOptions{}, nil},
		{"never used, old", keyadmin.Fields{ExpiresIn: 300 * day}, func(_ *testing.T, f *fixture, _ string, _ *usage) {
			f.clock.Set(t0.Add(100 * day))
		}, keyadmin.AuditOptions{UnusedFor: 90 * day}, []string{"unused"}},
		{"never used, young", keyadmin.Fields{ExpiresIn: 300 * day}, nil, keyadmin.AuditOptions{UnusedFor: 90 * day}, nil},
		{"used lately", keyadmin.Fields{ExpiresIn: 300 * day}, func(_ *testing.T, f *fixture, id string, u *usage) {
			f.clock.Set(t0.Add(100 * day))
			u.uses[id] = t0.Add(99 * day)
		}, keyadmin.AuditOptions{UnusedFor: 90 * day}, nil},
		{"used long ago", keyadmin.Fields{ExpiresIn: 300 * day}, func(_ *testing.T, f *fixture, id string, u *usage) {
			f.clock.Set(t0.Add(100 * day))
			u.uses[id] = t0.Add(day)
		}, keyadmin.AuditOptions{UnusedFor: 90 * day}, []string{"unused"}},
		{"unused off", keyadmin.Fields{ExpiresIn: 300 * day}, func(_ *testing.T, f *fixture, _ string, _ *usage) {
			f.clock.Set(t0.Add(100 * day))
		}, keyadmin.AuditOptions{}, nil},
		{"use unreadable", keyadmin.Fields{}, func(_ *testing.T, _ *fixture, id string, u *usage) {
			u.broken[id] = true
		}, keyadmin.AuditOptions{UnusedFor: 90 * day}, []string{"no_expiry", keyadmin.FindingUsageUnreadable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			u := &usage{Store: f.store, uses: map[string]time.Time{}, broken: map[string]bool{}}
			svc := f.service(t, keyadmin.Config{}, u)
			tt.fields.Tenant = ptr("acme")
			k, err := svc.Issue(context.Background(), tt.fields)
			if err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, f, k.ID, u)
			}
			report, err := svc.Audit(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range report {
				if a.ID != k.ID || a.Tenant != "acme" {
					t.Errorf("reported %+v", a)
				}
				for _, fd := range a.Findings {
					got = append(got, fd.Code)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings %v, want %v (report %+v)", got, tt.want, report)
			}
		})
	}
}

// Without the usage capability there are no unused findings; an
// unreadable record is a finding of its own.
func TestAuditWithoutUsageAndUnreadable(t *testing.T) {
	f := newFixture(t)
	f.clock.Set(t0.Add(-200 * day))
	idle := f.issue(t, keyadmin.Fields{Tenant: ptr("acme"), ExpiresIn: 300 * day})
	f.clock.Set(t0)
	bad := invalidRecord(t, f)
	report, err := f.svc.Audit(context.Background(), keyadmin.AuditOptions{UnusedFor: 90 * day})
	if err != nil || len(report) != 1 || report[0].ID != bad || report[0].Findings[0].Code != keyadmin.FindingUnreadable {
		t.Errorf("Audit = %+v, %v; want only %s unreadable (and no unused finding for %s)", report, err, bad, idle.ID)
	}
}
