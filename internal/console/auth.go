package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/vault"
)

// Who is the signed-in person as the store knows them.
type Who struct {
	Name     string // Vault display name, e.g. "userpass-alice"
	EntityID string // Vault entity id; "" for tokens without one
	Method   string // how they signed in: token, userpass, ldap, link
	Policies []string
}

// Grant is what a sign-in gives: who it is, their own handle on the keys,
// and until when.
type Grant struct {
	Who   Who
	Admin *keyadmin.Service
	// Changes is the store's change journal read with the person's
	// credentials; nil when the store keeps none.
	Changes Changes
	// Expires is when the credentials expire; zero: never (the session's
	// own limits still apply).
	Expires time.Time
	// signOut revokes the credentials; nil when there is nothing to revoke.
	signOut func(ctx context.Context) error
}

// Changes is a change journal: the key ids changed after version after.
// newKeys reports entries that created keys (imports); complete is false
// when the journal cannot say everything that changed (pruned, restored).
type Changes interface {
	ChangedSince(ctx context.Context, after int) (ids []string, newKeys bool, latest int, complete bool, err error)
}

// Authenticator signs people in.
type Authenticator interface {
	// Methods are the sign-in methods offered, in order.
	Methods() []string
	// SignIn checks the credentials; an error wrapping ErrBadCredentials
	// is a refusal to show as such.
	SignIn(ctx context.Context, method, user, secret string) (*Grant, error)
}

// ErrBadCredentials is a refused sign-in.
var ErrBadCredentials = errors.New("sign-in refused")

// VaultAuth signs people in to Vault with their own token, userpass or
// LDAP credentials; each session gets a Vault store with that token.
type VaultAuth struct {
	// Vault is the store's configuration: address, TLS, namespace, mount
	// and base path (its token and login settings are not used).
	Vault vault.Config
	// Keys configures each person's key-admin service.
	Keys keyadmin.Config
	// UserpassMount and LDAPMount are the auth mounts; "" leaves the
	// method out.
	UserpassMount, LDAPMount string
	// OIDCMount and OIDCRole: sign in through Vault's oidc auth method
	// with this role (its allowed_redirect_uris must include the
	// console's /login/oidc/callback); "" mount leaves it out.
	OIDCMount, OIDCRole string
}

// Methods implements Authenticator.
func (a *VaultAuth) Methods() []string {
	m := []string{}
	if a.UserpassMount != "" {
		m = append(m, vault.PersonUserpass)
	}
	if a.LDAPMount != "" {
		m = append(m, vault.PersonLDAP)
	}
	return append(m, vault.PersonToken)
}

// Redirector is an Authenticator that can also sign in by sending the
// browser to an identity provider (OIDC).
type Redirector interface {
	// AuthURL is where to send the browser; it comes back to redirectURI.
	AuthURL(ctx context.Context, redirectURI, clientNonce string) (string, error)
	// Callback completes the sign-in with what the provider sent back.
	Callback(ctx context.Context, state, code, clientNonce string) (*Grant, error)
}

// Redirects reports whether OIDC sign-in is on.
func (a *VaultAuth) Redirects() bool { return a.OIDCMount != "" }

// AuthURL implements Redirector.
func (a *VaultAuth) AuthURL(ctx context.Context, redirectURI, clientNonce string) (string, error) {
	u, err := vault.OIDCAuthURL(ctx, a.Vault, a.OIDCMount, a.OIDCRole, redirectURI, clientNonce)
	if errors.Is(err, vault.ErrBadCredentials) {
		return "", fmt.Errorf("%w: %w", ErrBadCredentials, err)
	}
	return u, err
}

// Callback implements Redirector.
func (a *VaultAuth) Callback(ctx context.Context, state, code, clientNonce string) (*Grant, error) {
	p, err := vault.OIDCCallback(ctx, a.Vault, a.OIDCMount, state, code, clientNonce)
	if errors.Is(err, vault.ErrBadCredentials) {
		return nil, fmt.Errorf("%w: %w", ErrBadCredentials, err)
	}
	if err != nil {
		return nil, err
	}
	return a.grant(p, vault.PersonOIDC)
}

