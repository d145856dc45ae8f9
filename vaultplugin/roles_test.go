package vaultplugin

import (
	"maps"
	"slices"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRoleCRUD(t *testing.T) {
	h := newHarness(t)
	h.write("roles/team-a", teamRole)
	got := h.read("roles/team-a").Data
	if got["tenant"] != "acme" || !slices.Equal(got["allowed_scopes"].([]string), []string{"orders:read", "orders:write"}) ||
		got["max_rate_limit"] != "100/second" || got["default_ttl"] != int64(3600) || got["max_ttl"] != int64(4*3600) ||
		got["headers"].(map[string]string)["x-team"] != "a" {
		t.Fatalf("role read back as %v", got)
	}
	// An update changes only the fields it gives.
	h.write("roles/team-a", map[string]any{"max_quota": "500/hour"})
	got = h.read("roles/team-a").Data
	if got["max_quota"] != "500/hour" || got["tenant"] != "acme" || got["max_rate_limit"] != "100/second" {
		t.Fatalf("after update: %v", got)
	}
	h.write("roles/team-b", map[string]any{"tenant": "globex"})
	if ids := h.list("roles/"); !slices.Equal(ids, []string{"team-a", "team-b"}) {
		t.Fatalf("list: %v", ids)
	}
	h.ok(logical.DeleteOperation, "roles/team-b", nil)
	if resp, err := h.do(logical.ReadOperation, "roles/team-b", nil); err != nil || resp != nil {
		t.Fatalf("read of a deleted role: %v, %v (want 404: no response)", resp, err)
	}
}

func TestRoleBadInput(t *testing.T) {
	with := func(k string, v any) map[string]any {
		m := maps.Clone(teamRole)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		data map[string]any
		want []string
	}{
		{"no tenant", with("tenant", nil), []string{`"tenant"`, "required"}},
		{"bad scope", with("allowed_scopes", "orders read"), []string{`"allowed_scopes[0]"`}},
		{"bad cidr", with("allowed_cidrs", "10.0.0.1/33"), []string{`"allowed_cidrs[0]"`}},
		{"bad referrer", with("allowed_referrers", "not a url"), []string{`"allowed_referrers[0]"`}},
		{"bad rate", with("max_rate_limit", "lots"), []string{`"max_rate_limit"`}},
		{"quota per second", with("max_quota", "5/second"), []string{`"max_quota"`}},
		{"default over max", with("default_ttl", "5h"), []string{`"default_ttl"`, "max_ttl"}},
		{"bad header", with("headers", map[string]any{"x-a": "b\r\nc"}), []string{`"headers`}},
		{"bad ttl type", with("max_ttl", "forever"), []string{`max_ttl`}},
		{"key in tenant", with("tenant", "kg_"+"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"), []string{`"role"`, "shaped like an API key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			msg := h.bad(logical.UpdateOperation, "roles/r", c.data, c.want...)
			if containsKey(msg) {
				t.Errorf("error echoes a key: %q", msg)
			}
			if len(h.snapshot()) != 0 {
				t.Errorf("a refused role was written")
			}
		})
	}
}
