package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

// TestAppRoleRenewalUnderLoad: keygate serve logs in with AppRole (token
// TTL 10 s, max TTL 30 s) and answers continuous Checks for 2 minutes with
// a 1 s found-TTL, so Vault is read all along. No valid key may be denied,
// and logins (counted in Vault's own audit log) stay bounded.
func TestAppRoleRenewalUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("2-minute soak")
	}
	var ring keyring
	env := vaultEnv(t)
	base := env["KEYGATE_VAULT_BASE_PATH"]
	audit := auditLog(t)
	client := vaulttest.Server(t).Client(t)
	if err := client.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil && !strings.Contains(err.Error(), "path is already in use") {
		t.Fatal(err)
	}
	policy := `path "secret/data/` + base + `/keys/+" { capabilities = ["read"] }
path "secret/data/` + base + `/pepper" { capabilities = ["read"] }
path "secret/data/` + base + `/journal" { capabilities = ["read"] }`
	if err := client.Sys().PutPolicy("soak-"+base, policy); err != nil {
		t.Fatal(err)
	}
	role := "auth/approle/role/soak-" + base
	if _, err := client.Logical().Write(role, map[string]any{
		"token_ttl": "10s", "token_max_ttl": "30s", "token_policies": "soak-" + base,
	}); err != nil {
		t.Fatal(err)
	}
	rid, err := client.Logical().Read(role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := client.Logical().Write(role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(secretFile, []byte(sid.Data["secret_id"].(string)), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := make([]created, 4)
	for i := range keys {
		keys[i] = ring.add(createKey(t, env, "--tenant", "acme"))
	}
	serverEnv := envMap{"VAULT_ADDR": env["VAULT_ADDR"], "KEYGATE_VAULT_BASE_PATH": base}
	s := serve(t, serverEnv, ring.all, "--log-level", "info", "--found-ttl", "1s",
		"--vault-auth", "approle", "--vault-approle-role-id", rid.Data["role_id"].(string),
		"--vault-approle-secret-id-file", secretFile)

	const soak = 2 * time.Minute
	var checks, denied atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(soak)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline) && i < 1_000_000; i++ {
				if o := s.decide(t, keys[(w+i)%len(keys)].Key, checkFlags{}); o.status != 200 {
					if denied.Add(1) <= 3 {
						t.Errorf("valid key denied during the soak: %v", o)
					}
				}
				checks.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	n := audit("update", "auth/approle/login")
	t.Logf("%d Checks over %s, %d denied; AppRole logins seen by Vault: %d", checks.Load(), soak, denied.Load(), n)
	// vault/api's LifetimeWatcher stops renewing up to one token TTL (10 s)
	// before the max TTL (30 s), so each login lasts at least 20 s: with a
	// storm there would be hundreds.
	if max := int(soak/(20*time.Second)) + 2; n > max || n < 1 {
		t.Errorf("%d logins in %s (token TTL 10 s, max TTL 30 s), want 1..%d", n, soak, max)
	}
}
