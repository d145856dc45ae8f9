package main

import (
	"errors"
	"fmt"
	"regexp"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/vault"
)

// The Vault variables keygate reads itself, as the vault CLI does.
// VAULT_CACERT, VAULT_CLIENT_CERT and VAULT_CLIENT_KEY are read by vault/api
// for what --vault-ca-cert and --vault-client-cert/-key leave empty.
const (
	envVaultAddr      = vaultapi.EnvVaultAddress
	envVaultToken     = vaultapi.EnvVaultToken
	envVaultNamespace = vaultapi.EnvVaultNamespace
)

// secretIDEnv holds an AppRole secret id (there is no flag for it: a flag
// value shows in ps). --vault-approle-secret-id-file is preferred.
const secretIDEnv = "KEYGATE_VAULT_APPROLE_SECRET_ID"

// vaultEnvNames are the vault.Config settings read only from the
// environment, by the names vault.Config's errors give them, and their
// variables.
var vaultEnvNames = map[string]string{
	"vault-addr": envVaultAddr, "vault-token": envVaultToken, "vault-namespace": envVaultNamespace,
	"vault-approle-secret-id": secretIDEnv,
}

// registerVaultAuth binds the flags that say how keygate logs in to Vault
// and reaches it over TLS to c's fields, their defaults c's values.
func registerVaultAuth(fs *pflag.FlagSet, c *vault.Config) {
	a := &c.Auth
	fs.StringVar(&a.Method, "vault-auth", a.Method, `Vault auth method: "token", "approle" or "kubernetes"`)
	docs(fs, "vault-auth", "", "Vault authentication|#vault-authentication")
	fs.StringVar(&a.TokenFile, "vault-token-file", a.TokenFile, fmt.Sprintf("file holding the token, used instead of VAULT_TOKEN; "+
		"re-read every %s when it changes, and at once on a 403 (e.g. kept fresh by Vault Agent)", a.TokenFilePoll))
	fs.StringVar(&a.RoleID, "vault-approle-role-id", a.RoleID, `AppRole role id (required for "approle")`)
	fs.StringVar(&a.SecretIDFile, "vault-approle-secret-id-file", a.SecretIDFile, "file holding the AppRole secret id, read at each login (or set "+secretIDEnv+")")
	fs.StringVar(&a.AppRoleMount, "vault-approle-mount", a.AppRoleMount, "AppRole auth mount path")
	fs.StringVar(&a.Role, "vault-k8s-role", a.Role, `Vault role (required for "kubernetes")`)
	fs.StringVar(&a.JWTFile, "vault-k8s-jwt-file", a.JWTFile, "service-account token, read at each login")
	fs.StringVar(&a.KubernetesMount, "vault-k8s-mount", a.KubernetesMount, "Kubernetes auth mount path")
	fs.StringVar(&c.CACert, "vault-ca-cert", c.CACert, "PEM CA file to verify Vault's certificate")
	docs(fs, "vault-ca-cert", `"VAULT_CACERT", else system roots`)
	fs.StringVar(&c.ClientCert, "vault-client-cert", c.ClientCert, "PEM client certificate for mutual TLS to Vault (with --vault-client-key)")
	docs(fs, "vault-client-cert", `"VAULT_CLIENT_CERT"`)
	fs.StringVar(&c.ClientKey, "vault-client-key", c.ClientKey, "PEM key of --vault-client-cert")
	docs(fs, "vault-client-key", `"VAULT_CLIENT_KEY"`)
}

// vaultConfig is the flags' vault.Config with the settings read from the
// environment: VAULT_ADDR, VAULT_NAMESPACE, VAULT_TOKEN (only for the token
// method without --vault-token-file) and the AppRole secret id (only for
// approle). Settings of the methods not chosen are left as the flags set
// them: vault.Config ignores them.
func (f *storeFlags) vaultConfig(e *env) vault.Config {
	cfg := f.vault
	cfg.Addr, cfg.Namespace = e.getenv(envVaultAddr), e.getenv(envVaultNamespace)
	switch cfg.Auth.Method {
	case vault.AuthToken:
		if cfg.Auth.TokenFile == "" {
			cfg.Token = e.getenv(envVaultToken)
		}
	case vault.AuthAppRole:
		cfg.Auth.SecretID = e.getenv(secretIDEnv)
	}
	return cfg
}

// vaultErrors names the settings in vault.Config's problems as the user
// set them: the flag, or the KEYGATE_* variable that set it, or for a
// setting read only from the environment its variable. Flags named in a
// problem's text are renamed the same way. The result holds no
// *field.Error, so that no caller renames it again.
func vaultErrors(err error, e *env) error {
	var out []error
	for _, p := range field.Split(err) {
		var fe *field.Error
		if !errors.As(p, &fe) {
			out = append(out, p)
			continue
		}
		named := &field.Error{Names: make([]string, len(fe.Names))}
		for i, n := range fe.Names {
			if v, ok := vaultEnvNames[n]; ok {
				named.Names[i] = v
			} else {
				named.Names[i] = e.flagName(n)
			}
		}
		named.Problem = flagRef.ReplaceAllStringFunc(fe.Problem, func(flag string) string { return e.flagName(flag[2:]) })
		out = append(out, errors.New(named.Error()))
	}
	return errors.Join(out...)
}

// flagRef is a flag named in a problem's text.
var flagRef = regexp.MustCompile(`--[a-z0-9-]+`)
