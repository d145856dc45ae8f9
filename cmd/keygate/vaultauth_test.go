package main

import (
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/vault"
)

// Vault auth flag problems are reported at once, each naming its flag, the
// KEYGATE_* variable that set it, or the Vault variable keygate read.
func TestVaultAuthFlagErrors(t *testing.T) {
	base := envMap{"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "hvs.x"}
	tests := []struct {
		name string
		env  envMap
		args []string
		want []string
	}{
		{"unknown method", base, []string{"--vault-auth", "ldap"}, []string{"--vault-auth: \"ldap\""}},
		{"approle without role id, half a client cert", base, []string{"--vault-auth", "approle", "--vault-client-cert", "c.pem"},
			[]string{"--vault-approle-role-id: required", "--vault-client-cert and --vault-client-key: give both"}},
		{"kubernetes bad mount, no role", base, []string{"--vault-auth", "kubernetes", "--vault-k8s-mount", "/k8s/"},
			[]string{"--vault-k8s-role: required", "--vault-k8s-mount:"}},
		{"role id with token", base, []string{"--vault-approle-role-id", "r"},
			[]string{`--vault-approle-role-id: only with --vault-auth "approle"`}},
		{"missing CA file", base, []string{"--vault-ca-cert", "/nonexistent/ca.pem"}, []string{"--vault-ca-cert: stat /nonexistent/ca.pem"}},
		{"zero timeout and mounts", base, []string{"--vault-timeout", "0", "--vault-mount", "", "--vault-base-path", ""},
			[]string{"--vault-timeout: must be > 0, got 0s", "--vault-mount: required", "--vault-base-path: required"}},
		{"zero approle mount", base, []string{"--vault-auth", "approle", "--vault-approle-role-id", "r", "--vault-approle-mount", ""},
			[]string{"--vault-approle-mount: required"}},
		{"zero k8s mount and JWT file", base, []string{"--vault-auth", "kubernetes", "--vault-k8s-role", "r", "--vault-k8s-mount", "",
			"--vault-k8s-jwt-file", ""}, []string{"--vault-k8s-mount: required", "--vault-k8s-jwt-file: required"}},
		{"variables name what set them", base.with("KEYGATE_VAULT_AUTH", "approle", "KEYGATE_VAULT_APPROLE_MOUNT", "/x/"), nil,
			[]string{`--vault-approle-role-id: required with KEYGATE_VAULT_AUTH "approle"`, "KEYGATE_VAULT_APPROLE_MOUNT: "}},
		{"Vault variables", envMap{"VAULT_ADDR": "vault:8200", "VAULT_NAMESPACE": "a b"}, nil,
			[]string{"VAULT_ADDR: ", "VAULT_TOKEN: required (or --vault-token-file)", "VAULT_NAMESPACE: "}},
		{"secret id twice", base.with(secretIDEnv, "s3cr3t-id"), []string{"--vault-auth", "approle", "--vault-approle-role-id", "r",
			"--vault-approle-secret-id-file", "/run/sid"}, []string{secretIDEnv + " and --vault-approle-secret-id-file: give one, not both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cli(t, tt.env, append([]string{"serve", "--grpc-addr", "127.0.0.1:0"}, tt.args...)...)
			if err == nil {
				t.Fatal("serve started with a bad configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", n, len(tt.want), err)
			}
			for _, secret := range []string{"hvs.x", "s3cr3t-id"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error contains a secret:\n%v", err)
				}
			}
		})
	}
}

