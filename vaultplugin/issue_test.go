package vaultplugin

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/policy"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func containsKey(s string) bool { return policy.Redact(s) != s }

// stored reads a key's record as keygate would.
func (h *harness) stored(id string) (*policy.Record, int, string) {
	h.t.Helper()
	data := h.read("keys/" + id).Data
	rec, err := policy.ParseRecord(mustJSON(h.t, data["record"]))
	if err != nil {
		h.t.Fatalf("key %s: stored record does not parse: %v", id, err)
	}
	return rec, data["version"].(int), data["role"].(string)
}

func TestIssueDefaults(t *testing.T) {
	h := newHarness(t)
	h.write("roles/team-a", teamRole)
	resp := h.issue("team-a", map[string]any{"name": "checkout", "owner": "team-a@acme.test"})
	id, rawKey := resp.Data["id"].(string), resp.Data["key"].(string)
	if got, err := h.b.format.Parse(rawKey); err != nil || got != id {
		t.Fatalf("key does not parse to its id: %v", err)
	}
	want := h.now.Add(time.Hour).Format(time.RFC3339)
	if resp.Data["tenant"] != "acme" || resp.Data["expires_at"] != want ||
		!slices.Equal(resp.Data["scopes"].([]string), []string{"orders:read", "orders:write"}) {
		t.Fatalf("response data %v", resp.Data)
	}
	if len(resp.Data) != 5 {
		t.Fatalf("response data has %d fields, want id, key, tenant, scopes, expires_at", len(resp.Data))
	}
	s := resp.Secret
	if s == nil || s.TTL != time.Hour || s.MaxTTL != 4*time.Hour || !s.Renewable || s.InternalData["id"] != id || s.InternalData["secret_type"] != SecretType {
		t.Fatalf("secret %#v", s)
	}
	rec, version, role := h.stored(id)
	if version != 1 || role != "team-a" || rec.ExpiresAt != want || rec.Name != "checkout" || rec.Owner != "team-a@acme.test" ||
		rec.RateLimit == nil || rec.RateLimit.Requests != 100 || rec.Quota == nil || rec.Quota.Per != "day" ||
		rec.Headers["x-team"] != "a" || rec.Metadata["cost-center"] != "42" ||
		!slices.Equal(rec.AllowedHosts, []string{"api.acme.test", "admin.acme.test"}) {
		t.Fatalf("stored record %+v (version %d, role %q)", rec, version, role)
	}
	ok, err := mustHasher(t).Verify(rawKey, rec.Digest())
	if err != nil || !ok || rec.Digest().Alg != policy.AlgSHA256 {
		t.Fatalf("stored hash does not verify the key (%v)", err)
	}
	// Issue is not journaled: a new random id is in no replica's cache.
	if _, latest, _ := h.journal(-1); latest != 0 {
		t.Fatalf("issue journaled (latest %d)", latest)
	}
}

