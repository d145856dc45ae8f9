package vaultplugin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// harness is an engine over in-memory storage with a settable clock.
type harness struct {
	t   *testing.T
	b   *Backend
	s   *logical.InmemStorage
	now time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, s: &logical.InmemStorage{}, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	b, err := New(func() time.Time { return h.now })
	if err != nil {
		t.Fatal(err)
	}
	cfg := logical.TestBackendConfig() // default lease 24h, max 48h
	if err := b.Setup(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	h.b = b
	return h
}

// do runs one request as Vault would: a write is a create when the
// path's existence check says the item does not exist.
func (h *harness) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: h.s}
	if op == logical.UpdateOperation {
		found, exists, err := h.b.HandleExistenceCheck(context.Background(), req)
		var user errutil.UserError
		if errors.As(err, &user) {
			return logical.ErrorResponse(user.Error()), nil // Vault answers 400
		}
		if err != nil {
			return nil, err
		}
		if found && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return h.b.HandleRequest(context.Background(), req)
}

// ok runs a request that must succeed.
func (h *harness) ok(op logical.Operation, path string, data map[string]any) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	if resp != nil && resp.IsError() {
		h.t.Fatalf("%s %s: %v", op, path, resp.Error())
	}
	return resp
}

// bad runs a request that must be refused with a 400 whose text holds
// every one of want.
func (h *harness) bad(op logical.Operation, path string, data map[string]any, want ...string) string {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s: want a 400 error response, got error %v", op, path, err)
	}
	if resp == nil || !resp.IsError() {
		h.t.Fatalf("%s %s: want a 400 error response, got %#v", op, path, resp)
	}
	msg := resp.Error().Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			h.t.Errorf("%s %s: error %q does not mention %q", op, path, msg, w)
		}
	}
	return msg
}

func (h *harness) write(path string, data map[string]any) *logical.Response {
	h.t.Helper()
	return h.ok(logical.UpdateOperation, path, data)
}

func (h *harness) read(path string) *logical.Response {
	h.t.Helper()
	return h.ok(logical.ReadOperation, path, nil)
}

func (h *harness) list(path string) []string {
	h.t.Helper()
	resp := h.ok(logical.ListOperation, path, nil)
	keys, _ := resp.Data["keys"].([]string)
	return keys
}

// snapshot is every storage entry, for "nothing written" checks and
// scans for raw keys.
func (h *harness) snapshot() map[string]string {
	h.t.Helper()
	out := map[string]string{}
	var walk func(prefix string)
	walk = func(prefix string) {
		keys, err := h.s.List(context.Background(), prefix)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				walk(prefix + k)
				continue
			}
			e, err := h.s.Get(context.Background(), prefix+k)
			if err != nil {
				h.t.Fatal(err)
			}
			out[prefix+k] = string(e.Value)
		}
	}
	walk("")
	return out
}

func (h *harness) unchanged(before map[string]string) {
	h.t.Helper()
	after := h.snapshot()
	if len(after) != len(before) {
		h.t.Fatalf("storage changed: %d entries, was %d", len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			h.t.Fatalf("storage entry %s changed", k)
		}
	}
}

// teamRole is a role with every bound set.
var teamRole = map[string]any{
	"tenant":         "acme",
	"allowed_scopes": "orders:read,orders:write",
	"allowed_hosts":  "api.acme.test,admin.acme.test",
	"max_rate_limit": "100/second",
	"max_quota":      "10000/day",
	"headers":        map[string]any{"x-team": "a"},
	"metadata":       map[string]any{"cost-center": "42"},
	"default_ttl":    "1h",
	"max_ttl":        "4h",
}

// issue issues a key for role and returns the response.
func (h *harness) issue(role string, data map[string]any) *logical.Response {
	h.t.Helper()
	return h.write("issue/"+role, data)
}

// journal reads the journal after a version.
func (h *harness) journal(after int) ([]map[string]any, int, bool) {
	h.t.Helper()
	resp := h.ok(logical.ReadOperation, "journal", map[string]any{"after": after})
	raw := resp.Data["entries"].([]any)
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		out[i] = e.(map[string]any)
	}
	return out, resp.Data["latest"].(int), resp.Data["complete"].(bool)
}
