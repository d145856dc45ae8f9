package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/vaultplugin"
)

// pluginEnv starts a dev server with keygate's secrets engine registered
// by SHA-256 and enabled at keygate/, and returns the root client and the
// environment of a `keygate serve --vault-engine plugin` whose token has
// only the shipped keygate-server-plugin policy.
func pluginEnv(t *testing.T) (*vaultapi.Client, envMap) {
	t.Helper()
	dir := t.TempDir()
	v := vaulttest.PluginServer(t, dir)
	sum := vaulttest.BuildPlugin(t, "github.com/keygate/keygate/cmd/keygate-vault-plugin", dir, "keygate-vault-plugin")
	root := v.Client(t)
	if err := root.Sys().RegisterPlugin(&vaultapi.RegisterPluginInput{Name: vaultplugin.Name, Type: vaultapi.PluginTypeSecrets,
		Command: "keygate-vault-plugin", SHA256: sum, Version: vaultplugin.Version}); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := root.Sys().Mount("keygate", &vaultapi.MountInput{Type: vaultplugin.Name}); err != nil {
		t.Fatalf("enable: %v", err)
	}
	policy, err := os.ReadFile("../../vault/policies/keygate-server-plugin.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("keygate-server-plugin", string(policy)); err != nil {
		t.Fatalf("policy: %v", err)
	}
	tok, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"keygate-server-plugin"}, TTL: "1h"})
	if err != nil {
		t.Fatalf("server token: %v", err)
	}
	return root, envMap{"VAULT_ADDR": v.Addr, "VAULT_TOKEN": tok.Auth.ClientToken, "KEYGATE_VAULT_ENGINE": "plugin", "KEYGATE_VAULT_MOUNT": "keygate"}
}

// engineKey is a key the engine issued, with its lease.
type engineKey struct{ id, key, lease string }

func issue(t *testing.T, c *vaultapi.Client, role string, data map[string]any) engineKey {
	t.Helper()
	sec, err := c.Logical().Write("keygate/issue/"+role, data)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	id, _ := sec.Data["id"].(string)
	key, _ := sec.Data["key"].(string)
	if id == "" || key == "" || sec.LeaseID == "" {
		t.Fatalf("issue answered id %q, a key of %d characters, lease %q", id, len(key), sec.LeaseID)
	}
	return engineKey{id, key, sec.LeaseID}
}