func mustHasher(t *testing.T) *policy.Hasher {
	hs, err := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func TestIssueWithinRole(t *testing.T) {
	h := newHarness(t)
	h.write("roles/team-a", teamRole)
	resp := h.issue("team-a", map[string]any{
		"scopes": "orders:read", "allowed_hosts": "api.acme.test", "rate_limit": "10/second", "quota": "100/hour", "ttl": "30m",
	})
	rec, _, _ := h.stored(resp.Data["id"].(string))
	if !slices.Equal(rec.Scopes, []string{"orders:read"}) || !slices.Equal(rec.AllowedHosts, []string{"api.acme.test"}) ||
		rec.RateLimit.Requests != 10 || rec.Quota.Requests != 100 || rec.ExpiresAt != h.now.Add(30*time.Minute).Format(time.RFC3339) {
		t.Fatalf("record %+v", rec)
	}
	if resp.Secret.TTL != 30*time.Minute {
		t.Fatalf("lease TTL %s", resp.Secret.TTL)
	}
	// A ttl over max_ttl is capped, with a warning.
	resp = h.issue("team-a", map[string]any{"ttl": "10h"})
	if resp.Secret.TTL != 4*time.Hour || len(resp.Warnings) == 0 || resp.Data["expires_at"] != h.now.Add(4*time.Hour).Format(time.RFC3339) {
		t.Fatalf("capped issue: ttl %s, warnings %v, data %v", resp.Secret.TTL, resp.Warnings, resp.Data)
	}
	// A role without TTLs uses the mount's (24h default, 48h max here).
	h.write("roles/plain", map[string]any{"tenant": "acme"})
	if resp := h.issue("plain", nil); resp.Secret.TTL != 24*time.Hour || resp.Secret.MaxTTL != 48*time.Hour {
		t.Fatalf("mount defaults: %s / %s", resp.Secret.TTL, resp.Secret.MaxTTL)
	}
}

func TestIssueBadInput(t *testing.T) {
	rawKey := "kg_" + strings.Repeat("Q", 44) + "000000"
	cases := []struct {
		name string
		role string
		data map[string]any
		want []string
	}{
		{"unknown role", "nope", nil, []string{`"nope"`, "no such role"}},
		{"scope outside role", "team-a", map[string]any{"scopes": "orders:read,admin"}, []string{`"scopes"`, "admin"}},
		{"host outside role", "team-a", map[string]any{"allowed_hosts": "evil.test"}, []string{`"allowed_hosts"`}},
		{"cidr restriction ok but bad", "team-a", map[string]any{"allowed_cidrs": "10.0.0.0/33"}, []string{`"allowed_cidrs[0]"`}},
		{"rate over ceiling", "team-a", map[string]any{"rate_limit": "1000/second"}, []string{`"rate_limit"`, "ceiling"}},
		{"rate burst over ceiling", "team-a", map[string]any{"rate_limit": "6000/minute"}, []string{`"rate_limit"`}},
		{"quota over ceiling", "team-a", map[string]any{"quota": "1000/hour"}, []string{`"quota"`, "ceiling"}},
		{"quota window wider", "team-b", map[string]any{"quota": "10/day"}, []string{`"quota"`}},
		{"bad rate", "team-a", map[string]any{"rate_limit": "fast"}, []string{`"rate_limit"`}},
		{"bad ttl", "team-a", map[string]any{"ttl": "soon"}, []string{"ttl"}},
		{"zero ttl", "team-a", map[string]any{"ttl": 0}, []string{`"ttl"`}},
		{"long name", "team-a", map[string]any{"name": strings.Repeat("n", 300)}, []string{`"name"`}},
		{"key in name", "team-a", map[string]any{"name": rawKey}, []string{"name", "shaped like an API key"}},
		{"key in ttl", "team-a", map[string]any{"ttl": rawKey}, []string{"ttl"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.write("roles/team-a", teamRole)
			h.write("roles/team-b", map[string]any{"tenant": "acme", "max_quota": "5/hour"})
			before := h.snapshot()
			msg := h.bad(logical.UpdateOperation, "issue/"+c.role, c.data, c.want...)
			if containsKey(msg) {
				t.Errorf("error echoes a key: %q", msg)
			}
			h.unchanged(before)
		})
	}
}

func TestAdminWriteStaysWithinRole(t *testing.T) {
	h := newHarness(t)
	h.write("roles/team-a", teamRole)
	id := h.issue("team-a", map[string]any{"scopes": "orders:read"}).Data["id"].(string)
	recJSON := h.read("keys/" + id).Data["record"].(map[string]any)
	widen := func(k string, v any) map[string]any {
		m := maps.Clone(recJSON)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return map[string]any{"record": m, "cas": 1}
	}
	before := h.snapshot()
	for field, data := range map[string]map[string]any{
		"scopes":        widen("scopes", []any{"orders:read", "billing:read"}),
		"tenant":        widen("tenant", "globex"),
		"rate_limit":    widen("rate_limit", nil),
		"allowed_hosts": widen("allowed_hosts", nil),
		"headers":       widen("headers", map[string]any{"x-team": "b"}),
		"expires_at":    widen("expires_at", nil),
	} {
		h.bad(logical.UpdateOperation, "keys/"+id, data, `"`+field+`"`, "team-a")
	}
	h.unchanged(before)
	h.write("keys/"+id, widen("name", "narrower is fine"))
	if _, v, role := h.stored(id); v != 2 || role != "team-a" {
		t.Fatalf("after an admin write: version %d role %q", v, role)
	}
	// With the role gone, admin writes are refused; revoke still works.
	h.ok(logical.DeleteOperation, "roles/team-a", nil)
	again := widen("name", "x")
	again["cas"] = 2
	h.bad(logical.UpdateOperation, "keys/"+id, again, "no longer exists")
	h.write("keys/"+id+"/revoke", map[string]any{"reason": "team disbanded"})
}

func TestLeaseRevoke(t *testing.T) {
	h := newHarness(t)
	h.write("roles/team-a", teamRole)
	resp := h.issue("team-a", nil)
	id := resp.Data["id"].(string)
	revoke := func() {
		t.Helper()
		req := logical.RevokeRequest("issue/team-a", resp.Secret, nil)
		req.Storage = h.s
		if r, err := h.b.HandleRequest(context.Background(), req); err != nil || (r != nil && r.IsError()) {
			t.Fatalf("lease revoke: %v %v", r, err)
		}
	}
	revoke()
	rec, v, _ := h.stored(id)
	if rec.Status != policy.StatusRevoked || rec.RevokedReason != "lease revoked" || v != 2 {
		t.Fatalf("after lease revoke: %+v version %d", rec, v)
	}
	entries, _, _ := h.journal(0)
	if len(entries) != 1 || entries[0]["op"] != "revoke" || entries[0]["ids"].([]string)[0] != id {
		t.Fatalf("journal %v", entries)
	}
	revoke() // again (Vault retries): no second write
	if _, v, _ := h.stored(id); v != 2 {
		t.Fatalf("a second lease revoke wrote the key again (version %d)", v)
	}
	h.ok(logical.DeleteOperation, "keys/"+id, nil)
	revoke() // deleted: nothing to do, and no error (the lease goes)
}

func TestLeaseRenew(t *testing.T) {
	h := newHarness(t)
	h.write("roles/team-a", teamRole) // default 1h, max 4h
	issuedAt := h.now
	resp := h.issue("team-a", nil)
	id := resp.Data["id"].(string)
	renew := func(increment time.Duration) *logical.Response {
		t.Helper()
		s := *resp.Secret
		s.Increment, s.IssueTime = increment, issuedAt
		req := logical.RenewRequest("issue/team-a", &s, nil)
		req.Storage = h.s
		r, err := h.b.HandleRequest(context.Background(), req)
		if err != nil {
			t.Fatalf("renew: %v", err)
		}
		return r
	}
	h.now = issuedAt.Add(50 * time.Minute)
	r := renew(2 * time.Hour)
	if r.IsError() || r.Secret.TTL != 2*time.Hour || r.Secret.MaxTTL != 4*time.Hour || r.Data != nil {
		t.Fatalf("renew: %#v", r)
	}
	rec, v, _ := h.stored(id)
	if rec.ExpiresAt != h.now.Add(2*time.Hour).Format(time.RFC3339) || v != 2 {
		t.Fatalf("after renew: expires_at %s version %d", rec.ExpiresAt, v)
	}
	entries, _, _ := h.journal(0)
	if len(entries) != 1 || entries[0]["op"] != "update" {
		t.Fatalf("journal %v", entries)
	}
	// Capped at issue time + max_ttl.
	h.now = issuedAt.Add(3 * time.Hour)
	if r := renew(5 * time.Hour); r.IsError() || r.Secret.TTL != time.Hour {
		t.Fatalf("capped renew: %#v", r)
	}
	if rec, _, _ := h.stored(id); rec.ExpiresAt != issuedAt.Add(4*time.Hour).Format(time.RFC3339) {
		t.Fatalf("capped expires_at %s", rec.ExpiresAt)
	}
	// A rotated key keeps its grace: not renewed.
	h.now = issuedAt.Add(3*time.Hour + time.Minute)
	h.write("keys/"+id+"/rotate", map[string]any{"grace": "10m"})
	if r := renew(time.Hour); !r.IsError() || !strings.Contains(r.Error().Error(), "rotated") {
		t.Fatalf("renew of a rotated key: %#v", r)
	}
}
