package keyadmin_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
)

func TestListFilter(t *testing.T) {
	f := newFixture(t)
	u := &usage{Store: f.store, uses: map[string]time.Time{}, broken: map[string]bool{}}
	svc := f.service(t, keyadmin.Config{}, u)
	issue := func(fields keyadmin.Fields) string {
		t.Helper()
		k, err := svc.Issue(context.Background(), fields)
		if err != nil {
			t.Fatal(err)
		}
		return k.ID
	}
	f.clock.Set(t0.Add(-200 * day))
	old := issue(keyadmin.Fields{Tenant: ptr("globex")})
	f.clock.Set(t0)
	soon := issue(keyadmin.Fields{Tenant: ptr("acme"), ExpiresIn: 3 * day})
	later := issue(keyadmin.Fields{Tenant: ptr("acme"), ExpiresIn: 90 * day})
	expired := issue(keyadmin.Fields{Tenant: ptr("acme"), ExpiresIn: time.Hour})
	revoked := issue(keyadmin.Fields{Tenant: ptr("globex"), ExpiresIn: day})
	if _, err := svc.Revoke(context.Background(), revoked, ""); err != nil {
		t.Fatal(err)
	}
	unreadable := invalidRecord(t, f)
	u.uses[soon] = t0
	f.clock.Set(t0.Add(2 * time.Hour))

	tests := []struct {
		name   string
		filter keyadmin.Filter
		want   []string
	}{
		{"all", keyadmin.Filter{}, []string{old, soon, later, expired, revoked, unreadable}},
		{"tenant", keyadmin.Filter{Tenant: "acme"}, []string{soon, later, expired, unreadable}},
		{"revoked", keyadmin.Filter{Status: keyadmin.Revoked}, []string{revoked, unreadable}},
		{"expired", keyadmin.Filter{Status: keyadmin.Expired}, []string{expired, unreadable}},
		{"active globex", keyadmin.Filter{Status: keyadmin.Active, Tenant: "globex"}, []string{old, unreadable}},
		{"expiring within 7d: active only", keyadmin.Filter{ExpiringWithin: 7 * day}, []string{soon, unreadable}},
		{"no expiry", keyadmin.Filter{NoExpiry: true}, []string{old, unreadable}},
		{"unused for 90d", keyadmin.Filter{UnusedFor: 90 * day}, []string{old, unreadable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := svc.List(context.Background(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.ID)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	bad := []struct {
		name   string
		svc    *keyadmin.Service
		filter keyadmin.Filter
		kind   error
	}{
		{"unknown status", svc, keyadmin.Filter{Status: "gone"}, keyadmin.ErrInvalidInput},
		{"no expiry and expiring", svc, keyadmin.Filter{NoExpiry: true, ExpiringWithin: day}, keyadmin.ErrInvalidInput},
		{"unused without the capability", f.svc, keyadmin.Filter{UnusedFor: day}, keyadmin.ErrUnsupported},
	}
	for _, b := range bad {
		if keys, err := b.svc.List(context.Background(), b.filter); keys != nil || !errors.Is(err, b.kind) {
			t.Errorf("%s: %v, %v; want %v", b.name, keys, err, b.kind)
		}
	}
}

func TestGet(t *testing.T) {
	f := newFixture(t)
	k := f.issue(t, keyadmin.Fields{Tenant: ptr("acme")})
	tests := []struct {
		id   string
		kind error
	}{
		{k.ID, nil},
		{"AAAAAAAAAAAA", keyadmin.ErrNotFound},
		{k.RawKey, keyadmin.ErrInvalidID},
		{invalidRecord(t, f), keyadmin.ErrInvalidRecord},
	}
	for _, tt := range tests {
		got, err := f.svc.Get(context.Background(), tt.id)
		switch {
		case tt.kind == nil && (err != nil || got.Record.Tenant != "acme" || !got.LastUsed.IsZero()):
			t.Errorf("Get = %+v, %v", got, err)
		case tt.kind != nil && (got != nil || !errors.Is(err, tt.kind)):
			t.Errorf("Get: %+v, %v; want %v", got, err, tt.kind)
		}
		if err != nil && contains(err, k.RawKey) {
			t.Error("the error quotes the raw key")
		}
	}
}

func TestParseLifetime(t *testing.T) {
	good := map[string]time.Duration{"90d": 90 * day, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour, "0d30m": 30 * time.Minute, "1s": time.Second}
	for in, want := range good {
		if got, err := keyadmin.ParseLifetime(in); err != nil || got != want {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0d", "-1h", "soon", "d", "1x", "1d-2d", "-1d"} {
		if got, err := keyadmin.ParseLifetime(in); err == nil {
			t.Errorf("ParseLifetime(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, s := range []string{"active", "revoked", "expired"} {
		if got, err := keyadmin.ParseStatus(s); err != nil || string(got) != s {
			t.Errorf("ParseStatus(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Active", "gone"} {
		if _, err := keyadmin.ParseStatus(s); !errors.Is(err, keyadmin.ErrInvalidInput) {
			t.Errorf("ParseStatus(%q): %v, want ErrInvalidInput", s, err)
		}
	}
}