// TestPluginEngineServe: keys engineKey by the secrets engine are allowed by
// three `keygate serve --vault-engine plugin` replicas (each with only the
// shipped server policy), and Vault's lease revocation, revoke-prefix,
// lease expiry and `keygate keys revoke` deny them on every replica within
// 2 s.
func TestPluginEngineServe(t *testing.T) {
	root, env := pluginEnv(t)
	if _, err := root.Logical().Write("keygate/roles/orders", map[string]any{
		"tenant": "acme", "allowed_scopes": []string{"orders:read", "orders:write"}, "default_ttl": "1h", "max_ttl": "24h",
	}); err != nil {
		t.Fatalf("role: %v", err)
	}
	if err := root.Sys().PutPolicy("team-orders", `path "keygate/issue/orders" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	teamTok, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"team-orders"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	team, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	team.SetToken(teamTok.Auth.ClientToken)

	var mu sync.Mutex
	var keys []string
	all := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), keys...) }
	add := func(k engineKey) engineKey { mu.Lock(); keys = append(keys, k.key); mu.Unlock(); return k }
	var replicas []*server
	for range 3 {
		replicas = append(replicas, serve(t, env, all, "--imported-keys")) // for the engine's import, below
	}
	everywhere := func(what string, k engineKey, want int) {
		t.Helper()
		start := time.Now()
		took := eventually(t, 2*time.Second, what, func() bool {
			for _, s := range replicas {
				if s.decide(t, k.key, checkFlags{}).status != want {
					return false
				}
			}
			return true
		})
		t.Logf("%s: all 3 replicas answer %d after %s (%s in all)", what, want, took, time.Since(start).Round(time.Millisecond))
	}

	// A team issues for its role and nothing else.
	k := add(issue(t, team, "orders", map[string]any{"scopes": "orders:read", "name": "orders web"}))
	everywhere("issued by the engine", k, 200)
	if _, err := team.Logical().Write("keygate/roles/orders", map[string]any{"tenant": "evil"}); err == nil {
		t.Error("the team token changed its own role")
	}

	// Vault's lease revocation revokes the key.
	if err := root.Sys().Revoke(k.lease); err != nil {
		t.Fatalf("lease revoke: %v", err)
	}
	everywhere("after sys/leases/revoke", k, 401)

	// A key whose lease (ttl) ends is denied with no action by anyone.
	short := add(issue(t, team, "orders", map[string]any{"ttl": "3s"}))
	everywhere("short-lived key", short, 200)
	time.Sleep(3 * time.Second)
	everywhere("after its ttl", short, 401)

	// revoke-prefix: every key of the role at once (incident response).
	var batch []engineKey
	for i := range 3 {
		batch = append(batch, add(issue(t, team, "orders", map[string]any{"name": fmt.Sprint("batch ", i)})))
	}
	for _, b := range batch {
		everywhere("batch key", b, 200)
	}
	if err := root.Sys().RevokePrefix("keygate/issue/orders"); err != nil {
		t.Fatalf("revoke-prefix: %v", err)
	}
	for _, b := range batch {
		everywhere("after revoke-prefix", b, 401)
	}

	// keygate's own CLI works on the engine's layout, with only the shipped
	// keygate-admin-plugin policy.
	adminPolicy, err := os.ReadFile("../../vault/policies/keygate-admin-plugin.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("keygate-admin-plugin", string(adminPolicy)); err != nil {
		t.Fatal(err)
	}
	adminTok, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"keygate-admin-plugin"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	admin := env.with("VAULT_TOKEN", adminTok.Auth.ClientToken)
	cliKey := add(issue(t, team, "orders", nil))
	everywhere("before keys revoke", cliKey, 200)
	mustCLI(t, admin, "keys", "revoke", cliKey.id, "--reason", "leaked")
	everywhere("after keygate keys revoke", cliKey, 401)
	if out := mustCLI(t, admin, "keys", "show", cliKey.id); !containsAll(out, "revoked", "leaked") {
		t.Errorf("keys show after revoke: %s", redact(out))
	}
	created := createKey(t, admin, "--tenant", "globex", "--scopes", "billing:read")
	add(engineKey{id: created.ID, key: created.Key})
	everywhere("created by keygate keys create", engineKey{key: created.Key}, 200)
	if out := mustCLI(t, admin, "keys", "list"); !strings.Contains(out, created.ID) || !strings.Contains(out, cliKey.id) {
		t.Errorf("keys list lacks the keys: %s", redact(out))
	}

	// The engine's rotation: the new key works at once, the old one until
	// its grace ends.
	old := add(issue(t, team, "orders", nil))
	sec, err := root.Logical().Write("keygate/keys/"+old.id+"/rotate", map[string]any{"grace": "2s"})
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	next := add(engineKey{id: fmt.Sprint(sec.Data["id"]), key: fmt.Sprint(sec.Data["key"])})
	everywhere("the rotated-to key", next, 200)
	everywhere("the old key in its grace", old, 200)
	time.Sleep(2 * time.Second)
	everywhere("the old key after its grace", old, 401)

	// The engine's import: a legacy key is found by its hash.
	legacy := "legacy-" + fmt.Sprint(time.Now().UnixNano()) + "-0123456789abcdef"
	add(engineKey{key: legacy})
	if _, err := root.Logical().Write("keygate/import", map[string]any{
		"file": "keys:\n  - key: " + legacy + "\n    tenant: acme\n    scopes: [orders:read]\n"}); err != nil {
		t.Fatalf("import: %v", err)
	}
	everywhere("an imported key", engineKey{key: legacy}, 200)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
