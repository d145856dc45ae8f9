package vaultplugin

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/policy"
)

const (
	idA = "AAAAAAAAAAAA"
	idB = "BBBBBBBBBBBB"
)

func record(tenant string, extra map[string]any) map[string]any {
	rec := map[string]any{"hash": "sha256:" + strings.Repeat("ab", 32), "tenant": tenant, "status": "active"}
	for k, v := range extra {
		rec[k] = v
	}
	return rec
}

func TestKeysCheckAndSet(t *testing.T) {
	h := newHarness(t)
	h.write("keys/"+idA, map[string]any{"record": record("acme", nil), "cas": 0})
	got := h.read("keys/" + idA).Data
	if got["version"] != 1 || got["role"] != "" || got["record"].(map[string]any)["tenant"] != "acme" {
		t.Fatalf("read: %v", got)
	}
	if _, err := policy.ParseRecord(mustJSON(t, got["record"])); err != nil {
		t.Fatalf("record read back does not parse: %v", err)
	}
	h.bad(logical.UpdateOperation, "keys/"+idA, map[string]any{"record": record("acme", nil), "cas": 0}, "check-and-set")
	h.write("keys/"+idA, map[string]any{"record": record("acme", map[string]any{"name": "two"}), "cas": 1})
	if v := h.read("keys/" + idA).Data["version"]; v != 2 {
		t.Fatalf("version after update: %v", v)
	}
	before := h.snapshot()
	h.bad(logical.UpdateOperation, "keys/"+idA, map[string]any{"record": record("acme", nil), "cas": 1}, "check-and-set", "version 2")
	h.unchanged(before)

	h.write("keys/"+idB, map[string]any{"record": record("acme", nil), "cas": 0})
	if ids := h.list("keys/"); !slices.Equal(ids, []string{idA, idB}) {
		t.Fatalf("list: %v", ids)
	}
	h.ok(logical.DeleteOperation, "keys/"+idA, nil)
	if resp, err := h.do(logical.ReadOperation, "keys/"+idA, nil); err != nil || resp != nil {
		t.Fatalf("read of a deleted key: %v %v, want 404 (no response)", resp, err)
	}
	if ids := h.list("keys/"); !slices.Equal(ids, []string{idB}) {
		t.Fatalf("list after delete: %v", ids)
	}
	// Ids are never reused, and a deleted key cannot be updated.
	h.bad(logical.UpdateOperation, "keys/"+idA, map[string]any{"record": record("acme", nil), "cas": 0}, "check-and-set", "never reused")
	h.bad(logical.UpdateOperation, "keys/"+idA, map[string]any{"record": record("acme", nil), "cas": 2}, "check-and-set")
	h.ok(logical.DeleteOperation, "keys/"+idA, nil) // already gone: no error

	var ops []string
	entries, _, _ := h.journal(0)
	for _, e := range entries {
		ops = append(ops, e["op"].(string))
	}
	if want := []string{"new-keys", "update", "new-keys", "delete"}; !slices.Equal(ops, want) {
		t.Fatalf("journal ops %v, want %v", ops, want)
	}
	// A write that revokes is journaled as a revoke.
	h.write("keys/"+idB, map[string]any{"record": record("acme", map[string]any{"status": "revoked", "revoked_reason": "leaked"}), "cas": 1})
	entries, _, _ = h.journal(4)
	if len(entries) != 1 || entries[0]["op"] != "revoke" || !slices.Equal(entries[0]["ids"].([]string), []string{idB}) {
		t.Fatalf("journal after a revoking write: %v", entries)
	}
}

func TestKeysBadInput(t *testing.T) {
	rawKey := "kg_" + strings.Repeat("A", 12) + strings.Repeat("b", 32) + "000000"
	cases := []struct {
		name string
		path string
		data map[string]any
		want []string
	}{
		{"no cas", "keys/" + idA, map[string]any{"record": record("acme", nil)}, []string{`"cas"`, "required"}},
		{"no record", "keys/" + idA, map[string]any{"cas": 0}, []string{`"record"`, "required"}},
		{"record not an object", "keys/" + idA, map[string]any{"record": "x", "cas": 0}, []string{"record"}},
		{"bad id", "keys/not-an-id", map[string]any{"record": record("acme", nil), "cas": 0}, []string{`"id"`, "not a key id"}},
		{"raw key as id", "keys/" + rawKey, map[string]any{"record": record("acme", nil), "cas": 0}, []string{`"id"`}},
		{"no tenant", "keys/" + idA, map[string]any{"record": record("", nil), "cas": 0}, []string{`"tenant"`}},
		{"unknown field", "keys/" + idA, map[string]any{"record": record("acme", map[string]any{"colour": "red"}), "cas": 0}, []string{"colour"}},
		{"bad cidr", "keys/" + idA, map[string]any{"record": record("acme", map[string]any{"allowed_cidrs": []any{"1.2.3.4/33"}}), "cas": 0}, []string{`"allowed_cidrs[0]"`}},
		{"bad status", "keys/" + idA, map[string]any{"record": record("acme", map[string]any{"status": "paused"}), "cas": 0}, []string{`"status"`}},
		{"key in name", "keys/" + idA, map[string]any{"record": record("acme", map[string]any{"name": rawKey}), "cas": 0}, []string{"shaped like an API key"}},
		{"key in reason", "keys/" + idA + "/revoke", map[string]any{"reason": rawKey}, []string{"revoked_reason"}},
		{"bad rotate id", "keys/nope/rotate", map[string]any{}, []string{`"id"`}},
		{"negative grace", "keys/" + idA + "/rotate", map[string]any{"grace": "-5s"}, []string{"grace"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if strings.HasSuffix(c.path, "/revoke") || strings.HasSuffix(c.path, "/rotate") {
				h.write("keys/"+idA, map[string]any{"record": record("acme", nil), "cas": 0})
			}
			before := h.snapshot()
			msg := h.bad(logical.UpdateOperation, c.path, c.data, c.want...)
			if containsKey(msg) || strings.Contains(msg, rawKey) {
				t.Errorf("error echoes a key: %q", msg)
			}
			h.unchanged(before)
		})
	}
}

func TestRevokeByID(t *testing.T) {
	h := newHarness(t)
	h.write("keys/"+idA, map[string]any{"record": record("acme", nil), "cas": 0})
	h.write("keys/"+idA+"/revoke", map[string]any{"reason": "leaked"})
	rec := h.read("keys/" + idA).Data["record"].(map[string]any)
	if rec["status"] != "revoked" || rec["revoked_reason"] != "leaked" {
		t.Fatalf("after revoke: %v", rec)
	}
	entries, _, _ := h.journal(1)
	if len(entries) != 1 || entries[0]["op"] != "revoke" || entries[0]["ids"].([]string)[0] != idA {
		t.Fatalf("journal: %v", entries)
	}
	if _, err := h.do(logical.UpdateOperation, "keys/"+idB+"/revoke", nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("revoke of a missing key: %v, want a 404", err)
	}
}
