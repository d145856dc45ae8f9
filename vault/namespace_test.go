package vault

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// TestNamespaceHeader: with Config.Namespace, every request (the AppRole
// login, lookups, writes) carries X-Vault-Namespace; VAULT_NAMESPACE in the
// environment is ignored in favour of the Config. Vault namespaces are an
// Enterprise feature, so the dev server cannot show it: a recording fake
// answers instead.
func TestNamespaceHeader(t *testing.T) {
	t.Setenv("VAULT_NAMESPACE", "from-env")
	var mu sync.Mutex
	seen := map[string]string{} // path → namespace header
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Get("X-Vault-Namespace")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/auth/approle/login" {
			w.Write([]byte(`{"auth": {"client_token": "` + fakeToken + `", "lease_duration": 3600, "renewable": true}}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors": []}`))
	}))
	defer fake.Close()

	cfg := DefaultConfig()
	cfg.Addr, cfg.Namespace, cfg.Timeout = fake.URL, "team-a/keygate", time.Second
	cfg.Auth.Method, cfg.Auth.RoleID, cfg.Auth.SecretID = AuthAppRole, "role", "secret"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, _ := newRecord(t)
	if _, err := s.Lookup(ctx, id); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Fatalf("Lookup: %v, want ErrKeyNotFound from the fake's 404", err)
	}
	_ = s.RecordUsage(ctx, id, time.Now())
	mu.Lock()
	defer mu.Unlock()
	for _, path := range []string{"/v1/auth/approle/login", "/v1/secret/data/keygate/keys/" + id, "/v1/secret/data/keygate/usage/" + id} {
		if got, ok := seen[path]; !ok || got != "team-a/keygate" {
			t.Errorf("%s: X-Vault-Namespace %q (requested %v), want team-a/keygate", path, got, ok)
		}
	}
}
