package vaultplugin

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRotate(t *testing.T) {
	h := newHarness(t)
	h.write("roles/team-a", teamRole)
	old := h.issue("team-a", map[string]any{"scopes": "orders:read", "ttl": "3h"}).Data["id"].(string)
	oldRec, _, _ := h.stored(old)
	h.now = h.now.Add(time.Minute)
	resp := h.write("keys/"+old+"/rotate", map[string]any{"grace": "1h"})
	newID, rawKey := resp.Data["id"].(string), resp.Data["key"].(string)
	if got, err := h.b.format.Parse(rawKey); err != nil || got != newID || resp.Data["previous"] != old {
		t.Fatalf("rotate response %v", resp.Data["previous"])
	}
	graceEnd := h.now.Add(time.Hour).Format(time.RFC3339)
	if resp.Data["previous_expires_at"] != graceEnd {
		t.Fatalf("previous_expires_at %v, want %s", resp.Data["previous_expires_at"], graceEnd)
	}
	prev, _, _ := h.stored(old)
	if prev.RotatedTo != newID || prev.ExpiresAt != graceEnd {
		t.Fatalf("old key after rotate: %+v", prev)
	}
	rec, v, role := h.stored(newID)
	if role != "team-a" || v != 1 || !slices.Equal(rec.Scopes, oldRec.Scopes) || rec.ExpiresAt != oldRec.ExpiresAt || rec.Tenant != "acme" {
		t.Fatalf("new key: %+v role %q", rec, role)
	}
	entries, _, _ := h.journal(0)
	if len(entries) != 1 || entries[0]["op"] != "rotate" || !slices.Equal(entries[0]["ids"].([]string), []string{old}) {
		t.Fatalf("journal %v", entries)
	}
	// Only active, unexpired, not-yet-rotated keys rotate.
	before := h.snapshot()
	h.bad(logical.UpdateOperation, "keys/"+old+"/rotate", nil, "already rotated")
	h.unchanged(before)
	h.write("keys/"+newID+"/revoke", nil)
	before = h.snapshot()
	h.bad(logical.UpdateOperation, "keys/"+newID+"/rotate", nil, "revoked")
	h.unchanged(before)
	// Grace 0 ends the old key now.
	other := h.issue("team-a", nil).Data["id"].(string)
	resp = h.write("keys/"+other+"/rotate", map[string]any{"grace": 0})
	if resp.Data["previous_expires_at"] != h.now.Format(time.RFC3339) {
		t.Fatalf("grace 0: %v", resp.Data["previous_expires_at"])
	}
	// Default grace: 24h, capped by the key's own (earlier) expiry.
	third := h.issue("team-a", nil).Data["id"].(string)
	thirdRec, _, _ := h.stored(third)
	if resp = h.write("keys/"+third+"/rotate", nil); resp.Data["previous_expires_at"] != thirdRec.ExpiresAt {
		t.Fatalf("default grace: %v, key expires %s", resp.Data["previous_expires_at"], thirdRec.ExpiresAt)
	}
	if _, err := h.do(logical.UpdateOperation, "keys/"+idA+"/rotate", nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("rotate of a missing key: %v, want 404", err)
	}
}

const importFile = `
keys:
  - key: legacy-key-0123456789abcdef
    tenant: acme
    name: old gateway
    scopes: [orders:read]
  - sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    tenant: globex
`

func TestImport(t *testing.T) {
	h := newHarness(t)
	before := h.snapshot()
	resp := h.write("import", map[string]any{"file": importFile, "dry_run": true})
	rows := resp.Data["rows"].([]any)
	if len(rows) != 2 || rows[0].(map[string]any)["outcome"] != "checked" || rows[0].(map[string]any)["name"] != "old gateway" {
		t.Fatalf("dry run rows %v", rows)
	}
	h.unchanged(before)

	resp = h.write("import", map[string]any{"file": importFile})
	rows = resp.Data["rows"].([]any)
	var ids []string
	for _, r := range rows {
		row := r.(map[string]any)
		if row["outcome"] != "imported" {
			t.Fatalf("row %v", row)
		}
		ids = append(ids, row["id"].(string))
	}
	rec, _, role := h.stored(ids[0])
	if !rec.Imported || role != "" || rec.Tenant != "acme" || !strings.HasPrefix(rec.Hash, "sha256:") {
		t.Fatalf("imported record %+v", rec)
	}
	entries, latest, _ := h.journal(0)
	if latest != 1 || entries[0]["op"] != "new-keys" || len(entries[0]["ids"].([]string)) != 0 {
		t.Fatalf("journal after import: %v", entries)
	}
	// Idempotent: a re-run reports exists and writes nothing.
	before = h.snapshot()
	rows = h.write("import", map[string]any{"file": importFile}).Data["rows"].([]any)
	if rows[0].(map[string]any)["outcome"] != "exists" || rows[1].(map[string]any)["outcome"] != "exists" {
		t.Fatalf("re-run rows %v", rows)
	}
	h.unchanged(before)
	// Changed since: differs; deleted: deleted, not re-created.
	h.write("keys/"+ids[0]+"/revoke", map[string]any{"reason": "gone"})
	h.ok(logical.DeleteOperation, "keys/"+ids[1], nil)
	rows = h.write("import", map[string]any{"file": importFile}).Data["rows"].([]any)
	if rows[0].(map[string]any)["outcome"] != "differs" || rows[1].(map[string]any)["outcome"] != "deleted" {
		t.Fatalf("rows %v", rows)
	}
}

func TestImportBadFile(t *testing.T) {
	secret := "legacy-key-0123456789abcdef"
	cases := []struct {
		name, file string
		want       []string
	}{
		{"not yaml", "keys: [\n  - {", []string{"not valid YAML or JSON"}},
		{"no keys", "{}", []string{`"keys"`, "required"}},
		{"bad entry", "keys:\n  - key: " + secret + "\n    tenant: acme\n  - key: " + secret + "x\n    tenant: acme\n    allowed_cidrs: [1.2.3.4/33]\n", []string{"keys[1]", "allowed_cidrs[0]", "nothing imported"}},
		{"key in wrong field", "keys:\n  - key: " + secret + "\n    tenant: " + secret + "\n    status: nope\n", []string{"keys[0]", "status"}},
		{"keygate key", "keys:\n  - key: kg_" + strings.Repeat("A", 50) + "\n    tenant: acme\n", []string{"keys[0]", "keygate keys need no import"}},
		{"empty", "", []string{`"file"`, "required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			msg := h.bad(logical.UpdateOperation, "import", map[string]any{"file": c.file}, c.want...)
			if strings.Contains(msg, secret) || containsKey(msg) {
				t.Errorf("error echoes a key: %q", msg)
			}
			if len(h.snapshot()) != 0 {
				t.Errorf("a refused import wrote something")
			}
		})
	}
}