// SignIn implements Authenticator.
func (a *VaultAuth) SignIn(ctx context.Context, method, user, secret string) (*Grant, error) {
	mount := ""
	switch method {
	case vault.PersonUserpass:
		mount = a.UserpassMount
	case vault.PersonLDAP:
		mount = a.LDAPMount
	case vault.PersonToken:
	default:
		return nil, fmt.Errorf("%w: unknown sign-in method %q", ErrBadCredentials, method)
	}
	if method != vault.PersonToken && mount == "" {
		return nil, fmt.Errorf("%w: sign-in method %q is not enabled", ErrBadCredentials, method)
	}
	p, err := vault.SignIn(ctx, a.Vault, method, mount, user, secret)
	if errors.Is(err, vault.ErrBadCredentials) {
		return nil, fmt.Errorf("%w: %w", ErrBadCredentials, err)
	}
	if err != nil {
		return nil, err
	}
	return a.grant(p, method)
}

// grant gives a signed-in person their own key-admin service.
func (a *VaultAuth) grant(p *vault.Person, method string) (*Grant, error) {
	cfg := a.Vault
	cfg.Token, cfg.Auth.Method, cfg.Auth.TokenFile = p.Token, vault.AuthToken, ""
	store, err := vault.New(cfg)
	if err != nil {
		return nil, err
	}
	svc, err := keyadmin.New(a.Keys, store)
	if err != nil {
		return nil, err
	}
	token := p.Token
	return &Grant{
		Who:     Who{Name: p.DisplayName, EntityID: p.EntityID, Method: method, Policies: p.Policies},
		Admin:   svc,
		Changes: vaultChanges{store},
		Expires: p.Expires,
		signOut: func(ctx context.Context) error { return vault.SignOut(ctx, a.Vault, token) },
	}, nil
}

// vaultChanges reads the Vault store's change journal.
type vaultChanges struct{ s *vault.Store }

func (v vaultChanges) ChangedSince(ctx context.Context, after int) ([]string, bool, int, bool, error) {
	entries, latest, complete, err := v.s.JournalSince(ctx, after)
	if err != nil {
		return nil, false, after, false, err
	}
	var ids []string
	newKeys := false
	for _, e := range entries {
		ids = append(ids, e.IDs...)
		newKeys = newKeys || e.Op == keyadmin.JournalOpNewKeys
	}
	return ids, newKeys, latest, complete, nil
}

// LinkAuth signs in with one-time links, for a store without identities
// (the file store of `make run`): whoever holds the link printed at start
// is the operator. A link works once and for LinkTTL.
type LinkAuth struct {
	Admin   *keyadmin.Service
	LinkTTL time.Duration
	Now     func() time.Time

	mu    sync.Mutex
	links map[string]time.Time // token → expiry
}

// NewLink returns a new one-time sign-in token.
func (a *LinkAuth) NewLink() (string, error) {
	t, err := randomToken()
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.links == nil {
		a.links = map[string]time.Time{}
	}
	a.links[t] = a.Now().Add(a.LinkTTL)
	return t, nil
}

// Methods implements Authenticator.
func (a *LinkAuth) Methods() []string { return []string{"link"} }

// SignIn implements Authenticator: secret is a link's token, spent here.
func (a *LinkAuth) SignIn(_ context.Context, method, _, secret string) (*Grant, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.Now()
	for t, exp := range a.links {
		if !now.Before(exp) {
			delete(a.links, t)
		}
	}
	for t := range a.links {
		if method == "link" && subtle.ConstantTimeCompare([]byte(t), []byte(secret)) == 1 {
			delete(a.links, t)
			return &Grant{Who: Who{Name: "file-store operator", Method: "link"}, Admin: a.Admin}, nil
		}
	}
	return nil, fmt.Errorf("%w: the sign-in link is unknown, used or expired; restart the console for a new one", ErrBadCredentials)
}

// randomToken is 32 random bytes, base64url.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
