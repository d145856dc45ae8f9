package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// Person is someone signed in to Vault with their own credentials (the
// console): keygate acts for them with their token, so Vault's policies
// decide what they may do and Vault's audit device records it.
type Person struct {
	// Token is the person's Vault token. It is a secret: never log it.
	Token string
	// DisplayName and EntityID say who it is, as Vault knows them
	// ("userpass-alice"; EntityID is "" for tokens with no entity, e.g.
	// root).
	DisplayName, EntityID string
	// Policies are the token's policies.
	Policies []string
	// Expires is when the token expires; zero for a token with no TTL.
	Expires time.Time
}

// String names the person without the token, for logs and errors.
func (p *Person) String() string {
	return fmt.Sprintf("%s (entity %q)", p.DisplayName, p.EntityID)
}

// Person sign-in methods.
const (
	PersonToken    = "token"    // a token the person already has
	PersonUserpass = "userpass" // username and password (auth/<mount>/login/<user>)
	PersonLDAP     = "ldap"     // the same endpoint on an ldap mount
)

// OpPersonLogin and OpPersonRevoke are the operations of SignIn and
// SignOut (in *Error, never observed as a Store's requests).
const (
	OpPersonLogin  Operation = "person_login"
	OpPersonRevoke Operation = "person_revoke"
)

// ErrBadCredentials is a sign-in Vault refused (wrong user name, password
// or token). Its text is Vault's message.
var ErrBadCredentials = errors.New("vault refused the credentials")

// SignIn logs a person in to the Vault of cfg (its address, TLS and
// namespace; its token and Auth are not used) with method: for
// PersonToken, secret is the token and user is ignored; for PersonUserpass
// and PersonLDAP, user and password at the auth mount (default: the method's
// name). It looks the token up to learn who it is. A refusal wraps
// ErrBadCredentials; secret never appears in an error.
func SignIn(ctx context.Context, cfg Config, method, mount, user, secret string) (*Person, error) {
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	switch method {
	case PersonToken:
		if secret == "" {
			return nil, fmt.Errorf("vault: %s: %w: the token is empty", OpPersonLogin, ErrBadCredentials)
		}
		client.SetToken(secret)
	case PersonUserpass, PersonLDAP:
		if mount == "" {
			mount = method
		}
		if user == "" || secret == "" || strings.ContainsAny(user, "/?#") || !validSegment(mount) {
			return nil, fmt.Errorf("vault: %s: %w: a user name (no / ? #) and a password are required", OpPersonLogin, ErrBadCredentials)
		}
		sec, err := client.Logical().WriteWithContext(ctx, "auth/"+mount+"/login/"+user, map[string]any{"password": secret})
		if err != nil {
			return nil, personError(OpPersonLogin, err)
		}
		if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
			return nil, &Error{Op: OpPersonLogin, Err: errors.New("the login answered no token")}
		}
		client.SetToken(sec.Auth.ClientToken)
	default:
		return nil, fmt.Errorf("vault: %s: unknown method %q (want %s, %s or %s)", OpPersonLogin, method, PersonToken, PersonUserpass, PersonLDAP)
	}
	p, err := lookupSelf(ctx, client)
	if err != nil {
		return nil, err
	}
	p.Token = client.Token()
	return p, nil
}

// lookupSelf reads who the client's token belongs to.
func lookupSelf(ctx context.Context, client *vaultapi.Client) (*Person, error) {
	sec, err := client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, personError(OpPersonLogin, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, &Error{Op: OpPersonLogin, Err: errors.New("token lookup answered no data")}
	}
	p := &Person{}
	p.DisplayName, _ = sec.Data["display_name"].(string)
	p.EntityID, _ = sec.Data["entity_id"].(string)
	if list, ok := sec.Data["policies"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				p.Policies = append(p.Policies, s)
			}
		}
	}
	if n, ok := sec.Data["ttl"].(json.Number); ok {
		if secs, err := n.Int64(); err == nil && secs > 0 {
			p.Expires = time.Now().Add(time.Duration(secs) * time.Second)
		}
	}
	return p, nil
}

// SignOut revokes a person's token (auth/token/revoke-self).
func SignOut(ctx context.Context, cfg Config, token string) error {
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	client.SetToken(token)
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if _, err := client.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil); err != nil {
		return personError(OpPersonRevoke, err)
	}
	return nil
}

// personError is a failed sign-in or sign-out request as an *Error with
// Vault's messages; 400 and 403 also wrap ErrBadCredentials.
func personError(op Operation, err error) error {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		return &Error{Op: op, Err: err}
	}
	msg := strings.Join(re.Errors, "; ")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" {
		msg = http.StatusText(re.StatusCode)
	}
	cause := errors.New(msg)
	if re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusForbidden {
		cause = fmt.Errorf("%w: %s", ErrBadCredentials, msg)
	}
	return &Error{Op: op, Status: re.StatusCode, Err: cause}
}

// PersonOIDC signs in through Vault's oidc auth method: the browser is sent
// to the identity provider, which sends it back with a code that Vault
// turns into a token (OIDCAuthURL, then OIDCCallback).
const PersonOIDC = "oidc"

// OIDCAuthURL asks Vault (auth/<mount>/oidc/auth_url) where to send the
// browser to sign in with role, coming back to redirectURI (which the role
// must allow). clientNonce is a random value the caller keeps in the
// browser and passes to OIDCCallback, so that a callback from another
// browser cannot complete the sign-in.
func OIDCAuthURL(ctx context.Context, cfg Config, mount, role, redirectURI, clientNonce string) (string, error) {
	if !validSegment(mount) {
		return "", fmt.Errorf("vault: %s: bad oidc mount %q", OpPersonLogin, mount)
	}
	client, err := newClient(cfg)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	sec, err := client.Logical().WriteWithContext(ctx, "auth/"+mount+"/oidc/auth_url",
		map[string]any{"role": role, "redirect_uri": redirectURI, "client_nonce": clientNonce})
	if err != nil {
		return "", personError(OpPersonLogin, err)
	}
	u := ""
	if sec != nil {
		u, _ = sec.Data["auth_url"].(string)
	}
	if u == "" {
		return "", &Error{Op: OpPersonLogin, Err: errors.New("no auth_url: the role's allowed_redirect_uris must include " + redirectURI)}
	}
	return u, nil
}

// OIDCCallback completes an OIDC sign-in with the state and code the
// identity provider sent back, and the clientNonce given to OIDCAuthURL.
func OIDCCallback(ctx context.Context, cfg Config, mount, state, code, clientNonce string) (*Person, error) {
	if !validSegment(mount) {
		return nil, fmt.Errorf("vault: %s: bad oidc mount %q", OpPersonLogin, mount)
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	sec, err := client.Logical().ReadWithDataWithContext(ctx, "auth/"+mount+"/oidc/callback",
		map[string][]string{"state": {state}, "code": {code}, "client_nonce": {clientNonce}})
	if err != nil {
		return nil, personError(OpPersonLogin, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, &Error{Op: OpPersonLogin, Err: errors.New("the oidc callback answered no token")}
	}
	client.SetToken(sec.Auth.ClientToken)
	p, err := lookupSelf(ctx, client)
	if err != nil {
		return nil, err
	}
	p.Token = sec.Auth.ClientToken
	return p, nil
}
