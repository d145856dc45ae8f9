// Package vault is keygate's Vault client: key records and peppers in a KV
// v2 secrets engine, read on the hot path with a short timeout and no client
// retries, and written by the admin CLI with check-and-set.
package vault

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/field"
)

// Config says where keygate's data lives in Vault and how to reach it.
// Records are stored at <Mount>/data/<BasePath>/keys/<id>, the peppers at
// <Mount>/data/<BasePath>/pepper.
//
// Start from DefaultConfig: it is the one place the defaults are written
// (keygate's store flags take their defaults from it), and no field's zero
// value means "the default": New validates the Config and fills in nothing.
// Validate's errors name each field as the keygate flag that sets it is
// named, without the dashes ("vault-mount", "vault-approle-role-id"); the
// settings keygate reads only from the environment are "vault-addr",
// "vault-token", "vault-namespace" and "vault-approle-secret-id", and the
// ones no flag sets "vault-token-file-poll", "vault-min-backoff" and
// "vault-max-backoff". A problem that involves another field names it as a
// flag ("only with --vault-auth \"approle\"").
type Config struct {
	// Addr is the Vault server URL, e.g. "https://vault.example.com:8200".
	// Required; default "" (the vault/api VAULT_ADDR default is not used).
	Addr string
	// Token authenticates to Vault when Auth.Method is AuthToken and
	// Auth.TokenFile is empty; then it is required. Default "" (main may
	// fill it from VAULT_TOKEN). It never appears in errors.
	Token string
	// Mount is the path of the KV v2 secrets engine, one segment without
	// slashes. Default "secret".
	Mount string
	// BasePath is the folder under the mount holding keygate's entries;
	// it may have several segments ("team/keygate"). Default "keygate".
	// With the plugin, the folder under KVMount of the peppers, key use and
	// hot-key slots.
	BasePath string
	// Engine is where key records and the change journal live: EngineKV
	// (KV v2 at Mount/BasePath) or EnginePlugin (keygate's secrets engine
	// mounted at Mount). Default EngineKV.
	Engine string
	// KVMount is, with EnginePlugin, the KV v2 mount of the peppers, key
	// use and hot-key slots. Default "secret".
	KVMount string
	// Timeout bounds each request to Vault, including reading the body;
	// it must be > 0. Default 2s. The hot path should also pass a context
	// deadline shorter than Envoy's ext_authz timeout.
	Timeout time.Duration
	// Namespace is the Vault Enterprise namespace. Default "" (root).
	Namespace string
	// Auth says how keygate logs in and keeps its token fresh. Default:
	// the static Token.
	Auth AuthConfig
	// CACert is a PEM file of CA certificates to verify Vault's TLS
	// certificate with. Default "": VAULT_CACERT, else the system roots.
	CACert string
	// ClientCert and ClientKey are PEM files of a TLS client certificate
	// and its key, for Vault listeners that require one (and the cert auth
	// method). Both or neither. Default "": VAULT_CLIENT_CERT/_KEY.
	ClientCert string
	ClientKey  string
}

// DefaultConfig is keygate's Vault configuration when given no flags:
// everything but Addr and the credentials (Token, or an Auth login).
func DefaultConfig() Config {
	return Config{
		Mount:    "secret",
		BasePath: "keygate",
		Engine:   EngineKV,
		KVMount:  "secret",
		Timeout:  2 * time.Second,
		Auth: AuthConfig{
			Method:          AuthToken,
			TokenFilePoll:   5 * time.Second,
			AppRoleMount:    "approle",
			KubernetesMount: "kubernetes",
			JWTFile:         "/var/run/secrets/kubernetes.io/serviceaccount/token",
			MinBackoff:      500 * time.Millisecond,
			MaxBackoff:      30 * time.Second,
		},
	}
}

// Validate reports every problem at once, as *field.Error values named as
// Config's documentation says. It does not change c and does no I/O: New
// reports the TLS files it cannot load.
func (c Config) Validate() error {
	var l field.List
	if msg := checkAddr(c.Addr); msg != "" {
		l.Addf("vault-addr", "%s", msg)
	}
	c.checkToken(&l)
	c.Auth.check(&l)
	if (c.ClientCert == "") != (c.ClientKey == "") {
		l.Add("give both or neither", "vault-client-cert", "vault-client-key")
	}
	switch {
	case c.Mount == "":
		l.Addf("vault-mount", "required")
	case strings.Contains(c.Mount, "/"):
		l.Addf("vault-mount", "must not contain %q", "/")
	case !validSegment(c.Mount):
		l.Addf("vault-mount", "%q: want letters, digits and . _ - only", c.Mount)
	}
	switch c.Engine {
	case EngineKV:
	case EnginePlugin:
		if !validSegment(c.KVMount) || strings.Contains(c.KVMount, "/") {
			l.Addf("vault-kv-mount", "%q: want one path segment of letters, digits and . _ -", c.KVMount)
		}
	default:
		l.Addf("vault-engine", "%q: want %q or %q", c.Engine, EngineKV, EnginePlugin)
	}
	if msg := checkPath(c.BasePath); msg != "" {
		l.Addf("vault-base-path", "%s", msg)
	}
	if c.Timeout <= 0 {
		l.Addf("vault-timeout", "must be > 0, got %s", c.Timeout)
	}
	if strings.ContainsFunc(c.Namespace, isSpaceOrControl) {
		l.Addf("vault-namespace", "%q contains whitespace or control characters", c.Namespace)
	}
	return l.Err()
}

// checkToken: a static token is required with the token method unless a
// token file is used, and forbidden with the others.
func (c Config) checkToken(l *field.List) {
	method := c.Auth.Method
	switch {
	case method == AuthToken && c.Token == "" && c.Auth.TokenFile == "":
		l.Addf("vault-token", "required (or --vault-token-file)")
	case c.Token != "" && c.Auth.TokenFile != "":
		l.Add("give one, not both", "vault-token", "vault-token-file")
	case c.Token != "" && c.Auth.usesLogin():
		l.Addf("vault-token", "must be empty with --vault-auth %q (keygate logs in)", method)
	case strings.ContainsFunc(c.Token, isSpaceOrControl):
		// Never print the token; a trailing newline from a file is the
		// usual cause.
		l.Addf("vault-token", "contains whitespace or control characters")
	}
}

func checkAddr(addr string) string {
	if addr == "" {
		return "required"
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", addr)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q: want an http:// or https:// URL", addr)
	case u.Host == "":
		return fmt.Sprintf("%q has no host", addr)
	case u.User != nil:
		return "must not contain credentials"
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q must not have a query or fragment", addr)
	}
	return ""
}

// checkPath checks a path of one or more segments (BasePath, the auth
// mounts).
func checkPath(p string) string {
	if p == "" {
		return "required"
	}
	for seg := range strings.SplitSeq(p, "/") {
		if !validSegment(seg) {
			return fmt.Sprintf("%q: want segments of letters, digits and . _ - separated by single slashes, without a leading or trailing slash", p)
		}
	}
	return ""
}

// validSegment accepts one path segment: [A-Za-z0-9._-]+, not "." or "..".
func validSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}
