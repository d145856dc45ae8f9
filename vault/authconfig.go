package vault

import (
	"strings"
	"time"

	"github.com/keygate/keygate/internal/field"
)

// Auth methods for AuthConfig.Method.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// AuthConfig says how keygate gets its Vault token; its defaults are
// DefaultConfig's. Settings of one method are ignored by the others, and
// those with a default (the mounts, JWTFile) are checked only for their
// method; the ones that are empty by default (RoleID, SecretID,
// SecretIDFile, Role, TokenFile) are errors when set for another method.
// Secrets (secret id, JWT, token) never appear in errors or logs.
type AuthConfig struct {
	// Method is AuthToken (Config.Token or TokenFile), AuthAppRole or
	// AuthKubernetes. Default AuthToken.
	Method string
	// TokenFile (method token) is a file holding the token, used instead
	// of Config.Token; it is re-read when it changes (polled every
	// TokenFilePoll) and when Vault answers 403. Default "".
	TokenFile string
	// TokenFilePoll is how often TokenFile is checked; > 0 when TokenFile
	// is set. Default 5s.
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
	// AppRoleMount (method approle) is the AppRole auth method's mount
	// path. Default "approle".
	AppRoleMount string
	// Role (method kubernetes) is the Vault role to log in as. Required
	// for kubernetes.
	Role string
	// KubernetesMount (method kubernetes) is the Kubernetes auth method's
	// mount path. Default "kubernetes".
	KubernetesMount string
	// JWTFile (method kubernetes) is the service-account token file, read
	// at each login. Default
	// "/var/run/secrets/kubernetes.io/serviceaccount/token".
	JWTFile string
	// MinBackoff and MaxBackoff bound the capped exponential backoff (with
	// jitter) between failed logins, and space out 403-driven re-logins.
	// MinBackoff > 0, MaxBackoff >= MinBackoff. Defaults 500ms and 30s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// usesLogin reports whether keygate logs in (rather than being given a
// static token).
func (a *AuthConfig) usesLogin() bool {
	return a.Method == AuthAppRole || a.Method == AuthKubernetes
}

// loginMount is the mount of the method's login endpoint.
func (a *AuthConfig) loginMount() string {
	if a.Method == AuthKubernetes {
		return a.KubernetesMount
	}
	return a.AppRoleMount
}

// check adds the Auth problems to l.
func (a AuthConfig) check(l *field.List) {
	only := func(name, value, method string) {
		if value != "" && a.Method != method {
			l.Addf(name, "only with --vault-auth %q", method)
		}
	}
	switch a.Method {
	case AuthToken:
		if a.TokenFile != "" && a.TokenFilePoll <= 0 {
			l.Addf("vault-token-file-poll", "must be > 0, got %s", a.TokenFilePoll)
		}
	case AuthAppRole:
		a.checkAppRole(l)
	case AuthKubernetes:
		a.checkKubernetes(l)
	default:
		l.Addf("vault-auth", "%q: want %q, %q or %q", a.Method, AuthToken, AuthAppRole, AuthKubernetes)
	}
	only("vault-token-file", a.TokenFile, AuthToken)
	only("vault-approle-role-id", a.RoleID, AuthAppRole)
	only("vault-approle-secret-id", a.SecretID, AuthAppRole)
	only("vault-approle-secret-id-file", a.SecretIDFile, AuthAppRole)
	only("vault-k8s-role", a.Role, AuthKubernetes)
	if a.MinBackoff <= 0 {
		l.Addf("vault-min-backoff", "must be > 0, got %s", a.MinBackoff)
	}
	if a.MaxBackoff < a.MinBackoff {
		l.Addf("vault-max-backoff", "%s: must be >= --vault-min-backoff (%s)", a.MaxBackoff, a.MinBackoff)
	}
}

func (a AuthConfig) checkAppRole(l *field.List) {
	switch {
	case a.RoleID == "":
		l.Addf("vault-approle-role-id", "required with --vault-auth %q", AuthAppRole)
	case strings.ContainsFunc(a.RoleID, isSpaceOrControl):
		l.Addf("vault-approle-role-id", "contains whitespace or control characters")
	}
	switch {
	case a.SecretID != "" && a.SecretIDFile != "":
		l.Add("give one, not both", "vault-approle-secret-id", "vault-approle-secret-id-file")
	case strings.ContainsFunc(a.SecretID, isSpaceOrControl):
		l.Addf("vault-approle-secret-id", "contains whitespace or control characters")
	}
	if msg := checkPath(a.AppRoleMount); msg != "" {
		l.Addf("vault-approle-mount", "%s", msg)
	}
}

func (a AuthConfig) checkKubernetes(l *field.List) {
	if a.Role == "" {
		l.Addf("vault-k8s-role", "required with --vault-auth %q", AuthKubernetes)
	}
	if msg := checkPath(a.KubernetesMount); msg != "" {
		l.Addf("vault-k8s-mount", "%s", msg)
	}
	if a.JWTFile == "" {
		l.Addf("vault-k8s-jwt-file", "required with --vault-auth %q", AuthKubernetes)
	}
}