// The settings of the auth methods not chosen cause no error, even
// emptied: the command gets past the configuration to Vault (which does
// not answer on 127.0.0.1:1).
func TestVaultOtherMethodSettingsIgnored(t *testing.T) {
	env := envMap{"VAULT_ADDR": "http://127.0.0.1:1", secretIDEnv: "s3cr3t-id"}
	for name, args := range map[string][]string{
		"approle":    {"--vault-auth", "approle", "--vault-approle-role-id", "r", "--vault-k8s-mount", "", "--vault-k8s-jwt-file", ""},
		"kubernetes": {"--vault-auth", "kubernetes", "--vault-k8s-role", "r", "--vault-approle-mount", ""},
		"token file": {"--vault-token-file", "/nonexistent/token", "--vault-approle-mount", "", "--vault-k8s-jwt-file", ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := cli(t, env, append([]string{"keys", "list", "--timeout", "10s"}, args...)...)
			if err == nil || strings.Contains(err.Error(), "--vault") || !strings.Contains(err.Error(), "vault: ") {
				t.Errorf("keys list = %v, want a Vault request error, not a configuration error", err)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t-id") {
				t.Errorf("the error contains the secret id:\n%v", err)
			}
		})
	}
}

// The Vault flags are bound to a vault.Config whose defaults are
// vault.DefaultConfig's; each flag sets its field.
func TestStoreFlagsBindVaultConfig(t *testing.T) {
	var f storeFlags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if f.vault != vault.DefaultConfig() {
		t.Errorf("the flags' defaults differ from vault.DefaultConfig():\n%+v\nwant\n%+v", f.vault, vault.DefaultConfig())
	}
	want := vault.DefaultConfig()
	want.Mount, want.BasePath, want.Timeout = "kv", "a/b", 3*time.Second
	want.CACert, want.ClientCert, want.ClientKey = "ca.pem", "c.pem", "k.pem"
	want.Auth.Method, want.Auth.TokenFile, want.Auth.RoleID, want.Auth.SecretIDFile = "kubernetes", "/t", "rid", "/sid"
	want.Auth.AppRoleMount, want.Auth.Role, want.Auth.JWTFile, want.Auth.KubernetesMount = "ar", "kr", "/jwt", "k8s"
	err := fs.Parse([]string{"--vault-mount", "kv", "--vault-base-path", "a/b", "--vault-timeout", "3s",
		"--vault-ca-cert", "ca.pem", "--vault-client-cert", "c.pem", "--vault-client-key", "k.pem",
		"--vault-auth", "kubernetes", "--vault-token-file", "/t", "--vault-approle-role-id", "rid", "--vault-approle-secret-id-file", "/sid",
		"--vault-approle-mount", "ar", "--vault-k8s-role", "kr", "--vault-k8s-jwt-file", "/jwt", "--vault-k8s-mount", "k8s"})
	if err != nil {
		t.Fatal(err)
	}
	if f.vault != want {
		t.Errorf("after the flags:\n%+v\nwant\n%+v", f.vault, want)
	}
}

// vaultConfig reads VAULT_ADDR and VAULT_NAMESPACE, and VAULT_TOKEN and the
// AppRole secret id only for the methods that use them.
func TestVaultConfigFromEnv(t *testing.T) {
	vars := envMap{"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_NAMESPACE": "team", "VAULT_TOKEN": "hvs.x", secretIDEnv: "s3cr3t-id"}
	tests := []struct {
		name              string
		method, tokenFile string
		token, secretID   string
	}{
		{"token", vault.AuthToken, "", "hvs.x", ""},
		{"token file", vault.AuthToken, "/t", "", ""},
		{"approle", vault.AuthAppRole, "", "", "s3cr3t-id"},
		{"kubernetes", vault.AuthKubernetes, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := storeFlags{vault: vault.DefaultConfig()}
			f.vault.Auth.Method, f.vault.Auth.TokenFile = tt.method, tt.tokenFile
			cfg := f.vaultConfig(&env{getenv: vars.get})
			if cfg.Addr != "http://127.0.0.1:8200" || cfg.Namespace != "team" {
				t.Errorf("addr %q, namespace %q", cfg.Addr, cfg.Namespace)
			}
			if cfg.Token != tt.token || cfg.Auth.SecretID != tt.secretID {
				t.Errorf("token set %v (want %v), secret id set %v (want %v)", cfg.Token != "", tt.token != "",
					cfg.Auth.SecretID != "", tt.secretID != "")
			}
			if f.vault.Addr != "" || f.vault.Token != "" || f.vault.Auth.SecretID != "" {
				t.Error("vaultConfig changed the flags' Config")
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
