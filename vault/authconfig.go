package vault

import (
	"strings"
	"time"
)

// Auth methods for AuthConfig.Method.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// Defaults applied by Config.SetDefaults to AuthConfig.
const (
	DefaultAuthMethod     = AuthToken
	DefaultTokenFilePoll  = 5 * time.Second
	DefaultAppRoleMount   = "approle"
	DefaultKubernetesPath = "kubernetes"
	DefaultJWTFile        = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
)

// AuthConfig says how keygate gets its Vault token. Secrets (secret id,
// JWT, token) never appear in errors or logs.
type AuthConfig struct {
	// Method is "token" (Config.Token or TokenFile), "approle" or
	// "kubernetes". Default "token".
	Method string
	// TokenFile (method token) is a file holding the token, used instead
	// of Config.Token; it is re-read when it changes (polled every
	// TokenFilePoll) and when Vault answers 403. Default "".
	TokenFile string
	// TokenFilePoll is how often TokenFile is checked. Default 5s.
	TokenFilePoll time.Duration
	// RoleID (method approle) is the AppRole role id. Required for approle.
	RoleID string
	// SecretID (method approle) is the AppRole secret id itself, e.g. from
	// the environment. Default "". Set at most one of SecretID and
	// SecretIDFile; neither is for roles with bind_secret_id=false.
	SecretID string
	// SecretIDFile (method approle) is a file holding the secret id, read
	// at each login. Default "".
	SecretIDFile string
	// Mount is the auth method's mount path. Default "approle" or
	// "kubernetes" by Method.
	Mount string
	// Role (method kubernetes) is the Vault role to log in as. Required
	// for kubernetes.
	Role string
	// JWTFile (method kubernetes) is the service-account token file, read
	// at each login. Default DefaultJWTFile.
	JWTFile string
	// MinBackoff and MaxBackoff bound the capped exponential backoff (with
	// jitter) between failed logins, and space out 403-driven re-logins.
	// Defaults 500ms and 30s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

func (a *AuthConfig) setDefaults() {
	if a.Method == "" {
		a.Method = DefaultAuthMethod
	}
	if a.TokenFilePoll == 0 {
		a.TokenFilePoll = DefaultTokenFilePoll
	}
	switch {
	case a.Mount == "" && a.Method == AuthAppRole:
		a.Mount = DefaultAppRoleMount
	case a.Mount == "" && a.Method == AuthKubernetes:
		a.Mount = DefaultKubernetesPath
	}
	if a.JWTFile == "" && a.Method == AuthKubernetes {
		a.JWTFile = DefaultJWTFile
	}
	if a.MinBackoff == 0 {
		a.MinBackoff = DefaultMinBackoff
	}
	if a.MaxBackoff == 0 {
		a.MaxBackoff = DefaultMaxBackoff
	}
}

// usesLogin reports whether keygate logs in (rather than being given a
// static token).
func (a *AuthConfig) usesLogin() bool {
	return a.Method == AuthAppRole || a.Method == AuthKubernetes
}

// check reports the Auth problems through bad, fields named "auth.*".
func (a AuthConfig) check(bad func(field, format string, args ...any)) {
	only := func(field, value, method string) {
		if value != "" && a.Method != method {
			bad("auth."+field, "only with auth.method %q", method)
		}
	}
	switch a.Method {
	case "", AuthToken, AuthAppRole, AuthKubernetes:
	default:
		bad("auth.method", "%q: want %q, %q or %q", a.Method, AuthToken, AuthAppRole, AuthKubernetes)
	}
	only("token_file", a.TokenFile, AuthToken)
	only("role_id", a.RoleID, AuthAppRole)
	only("secret_id", a.SecretID, AuthAppRole)
	only("secret_id_file", a.SecretIDFile, AuthAppRole)
	only("role", a.Role, AuthKubernetes)
	if a.Method == AuthAppRole {
		a.checkAppRole(bad)
	}
	if a.Method == AuthKubernetes && a.Role == "" {
		bad("auth.role", "required with auth.method %q", AuthKubernetes)
	}
	if a.usesLogin() && checkBasePath(a.Mount) != "" {
		bad("auth.mount", "%q: want segments of letters, digits and . _ - separated by single slashes", a.Mount)
	}
	if a.Method == AuthKubernetes && a.JWTFile == "" {
		bad("auth.jwt_file", "required with auth.method %q", AuthKubernetes)
	}
	if a.TokenFile != "" && a.TokenFilePoll <= 0 {
		bad("auth.token_file_poll", "must be > 0")
	}
	if a.MinBackoff <= 0 {
		bad("auth.min_backoff", "must be > 0")
	}
	if a.MaxBackoff < a.MinBackoff {
		bad("auth.max_backoff", "must be >= auth.min_backoff")
	}
}

func (a AuthConfig) checkAppRole(bad func(field, format string, args ...any)) {
	switch {
	case a.RoleID == "":
		bad("auth.role_id", "required with auth.method %q", AuthAppRole)
	case strings.ContainsFunc(a.RoleID, isSpaceOrControl):
		bad("auth.role_id", "contains whitespace or control characters")
	}
	switch {
	case a.SecretID != "" && a.SecretIDFile != "":
		bad("auth.secret_id", "set auth.secret_id or auth.secret_id_file, not both")
	case strings.ContainsFunc(a.SecretID, isSpaceOrControl):
		bad("auth.secret_id", "contains whitespace or control characters")
	}
}
