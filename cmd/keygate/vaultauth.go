package main

import (
	"errors"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/vault"
)

// vaultAuthFlags select how keygate logs in to Vault and how it reaches
// it over TLS.
type vaultAuthFlags struct {
	method       string
	tokenFile    string
	roleID       string
	secretIDFile string
	appRoleMount string
	k8sRole      string
	k8sJWTFile   string
	k8sMount     string
	caCert       string
	clientCert   string
	clientKey    string
}

// secretIDEnv holds an AppRole secret id (there is no flag for it: a flag
// value shows in ps). --vault-approle-secret-id-file is preferred.
const secretIDEnv = "KEYGATE_VAULT_APPROLE_SECRET_ID"

func (f *vaultAuthFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.method, "vault-auth", vault.AuthToken, `Vault auth method: "token", "approle" or "kubernetes"`)
	docs(fs, "vault-auth", "", "Vault authentication|#vault-authentication")
	fs.StringVar(&f.tokenFile, "vault-token-file", "", "file holding the token, used instead of VAULT_TOKEN; re-read every 5 s when it changes, "+
		"and at once on a 403 (e.g. kept fresh by Vault Agent)")
	fs.StringVar(&f.roleID, "vault-approle-role-id", "", `AppRole role id (required for "approle")`)
	fs.StringVar(&f.secretIDFile, "vault-approle-secret-id-file", "", "file holding the AppRole secret id, read at each login (or set "+secretIDEnv+")")
	fs.StringVar(&f.appRoleMount, "vault-approle-mount", vault.DefaultAppRoleMount, "AppRole auth mount path")
	fs.StringVar(&f.k8sRole, "vault-k8s-role", "", `Vault role (required for "kubernetes")`)
	fs.StringVar(&f.k8sJWTFile, "vault-k8s-jwt-file", vault.DefaultJWTFile, "service-account token, read at each login")
	fs.StringVar(&f.k8sMount, "vault-k8s-mount", vault.DefaultKubernetesPath, "Kubernetes auth mount path")
	fs.StringVar(&f.caCert, "vault-ca-cert", "", "PEM CA file to verify Vault's certificate")
	docs(fs, "vault-ca-cert", `"VAULT_CACERT", else system roots`)
	fs.StringVar(&f.clientCert, "vault-client-cert", "", "PEM client certificate for mutual TLS to Vault (with --vault-client-key)")
	docs(fs, "vault-client-cert", `"VAULT_CLIENT_CERT"`)
	fs.StringVar(&f.clientKey, "vault-client-key", "", "PEM key of --vault-client-cert")
	docs(fs, "vault-client-key", `"VAULT_CLIENT_KEY"`)
}

// apply fills cfg's token, auth and TLS fields. VAULT_TOKEN is used only
// by the token method without --vault-token-file.
func (f *vaultAuthFlags) apply(cfg *vault.Config, e *env) {
	a := vault.AuthConfig{Method: f.method, TokenFile: f.tokenFile, RoleID: f.roleID, Role: f.k8sRole}
	switch f.method {
	case vault.AuthToken:
		if f.tokenFile == "" {
			cfg.Token = e.getenv("VAULT_TOKEN")
		}
	case vault.AuthAppRole:
		a.Mount, a.SecretIDFile = f.appRoleMount, f.secretIDFile
		a.SecretID = e.getenv(secretIDEnv)
	case vault.AuthKubernetes:
		a.Mount, a.JWTFile = f.k8sMount, f.k8sJWTFile
	}
	cfg.Auth = a
	cfg.CACert, cfg.ClientCert, cfg.ClientKey = f.caCert, f.clientCert, f.clientKey
}

// flagErrors renames vault.Config fields in err to the flags and
// environment variables that set them (a flag set from its KEYGATE_*
// variable by that variable).
func (f *vaultAuthFlags) flagErrors(err error, e *env) error {
	var errs []error
	name := func(field string) string {
		return flagRef.ReplaceAllStringFunc(f.flagName(field), func(flag string) string { return e.flagName(flag[2:]) })
	}
	for _, err := range unjoin(err) {
		var ce *vault.ConfigError
		if !errors.As(err, &ce) {
			errs = append(errs, err)
			continue
		}
		problem := ce.Problem
		for _, field := range []string{"auth.method", "auth.token_file", "auth.secret_id_file", "auth.secret_id", "auth.min_backoff"} {
			problem = strings.ReplaceAll(problem, field, name(field))
		}
		errs = append(errs, errors.New(name(ce.Field)+": "+problem))
	}
	return errors.Join(errs...)
}

func (f *vaultAuthFlags) flagName(field string) string {
	names := map[string]string{
		"addr": "VAULT_ADDR", "namespace": "VAULT_NAMESPACE", "mount": "--vault-mount",
		"base_path": "--vault-base-path", "timeout": "--vault-timeout",
		"token": "VAULT_TOKEN (or --vault-token-file)", "auth.method": "--vault-auth",
		"auth.token_file": "--vault-token-file", "auth.role_id": "--vault-approle-role-id",
		"auth.secret_id": secretIDEnv, "auth.secret_id_file": "--vault-approle-secret-id-file",
		"auth.role": "--vault-k8s-role", "auth.jwt_file": "--vault-k8s-jwt-file",
		"ca_cert": "--vault-ca-cert", "client_cert": "--vault-client-cert/--vault-client-key",
		"client_key": "--vault-client-key",
	}
	if field == "auth.mount" && f.method == vault.AuthKubernetes {
		return "--vault-k8s-mount"
	}
	if field == "auth.mount" {
		return "--vault-approle-mount"
	}
	if n, ok := names[field]; ok {
		return n
	}
	return "vault " + strings.ReplaceAll(field, "_", "-")
}

// flagRef is a flag named in flagName's text.
var flagRef = regexp.MustCompile(`--[a-z0-9-]+`)

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
