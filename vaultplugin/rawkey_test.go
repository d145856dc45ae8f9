package vaultplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// TestRawKeyNeverStored drives every path that handles a raw key and
// scans all of storage, every response but issue's and rotate's, and the
// engine's log for any of them.
func TestRawKeyNeverStored(t *testing.T) {
	h := newHarness(t)
	var logBuf bytes.Buffer
	cfg := logical.TestBackendConfig()
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: &logBuf, Level: hclog.Trace})
	if err := h.b.Setup(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	h.write("roles/team-a", teamRole)
	var rawKeys []string
	var others []string
	issued := h.issue("team-a", nil)
	id := issued.Data["id"].(string)
	rawKeys = append(rawKeys, issued.Data["key"].(string))
	rot := h.write("keys/"+id+"/rotate", map[string]any{"grace": "1m"})
	rawKeys = append(rawKeys, rot.Data["key"].(string), "legacy-key-0123456789abcdef")
	others = append(others, respText(h.write("import", map[string]any{"file": importFile})))
	others = append(others, respText(h.read("keys/"+id)), respText(h.read("keys/"+rot.Data["id"].(string))))
	others = append(others, h.bad(logical.UpdateOperation, "issue/team-a", map[string]any{"name": rawKeys[0]}))
	others = append(others, h.bad(logical.UpdateOperation, "issue/team-a", map[string]any{"ttl": rawKeys[0]}))
	others = append(others, h.bad(logical.UpdateOperation, "keys/"+id+"/revoke", map[string]any{"reason": rawKeys[1]}))
	others = append(others, respText(h.ok(logical.ReadOperation, "journal", map[string]any{"after": 0})))
	var all strings.Builder
	for k, v := range h.snapshot() {
		all.WriteString(k + "=" + v + "\n")
	}
	all.WriteString(strings.Join(others, "\n"))
	all.WriteString(logBuf.String())
	for _, k := range rawKeys {
		if strings.Contains(all.String(), k) {
			t.Errorf("a raw key appears in storage, a response or the log")
		}
	}
}

func respText(r *logical.Response) string {
	if r == nil {
		return ""
	}
	b, _ := json.Marshal(r.Data)
	return string(b) + strings.Join(r.Warnings, "\n")
}

// TestPathHelp: every path documents itself and every field.
func TestPathHelp(t *testing.T) {
	h := newHarness(t)
	for _, p := range h.b.Paths {
		if p.HelpSynopsis == "" || p.HelpDescription == "" {
			t.Errorf("path %s: no help", p.Pattern)
		}
		for name, f := range p.Fields {
			if f.Description == "" {
				t.Errorf("path %s: field %s has no description", p.Pattern, name)
			}
		}
	}
	for _, path := range []string{"roles/x", "issue/x", "keys/AAAAAAAAAAAA", "keys/AAAAAAAAAAAA/rotate", "import", "journal"} {
		resp, err := h.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: path, Storage: h.s})
		if err != nil || resp == nil || !strings.Contains(resp.Data["help"].(string), "##") {
			t.Errorf("help for %s: %v", path, err)
		}
	}
}
