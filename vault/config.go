// Package vault is keygate's Vault client: key records and peppers in a KV
// v2 secrets engine, read on the hot path with a short timeout and no client
// retries, and written by the admin CLI with check-and-set.
package vault

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by SetDefaults.
const (
	DefaultMount    = "secret"
	DefaultBasePath = "keygate"
	DefaultTimeout  = 2 * time.Second
)

// Config says where keygate's data lives in Vault and how to reach it.
// Records are stored at <Mount>/data/<BasePath>/keys/<id>, the peppers at
// <Mount>/data/<BasePath>/pepper.
type Config struct {
	// Addr is the Vault server URL, e.g. "https://vault.example.com:8200".
	// Required; no default (the vault/api VAULT_ADDR default is not used).
	Addr string
	// Token authenticates to Vault when Auth.Method is "token" and
	// Auth.TokenFile is empty; then it is required. No default here (main
	// may fill it from VAULT_TOKEN). It never appears in errors.
	Token string
	// Mount is the path of the KV v2 secrets engine, one segment without
	// slashes. Default "secret".
	Mount string
	// BasePath is the folder under the mount holding keygate's entries;
	// it may have several segments ("team/keygate"). Default "keygate".
	BasePath string
	// Timeout bounds each request to Vault, including reading the body.
	// Default 2s. The hot path should also pass a context deadline shorter
	// than Envoy's ext_authz timeout.
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

// SetDefaults fills the zero fields that have defaults.
func (c *Config) SetDefaults() {
	if c.Mount == "" {
		c.Mount = DefaultMount
	}
	if c.BasePath == "" {
		c.BasePath = DefaultBasePath
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.Auth.setDefaults()
}

// Validate reports every problem at once, each naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if msg := checkAddr(c.Addr); msg != "" {
		bad("addr", "%s", msg)
	}
	c.checkToken(bad)
	c.Auth.check(bad)
	if (c.ClientCert == "") != (c.ClientKey == "") {
		bad("client_cert", "client_cert and client_key go together: set both or neither")
	}
	switch {
	case c.Mount == "":
		bad("mount", "required")
	case strings.Contains(c.Mount, "/"):
		bad("mount", "must not contain %q", "/")
	case !validSegment(c.Mount):
		bad("mount", "%q: want letters, digits and . _ - only", c.Mount)
	}
	if msg := checkBasePath(c.BasePath); msg != "" {
		bad("base_path", "%s", msg)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be > 0")
	}
	if strings.ContainsFunc(c.Namespace, isSpaceOrControl) {
		bad("namespace", "%q contains whitespace or control characters", c.Namespace)
	}
	return errors.Join(errs...)
}

// ConfigError is one problem Validate found, naming the Config field
// (dotted for Auth fields: "auth.role_id") so callers can name their own
// flag instead.
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string { return "vault: " + e.Field + ": " + e.Problem }

// checkToken: a static token is required with the token method unless a
// token file is used, and forbidden with the others.
func (c Config) checkToken(bad func(field, format string, args ...any)) {
	method := c.Auth.Method
	switch {
	case (method == "" || method == AuthToken) && c.Token == "" && c.Auth.TokenFile == "":
		bad("token", "required (or auth.token_file)")
	case c.Token != "" && c.Auth.TokenFile != "":
		bad("token", "set token or auth.token_file, not both")
	case c.Token != "" && c.Auth.usesLogin():
		bad("token", "must be empty with auth.method %q (keygate logs in)", method)
	case strings.ContainsFunc(c.Token, isSpaceOrControl):
		// Never print the token; a trailing newline from a file is the
		// usual cause.
		bad("token", "contains whitespace or control characters")
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

func checkBasePath(p string) string {
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
