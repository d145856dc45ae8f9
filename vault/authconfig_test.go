package vault

import (
	"errors"
	"strings"
	"testing"
)

var authValidateTests = []struct {
	name string
	edit func(*Config)
	want []string // one substring per expected problem; none means valid
}{
	{"static token", func(*Config) {}, nil},
	{"token file", func(c *Config) { c.Token, c.Auth.TokenFile = "", "/run/token" }, nil},
	{"approle", func(c *Config) {
		c.Token, c.Auth = "", AuthConfig{Method: AuthAppRole, RoleID: "r", SecretIDFile: "/run/sid"}
	}, nil},
	{"approle without secret id", func(c *Config) { c.Token, c.Auth = "", AuthConfig{Method: AuthAppRole, RoleID: "r"} }, nil},
	{"kubernetes", func(c *Config) { c.Token, c.Auth = "", AuthConfig{Method: AuthKubernetes, Role: "keygate"} }, nil},
	{"tls", func(c *Config) { c.CACert, c.ClientCert, c.ClientKey = "ca.pem", "c.pem", "k.pem" }, nil},
	{"unknown method", func(c *Config) { c.Auth.Method = "ldap" }, []string{`vault: auth.method: "ldap"`}},
	{"token and token file", func(c *Config) { c.Auth.TokenFile = "/t" }, []string{"vault: token: set token or auth.token_file"}},
	{"no token", func(c *Config) { c.Token = "" }, []string{"vault: token: required"}},
	{"token with approle", func(c *Config) { c.Auth = AuthConfig{Method: AuthAppRole, RoleID: "r"} }, []string{"vault: token: must be empty"}},
	{"approle without role id", func(c *Config) { c.Token, c.Auth = "", AuthConfig{Method: AuthAppRole} }, []string{"vault: auth.role_id: required"}},
	{"approle both secret ids", func(c *Config) {
		c.Token, c.Auth = "", AuthConfig{Method: AuthAppRole, RoleID: "r", SecretID: "s3cr3t-value", SecretIDFile: "/f"}
	}, []string{"vault: auth.secret_id: set auth.secret_id or auth.secret_id_file"}},
	{"secret id with newline", func(c *Config) {
		c.Token, c.Auth = "", AuthConfig{Method: AuthAppRole, RoleID: "r", SecretID: "s3cr3t-value\n"}
	}, []string{"vault: auth.secret_id: contains whitespace"}},
	{"bad mount", func(c *Config) {
		c.Token, c.Auth = "", AuthConfig{Method: AuthAppRole, RoleID: "r", Mount: "/approle"}
	}, []string{"vault: auth.mount:"}},
	{"kubernetes without role", func(c *Config) { c.Token, c.Auth = "", AuthConfig{Method: AuthKubernetes} }, []string{"vault: auth.role: required"}},
	{"role id with token method", func(c *Config) { c.Auth.RoleID = "r" }, []string{`vault: auth.role_id: only with auth.method "approle"`}},
	{"k8s role with approle", func(c *Config) {
		c.Token, c.Auth = "", AuthConfig{Method: AuthAppRole, RoleID: "r", Role: "x"}
	}, []string{`vault: auth.role: only with auth.method "kubernetes"`}},
	{"backoff", func(c *Config) { c.Auth.MinBackoff, c.Auth.MaxBackoff = -1, -2 }, []string{
		"vault: auth.min_backoff: must be > 0", "vault: auth.max_backoff: must be >= auth.min_backoff"}},
	{"client cert without key", func(c *Config) { c.ClientCert = "c.pem" }, []string{"vault: client_cert: client_cert and client_key go together"}},
	{"several at once", func(c *Config) {
		c.Token, c.Auth = "", AuthConfig{Method: AuthAppRole, TokenFile: "/t"}
		c.ClientKey = "k.pem"
	}, []string{"vault: auth.token_file: only with", "vault: auth.role_id: required", "vault: client_cert:"}},
}

func TestAuthConfigValidate(t *testing.T) {
	for _, tt := range authValidateTests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Addr: "https://vault.example.com:8200", Token: "hvs.abc"}
			tt.edit(&c)
			c.SetDefaults()
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tt.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", n, len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
			for _, secret := range []string{"hvs.abc", c.Auth.SecretID} {
				if secret != "" && strings.Contains(err.Error(), strings.TrimSpace(secret)) {
					t.Errorf("Validate error %q contains a secret", err)
				}
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field == "" {
				t.Errorf("Validate error is not a *ConfigError: %T", err)
			}
		})
	}
}

func TestAuthDefaults(t *testing.T) {
	c := Config{Auth: AuthConfig{Method: AuthKubernetes}}
	c.SetDefaults()
	if c.Auth.Mount != "kubernetes" || c.Auth.JWTFile != DefaultJWTFile || c.Auth.MinBackoff != DefaultMinBackoff || c.Auth.MaxBackoff != DefaultMaxBackoff {
		t.Errorf("kubernetes defaults = %+v", c.Auth)
	}
	c = Config{Auth: AuthConfig{Method: AuthAppRole}}
	c.SetDefaults()
	if c.Auth.Mount != "approle" || c.Auth.JWTFile != "" {
		t.Errorf("approle defaults = %+v", c.Auth)
	}
	c = Config{}
	c.SetDefaults()
	if c.Auth.Method != AuthToken || c.Auth.Mount != "" || c.Auth.TokenFilePoll != DefaultTokenFilePoll {
		t.Errorf("token defaults = %+v", c.Auth)
	}
}
