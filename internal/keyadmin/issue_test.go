package keyadmin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

func TestIssue(t *testing.T) {
	f := newFixture(t)
	k := f.issue(t, keyadmin.Fields{Tenant: ptr("acme"), Name: ptr("orders"), Scopes: &[]string{"a"},
		SetHeaders: map[string]string{"x-plan": "gold"}, ExpiresIn: 90 * day, RateLimit: &policy.RateLimit{Requests: 5, Per: "second"}})
	r := k.Record
	if r.Status != policy.StatusActive || r.Tenant != "acme" || r.Name != "orders" || r.Headers["x-plan"] != "gold" ||
		r.ExpiresAt != t0.Add(90*day).Format(time.RFC3339) || r.CreatedAt != t0.Format(time.RFC3339) || r.UpdatedAt != r.CreatedAt ||
		r.RateLimit.Requests != 5 || !strings.HasPrefix(r.Hash, "sha256:") {
		t.Errorf("issued record %+v", r)
	}
	stored, _, err := f.store.Get(context.Background(), k.ID)
	if err != nil || stored.Hash != r.Hash {
		t.Fatalf("stored: %+v, %v", stored, err)
	}
	h, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	if ok, _ := h.Verify(k.RawKey, stored.Digest()); !ok {
		t.Error("the stored hash does not verify the raw key")
	}
}

// Every problem at once, before a key exists; nothing is written.
func TestIssueRejects(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		fields keyadmin.Fields
		want   []string
	}{
		{"no tenant", keyadmin.Fields{}, []string{`"tenant": required`}},
		{"bad fields together", keyadmin.Fields{Tenant: ptr("a"), AllowedCIDRs: &[]string{"10.0.0.0/33"}, SetHeaders: map[string]string{"host": "x"}},
			[]string{"allowed_cidrs[0]", "headers"}},
		{"expiry in the past", keyadmin.Fields{Tenant: ptr("a"), ExpiresAt: ptr(t0.Add(-time.Second))},
			[]string{"is not in the future: the key could never be used"}},
		{"expiry now", keyadmin.Fields{Tenant: ptr("a"), ExpiresAt: ptr(t0)}, []string{"is not in the future"}},
		{"burst without a limit, and no tenant", keyadmin.Fields{RateBurst: ptr(3)}, []string{keyadmin.ErrNoRateLimit.Error(), `"tenant": required`}},
		{"two expiries", keyadmin.Fields{Tenant: ptr("a"), ExpiresAt: ptr(t0.Add(day)), ExpiresIn: day}, []string{"expiry:"}},
	}
	for _, tt := range tests {
		errCheck := f.svc.CheckIssue(tt.fields)
		k, err := f.svc.Issue(context.Background(), tt.fields)
		if k != nil || err == nil || !errors.Is(err, keyadmin.ErrInvalidInput) || errCheck == nil || errCheck.Error() != err.Error() {
			t.Errorf("%s: Issue = %v, %v; CheckIssue %v; want the same ErrInvalidInput", tt.name, k, err, errCheck)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q: %v", tt.name, w, err)
			}
		}
	}
	if ids, _ := f.store.List(context.Background()); len(ids) != 0 {
		t.Errorf("refused issues wrote %v", ids)
	}
}

