package vault

import "testing"

// Each method's required settings; the settings of the other methods,
// defaults included, cause no error.
var authValidateTests = []validateTest{
	{"static token", func(*Config) {}, nil},
	{"token file", func(c *Config) { c.Token, c.Auth.TokenFile = "", "/run/token" }, nil},
	{"approle", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.RoleID, c.Auth.SecretIDFile = "", AuthAppRole, "r", "/run/sid"
	}, nil},
	{"approle without secret id", func(c *Config) { c.Token, c.Auth.Method, c.Auth.RoleID = "", AuthAppRole, "r" }, nil},
	{"kubernetes", func(c *Config) { c.Token, c.Auth.Method, c.Auth.Role = "", AuthKubernetes, "keygate" }, nil},
	{"tls", func(c *Config) { c.CACert, c.ClientCert, c.ClientKey = "ca.pem", "c.pem", "k.pem" }, nil},

	{"approle ignores kubernetes settings", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.RoleID = "", AuthAppRole, "r"
		c.Auth.KubernetesMount, c.Auth.JWTFile, c.Auth.TokenFilePoll = "", "", 0
	}, nil},
	{"kubernetes ignores approle settings", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.Role = "", AuthKubernetes, "keygate"
		c.Auth.AppRoleMount, c.Auth.TokenFilePoll = "/bad/", 0
	}, nil},
	{"token ignores login settings", func(c *Config) {
		c.Auth.AppRoleMount, c.Auth.KubernetesMount, c.Auth.JWTFile, c.Auth.TokenFilePoll = "", "", "", 0
	}, nil},

	{"unknown method", func(c *Config) { c.Auth.Method = "ldap" }, []string{`vault-auth: "ldap"`}},
	{"empty method is no default", func(c *Config) { c.Auth.Method = "" }, []string{`vault-auth: "": want "token", "approle" or "kubernetes"`}},
	{"token and token file", func(c *Config) { c.Auth.TokenFile = "/t" }, []string{"vault-token and vault-token-file: give one, not both"}},
	{"no token", func(c *Config) { c.Token = "" }, []string{"vault-token: required (or --vault-token-file)"}},
	{"token file with zero poll", func(c *Config) { c.Token, c.Auth.TokenFile, c.Auth.TokenFilePoll = "", "/t", 0 },
		[]string{"vault-token-file-poll: must be > 0, got 0s"}},
	{"token with approle", func(c *Config) { c.Auth.Method, c.Auth.RoleID = AuthAppRole, "r" }, []string{"vault-token: must be empty"}},
	{"approle without role id", func(c *Config) { c.Token, c.Auth.Method = "", AuthAppRole },
		[]string{`vault-approle-role-id: required with --vault-auth "approle"`}},
	{"approle both secret ids", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.RoleID, c.Auth.SecretID, c.Auth.SecretIDFile = "", AuthAppRole, "r", "s3cr3t-value", "/f"
	}, []string{"vault-approle-secret-id and vault-approle-secret-id-file: give one, not both"}},
	{"secret id with newline", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.RoleID, c.Auth.SecretID = "", AuthAppRole, "r", "s3cr3t-value\n"
	}, []string{"vault-approle-secret-id: contains whitespace"}},
	{"approle bad mount", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.RoleID, c.Auth.AppRoleMount = "", AuthAppRole, "r", "/approle"
	}, []string{"vault-approle-mount:"}},
	{"approle zero mount", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.RoleID, c.Auth.AppRoleMount = "", AuthAppRole, "r", ""
	}, []string{"vault-approle-mount: required"}},
	{"kubernetes without role", func(c *Config) { c.Token, c.Auth.Method = "", AuthKubernetes },
		[]string{`vault-k8s-role: required with --vault-auth "kubernetes"`}},
	{"kubernetes zero mount and JWT file", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.Role, c.Auth.KubernetesMount, c.Auth.JWTFile = "", AuthKubernetes, "keygate", "", ""
	}, []string{"vault-k8s-mount: required", `vault-k8s-jwt-file: required with --vault-auth "kubernetes"`}},
	{"role id with token method", func(c *Config) { c.Auth.RoleID = "r" }, []string{`vault-approle-role-id: only with --vault-auth "approle"`}},
	{"secret id file with kubernetes", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.Role, c.Auth.SecretIDFile = "", AuthKubernetes, "keygate", "/f"
	}, []string{`vault-approle-secret-id-file: only with --vault-auth "approle"`}},
	{"k8s role with approle", func(c *Config) { c.Token, c.Auth.Method, c.Auth.RoleID, c.Auth.Role = "", AuthAppRole, "r", "x" },
		[]string{`vault-k8s-role: only with --vault-auth "kubernetes"`}},
	{"backoff", func(c *Config) { c.Auth.MinBackoff, c.Auth.MaxBackoff = -1, -2 }, []string{
		"vault-min-backoff: must be > 0", "vault-max-backoff: -2ns: must be >= --vault-min-backoff"}},
	{"zero backoff", func(c *Config) { c.Auth.MinBackoff = 0 }, []string{"vault-min-backoff: must be > 0, got 0s"}},
	{"client cert without key", func(c *Config) { c.ClientCert = "c.pem" }, []string{"vault-client-cert and vault-client-key: give both or neither"}},
	{"several at once", func(c *Config) {
		c.Token, c.Auth.Method, c.Auth.TokenFile, c.ClientKey = "", AuthAppRole, "/t", "k.pem"
	}, []string{"vault-token-file: only with", "vault-approle-role-id: required", "vault-client-cert and vault-client-key"}},
}

func TestAuthConfigValidate(t *testing.T) {
	runValidateTests(t, authValidateTests)
}

func TestLoginMount(t *testing.T) {
	a := DefaultConfig().Auth
	for method, want := range map[string]string{AuthAppRole: "approle", AuthKubernetes: "kubernetes"} {
		a.Method = method
		if got := a.loginMount(); got != want {
			t.Errorf("%s: loginMount() = %q, want %q", method, got, want)
		}
	}
	a.AppRoleMount, a.KubernetesMount = "ar", "k8s"
	for method, want := range map[string]string{AuthAppRole: "ar", AuthKubernetes: "k8s"} {
		a.Method = method
		if got := a.loginMount(); got != want {
			t.Errorf("%s with set mounts: loginMount() = %q, want %q", method, got, want)
		}
	}
}
