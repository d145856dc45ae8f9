package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/keygate/keygate/internal/vaulttest"
)

// outcome is a Check decision reduced to what the tests assert.
type outcome struct {
	status  int               // 200 on allow
	reason  string            // "allowed" or the deny reason code
	headers map[string]string // set on allow; the deny's headers on deny
	removed []string
}

func (o outcome) String() string { return fmt.Sprintf("%d %s", o.status, o.reason) }

// decide sends a CheckRequest built exactly as `keygate check` builds it.
func (s *server) decide(t *testing.T, rawKey string, f checkFlags) outcome {
	t.Helper()
	if f.method == "" {
		f.method = "GET"
	}
	if f.path == "" {
		f.path = "/orders"
	}
	f.host, f.sourceIP, f.keyHeader, f.key = "api.example.com", "10.1.2.3", "x-api-key", rawKey
	req, err := f.request(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.client.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check returned a gRPC error (keygate must always answer with a CheckResponse): %v", err)
	}
	return toOutcome(resp)
}

func toOutcome(resp *authv3.CheckResponse) outcome {
	if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
		o := outcome{status: 200, reason: "allowed", headers: map[string]string{}}
		for _, h := range resp.GetOkResponse().GetHeaders() {
			o.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		o.removed = resp.GetOkResponse().GetHeadersToRemove()
		return o
	}
	d := resp.GetDeniedResponse()
	o := outcome{status: int(d.GetStatus().GetCode()), reason: resp.GetStatus().GetMessage(), headers: map[string]string{}}
	for _, h := range d.GetHeaders() {
		o.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return o
}

// keyring remembers every key a test issued, for the no-raw-key checks.
type keyring struct {
	mu   sync.Mutex
	keys []string
}

func (k *keyring) add(c created) created {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, c.Key)
	return c
}

func (k *keyring) all() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.keys...)
}

// vaultEnv points the CLI and server at the shared real Vault, under a base
// path of the test's own.
func vaultEnv(t *testing.T) envMap {
	v := vaulttest.Server(t)
	base := "kg-" + strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
	return envMap{"VAULT_ADDR": v.Addr, "VAULT_TOKEN": v.Token, "KEYGATE_VAULT_BASE_PATH": base}
}

