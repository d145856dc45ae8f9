package main

import (
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

// Vault auth flag problems are reported at once, each naming its flag.
func TestVaultAuthFlagErrors(t *testing.T) {
	env := envMap{"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "hvs.x"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown method", []string{"--vault-auth", "ldap"}, []string{"--vault-auth: \"ldap\""}},
		{"approle without role id, half a client cert", []string{"--vault-auth", "approle", "--vault-client-cert", "c.pem"},
			[]string{"--vault-approle-role-id: required", "--vault-client-cert/--vault-client-key"}},
		{"kubernetes bad mount, no role", []string{"--vault-auth", "kubernetes", "--vault-k8s-mount", "/k8s/"},
			[]string{"--vault-k8s-role: required", "--vault-k8s-mount:"}},
		{"role id with token", []string{"--vault-approle-role-id", "r"},
			[]string{`--vault-approle-role-id: only with --vault-auth "approle"`}},
		{"missing CA file", []string{"--vault-ca-cert", "/nonexistent/ca.pem"}, []string{"--vault-ca-cert: stat /nonexistent/ca.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cli(t, env, append([]string{"serve", "--grpc-addr", "127.0.0.1:0"}, tt.args...)...)
			if err == nil {
				t.Fatal("serve started with a bad configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// keys list with AppRole from flags and the secret id from the
// environment: the one-shot command logs in on its first request.
func TestKeysListAppRole(t *testing.T) {
	v := vaulttest.Server(t)
	root := v.Client(t)
	base := "kg-approle-cli"
	pol := `path "secret/metadata/` + base + `/keys" { capabilities = ["list"] }`
	if err := root.Sys().PutPolicy("kg-approle-cli", pol); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle-cli", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Sys().DisableAuth("approle-cli") })
	if _, err := root.Logical().Write("auth/approle-cli/role/kg", map[string]any{"token_policies": "kg-approle-cli"}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().Read("auth/approle-cli/role/kg/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := root.Logical().Write("auth/approle-cli/role/kg/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	env := envMap{"VAULT_ADDR": v.Addr, "KEYGATE_VAULT_BASE_PATH": base,
		"KEYGATE_VAULT_AUTH": "approle", "KEYGATE_VAULT_APPROLE_MOUNT": "approle-cli",
		"KEYGATE_VAULT_APPROLE_ROLE_ID": rid.Data["role_id"].(string),
		secretIDEnv:                     sid.Data["secret_id"].(string)}
	out, stderr, err := cli(t, env, "keys", "list")
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, stderr)
	}
	if strings.Contains(out+stderr, sid.Data["secret_id"].(string)) {
		t.Error("the output contains the secret id")
	}
}