func TestIssueHMAC(t *testing.T) {
	f := newFixture(t)
	svc := f.service(t, keyadmin.Config{Hash: policy.AlgHMACSHA256}, f.store)
	var field *keyadmin.FieldError
	if _, err := svc.Issue(context.Background(), keyadmin.Fields{Tenant: ptr("a")}); !errors.As(err, &field) || field.Field != keyadmin.FieldHash {
		t.Fatalf("without a pepper: %v, want a hash FieldError", err)
	}
	pepper := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	data, _ := os.ReadFile(f.path)
	if err := os.WriteFile(f.path, append(data, []byte("pepper: {current: 3, versions: {\"3\": \""+pepper+"\"}}\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := svc.Issue(context.Background(), keyadmin.Fields{Tenant: ptr("a")})
	if err != nil || !strings.HasPrefix(k.Record.Hash, "hmac-sha256:v3:") {
		t.Fatalf("with pepper 3: %v, %v", k, err)
	}
	if _, err := keyadmin.New(keyadmin.Config{Hash: "md5"}, f.store); !errors.Is(err, keyadmin.ErrInvalidInput) {
		t.Errorf("New with hash md5: %v", err)
	}
}

// The raw key is in Issued.RawKey and nowhere else: not in fmt or slog
// output of the result.
func TestIssuedHidesRawKey(t *testing.T) {
	f := newFixture(t)
	k := f.issue(t, keyadmin.Fields{Tenant: ptr("acme")})
	r, err := f.svc.Rotate(context.Background(), k.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("issued", "key", k, "ptr", *k, "rotated", r)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", *k, k, k, k), fmt.Sprintf("%v %+v %#v", r, *r, r), logged.String()} {
		for _, raw := range []string{k.RawKey, r.RawKey} {
			if strings.Contains(s, raw) {
				t.Errorf("raw key printed: %s", policy.Redact(s))
			}
		}
	}
	if !strings.Contains(fmt.Sprint(k), k.ID) || !strings.Contains(logged.String(), k.ID) {
		t.Errorf("the id is missing: %s / %s", k, logged.String())
	}
}

func TestModify(t *testing.T) {
	tests := []struct {
		name   string
		start  keyadmin.Fields
		change keyadmin.Fields
		check  func(r *policy.Record) bool
		kind   error // nil: written
	}{
		{"scopes replaced", keyadmin.Fields{Scopes: &[]string{"a", "b"}}, keyadmin.Fields{Scopes: &[]string{"c"}},
			func(r *policy.Record) bool { return len(r.Scopes) == 1 && r.Scopes[0] == "c" }, nil},
		{"scopes cleared", keyadmin.Fields{Scopes: &[]string{"a"}}, keyadmin.Fields{Scopes: &[]string{}},
			func(r *policy.Record) bool { return r.Scopes == nil }, nil},
		{"headers merged and removed", keyadmin.Fields{SetHeaders: map[string]string{"x-a": "1", "x-b": "2"}},
			keyadmin.Fields{SetHeaders: map[string]string{"x-c": "3"}, RemoveHeaders: []string{"x-a"}},
			func(r *policy.Record) bool {
				return len(r.Headers) == 2 && r.Headers["x-b"] == "2" && r.Headers["x-c"] == "3"
			}, nil},
		{"last header removed", keyadmin.Fields{SetHeaders: map[string]string{"x-a": "1"}}, keyadmin.Fields{RemoveHeaders: []string{"x-a"}},
			func(r *policy.Record) bool { return r.Headers == nil }, nil},
		{"no expiry", keyadmin.Fields{ExpiresIn: day}, keyadmin.Fields{ExpiresAt: &time.Time{}},
			func(r *policy.Record) bool { return r.ExpiresAt == "" }, nil},
		{"burst of the limit", keyadmin.Fields{RateLimit: &policy.RateLimit{Requests: 5, Per: "second"}}, keyadmin.Fields{RateBurst: ptr(9)},
			func(r *policy.Record) bool { return r.RateLimit.Requests == 5 && r.RateLimit.Burst == 9 }, nil},
		{"limit removed", keyadmin.Fields{RateLimit: &policy.RateLimit{Requests: 5, Per: "second"}, Quota: &policy.Quota{Requests: 9, Per: "day"}},
			keyadmin.Fields{RemoveRateLimit: true, RemoveQuota: true}, func(r *policy.Record) bool { return r.RateLimit == nil && r.Quota == nil }, nil},
		{"global limits set beside the local ones", keyadmin.Fields{RateLimit: &policy.RateLimit{Requests: 5, Per: "second"}},
			keyadmin.Fields{GlobalRateLimit: &policy.RateLimit{Requests: 100, Per: "minute"}, GlobalQuota: &policy.Quota{Requests: 10000, Per: "day"}},
			func(r *policy.Record) bool {
				return r.RateLimit.Requests == 5 && r.GlobalRateLimit.Requests == 100 && r.GlobalRateLimit.Per == "minute" &&
					r.GlobalQuota.Requests == 10000 && r.Compiled().GlobalLimits() != nil
			}, nil},
		{"global limits removed, local kept", keyadmin.Fields{Quota: &policy.Quota{Requests: 9, Per: "day"},
			GlobalRateLimit: &policy.RateLimit{Requests: 100, Per: "minute"}, GlobalQuota: &policy.Quota{Requests: 10000, Per: "day"}},
			keyadmin.Fields{RemoveGlobalRateLimit: true, RemoveGlobalQuota: true},
			func(r *policy.Record) bool {
				return r.GlobalRateLimit == nil && r.GlobalQuota == nil && r.Quota.Requests == 9
			}, nil},
		{"global rate limit with a burst", keyadmin.Fields{}, keyadmin.Fields{GlobalRateLimit: &policy.RateLimit{Requests: 5, Per: "second", Burst: 9}},
			nil, keyadmin.ErrInvalidInput},
		{"global contradiction", keyadmin.Fields{}, keyadmin.Fields{RemoveGlobalQuota: true, GlobalQuota: &policy.Quota{Requests: 1, Per: "day"}},
			nil, keyadmin.ErrInvalidInput},
		{"burst without a limit", keyadmin.Fields{}, keyadmin.Fields{RateBurst: ptr(9)}, nil, keyadmin.ErrNoRateLimit},
		{"invalid result", keyadmin.Fields{}, keyadmin.Fields{Tenant: ptr("")}, nil, keyadmin.ErrInvalidInput},
		{"contradiction", keyadmin.Fields{}, keyadmin.Fields{RemoveQuota: true, Quota: &policy.Quota{Requests: 1, Per: "day"}}, nil, keyadmin.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.start.Tenant = ptr("acme")
			k := f.issue(t, tt.start)
			f.clock.Set(t0.Add(time.Hour))
			ch, err := f.svc.Modify(context.Background(), k.ID, tt.change)
			stored, v, _ := f.store.Get(context.Background(), k.ID)
			if tt.kind != nil {
				if ch != nil || !errors.Is(err, tt.kind) || v != 1 {
					t.Errorf("Modify = %+v, %v (stored version %d); want %v and nothing written", ch, err, v, tt.kind)
				}
				return
			}
			if err != nil || !tt.check(ch.Record) || !tt.check(stored) || stored.UpdatedAt != t0.Add(time.Hour).Format(time.RFC3339) ||
				stored.CreatedAt != t0.Format(time.RFC3339) || v != 2 {
				t.Errorf("Modify = %+v, %v; stored %+v at version %d", ch, err, stored, v)
			}
		})
	}
}

// A pasted key in any text field is refused, naming the field, never the
// key, and nothing is written: keys are never stored in clear.
func TestKeyShapedFieldsRefused(t *testing.T) {
	f := newFixture(t)
	other := f.issue(t, keyadmin.Fields{Tenant: ptr("acme")})
	raw := other.RawKey
	tests := []struct {
		field  string
		fields keyadmin.Fields
	}{
		{"name", keyadmin.Fields{Name: ptr("key " + raw)}},
		{"tenant", keyadmin.Fields{Tenant: ptr(raw)}},
		{"owner", keyadmin.Fields{Owner: ptr(raw)}},
		{"scopes", keyadmin.Fields{Scopes: &[]string{"a", raw}}},
		{"allowed_hosts", keyadmin.Fields{AllowedHosts: &[]string{raw}}},
		{"allowed_referrers", keyadmin.Fields{AllowedReferrers: &[]string{raw}}},
		{"allowed_cidrs", keyadmin.Fields{AllowedCIDRs: &[]string{raw}}},
		{"headers", keyadmin.Fields{SetHeaders: map[string]string{"x-plan": raw}}},
		{"metadata", keyadmin.Fields{SetMetadata: map[string]string{raw: "x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			fields := tc.fields
			if fields.Tenant == nil {
				fields.Tenant = ptr("acme")
			}
			before := f.count(t)
			_, err := f.svc.Issue(context.Background(), fields)
			if !errors.Is(err, keyadmin.ErrInvalidInput) || !strings.Contains(err.Error(), tc.field) || strings.Contains(err.Error(), raw) {
				t.Errorf("Issue: %v, want ErrInvalidInput naming %s without the key", policy.Redact(fmt.Sprint(err)), tc.field)
			}
			if _, err := f.svc.Modify(context.Background(), other.ID, tc.fields); !errors.Is(err, keyadmin.ErrInvalidInput) {
				t.Errorf("Modify: %v, want ErrInvalidInput", policy.Redact(fmt.Sprint(err)))
			}
			if f.count(t) != before {
				t.Error("a key was written")
			}
		})
	}
	if _, err := f.svc.Revoke(context.Background(), other.ID, "leaked: "+raw); !errors.Is(err, keyadmin.ErrInvalidInput) ||
		!strings.Contains(err.Error(), "revoked_reason") {
		t.Errorf("Revoke with a key in the reason: %v", policy.Redact(fmt.Sprint(err)))
	}
	if k, _ := f.svc.Get(context.Background(), other.ID); k.Record.Status != policy.StatusActive {
		t.Error("the refused revoke changed the key")
	}
}