func TestFileStoreDemo(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme", "--scopes", "orders:read,orders:write", "--header", "x-plan=gold"))
	s := serve(t, env, ring.all)

	out := mustCLI(t, env, "check", "--addr", s.addr, "--key", k.Key, "--method", "POST", "--path", "/orders",
		"--context", "keygate.scopes=orders:write")
	for _, want := range []string{"ALLOW", "set     x-keygate-key-id: " + k.ID, "set     x-keygate-tenant: acme", "set     x-plan: gold", "remove  x-api-key",
		`metadata {"key_id":"` + k.ID + `","scopes":["orders:read","orders:write"],"tenant":"acme"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("keygate check output lacks %q:\n%s", want, redact(out))
		}
	}
	if strings.Contains(out, k.Key) {
		t.Error("keygate check printed the key")
	}
	wrong := k.Key[:len(k.Key)-8] + "AAAAAAAA"
	out, _, err := cli(t, env, "check", "--addr", s.addr, "--key", wrong)
	if !errors.Is(err, errDenied) || !strings.Contains(out, "DENY 401") {
		t.Errorf("wrong key: err %v, output:\n%s", err, redact(out))
	}
	if got := exitCode(err, &syncBuffer{}); got != exitDenied {
		t.Errorf("wrong key: exit code %d, want %d", got, exitDenied)
	}
}

func TestVaultLifecycle(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	const foundTTL = time.Second
	s := serve(t, env, ring.all, "--found-ttl", foundTTL.String(), "--not-found-ttl", "200ms")

	k := ring.add(createKey(t, env, "--tenant", "acme", "--scopes", "orders:read", "--header", "x-plan=gold"))
	read := checkFlags{context: []string{"keygate.scopes=orders:read"}}
	o := s.decide(t, k.Key, read)
	if o.status != 200 || o.headers["x-keygate-key-id"] != k.ID || o.headers["x-keygate-tenant"] != "acme" ||
		o.headers["x-plan"] != "gold" || o.headers["x-keygate-scopes"] != "orders:read" {
		t.Fatalf("create → allow with the key's headers: got %v %v", o, o.headers)
	}
	if o := s.decide(t, k.Key, checkFlags{context: []string{"keygate.scopes=orders:write"}}); o.status != 403 || o.reason != "scope_denied" {
		t.Errorf("scope miss: got %v, want 403 scope_denied", o)
	}

	t.Run("revoke", func(t *testing.T) {
		mustCLI(t, env, "keys", "revoke", k.ID)
		took := eventually(t, foundTTL+3*time.Second, "revoked key denied", func() bool {
			return s.decide(t, k.Key, read).reason == "revoked_key"
		})
		t.Logf("revoked key denied %s after revoke (found-ttl %s)", took.Round(10*time.Millisecond), foundTTL)
	})

	t.Run("rotate", func(t *testing.T) {
		old := ring.add(createKey(t, env, "--tenant", "acme", "--scopes", "orders:read"))
		if o := s.decide(t, old.Key, read); o.status != 200 {
			t.Fatalf("old key before rotate: %v", o)
		}
		nk := ring.add(createFromRotate(t, env, old.ID, "--grace", "2s"))
		if nk.Previous != old.ID {
			t.Errorf("rotate --json previous = %q, want %q", nk.Previous, old.ID)
		}
		for name, key := range map[string]string{"old": old.Key, "new": nk.Key} {
			if o := s.decide(t, key, read); o.status != 200 {
				t.Errorf("%s key during grace: %v", name, o)
			}
		}
		eventually(t, 2*time.Second+foundTTL+3*time.Second, "old key expired after grace", func() bool {
			return s.decide(t, old.Key, read).reason == "expired_key"
		})
		if o := s.decide(t, nk.Key, read); o.status != 200 {
			t.Errorf("new key after grace: %v", o)
		}
	})

	t.Run("expired", func(t *testing.T) {
		e := ring.add(createKey(t, env, "--tenant", "acme", "--expires-in", "1s"))
		eventually(t, 5*time.Second, "key denied once expired", func() bool {
			o := s.decide(t, e.Key, checkFlags{})
			return o.status == 401 && o.reason == "expired_key"
		})
	})

	t.Run("delete", func(t *testing.T) {
		d := ring.add(createKey(t, env, "--tenant", "acme"))
		if o := s.decide(t, d.Key, checkFlags{}); o.status != 200 {
			t.Fatalf("key before delete: %v", o)
		}
		mustCLI(t, env, "keys", "delete", d.ID, "--force")
		took := eventually(t, foundTTL+3*time.Second, "deleted key denied", func() bool {
			o := s.decide(t, d.Key, checkFlags{})
			return o.status == 401 && o.reason == "unknown_key"
		})
		t.Logf("deleted key denied %s after delete", took.Round(10*time.Millisecond))
	})

	t.Run("unknown", func(t *testing.T) {
		u := ring.add(createKey(t, envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/other.yaml"}, "--tenant", "x"))
		if o := s.decide(t, u.Key, checkFlags{}); o.status != 401 || o.reason != "unknown_key" {
			t.Errorf("key from another store: %v, want 401 unknown_key", o)
		}
	})
}

func createFromRotate(t *testing.T, env envMap, id string, args ...string) created {
	t.Helper()
	out := mustCLI(t, env, append([]string{"keys", "rotate", id, "--json"}, args...)...)
	var c created
	if err := jsonUnmarshal(out, &c); err != nil || c.Key == "" {
		t.Fatalf("keys rotate --json: %v", err)
	}
	return c
}
