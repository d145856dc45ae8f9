package console

import (
	"errors"
	"net/http"
)

// OIDC sign-in through Vault's oidc auth method:
//
//  1. the sign-in page's "Sign in with OIDC" link (GET /login/oidc: a
//     form could not be used, as the CSP's form-action 'self' also stops a
//     form's redirect to the provider) makes a random client nonce, keeps
//     it in a short-lived cookie, asks Vault for the provider's URL and
//     sends the browser there. Starting a sign-in changes nothing: only
//     the provider, then Vault, decide who signs in;
//  2. the provider sends the browser back to /login/oidc/callback with a
//     state and a code; Vault checks them (and the provider's ID token)
//     with the nonce from the cookie, so a callback opened in another
//     browser cannot complete anyone's sign-in, and answers the person's
//     token.
//
// The nonce cookie is SameSite=Lax: the callback is a navigation from the
// provider's site, which would not carry a Strict cookie. For the same
// reason the callback answers with a page that continues to the console
// itself (the session cookie is Strict: a redirect chain begun on another
// site would not send it).
const oidcCookie = "keygate_oidc"

func (c *Console) oidcRedirector() Redirector {
	r, ok := c.auth.(interface {
		Redirector
		Redirects() bool
	})
	if !ok || !r.Redirects() {
		return nil
	}
	return r
}

func (c *Console) callbackURL(r *http.Request) string {
	scheme := "http"
	if c.cfg.Secure {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/login/oidc/callback"
}

func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	rd := c.oidcRedirector()
	if rd == nil {
		http.NotFound(w, r)
		return
	}
	if !c.allowSignIn(r) {
		c.renderLogin(w, r, http.StatusTooManyRequests, loginData{Error: "too many sign-in attempts from your address; wait a minute and try again"})
		return
	}
	nonce, err := randomToken()
	if err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	u, err := rd.AuthURL(r.Context(), c.callbackURL(r), nonce)
	if err != nil {
		c.cfg.Log.Warn("console: OIDC sign-in could not start", "remote", clientAddr(r), "err", err)
		c.renderLogin(w, r, http.StatusBadGateway, loginData{Error: "OIDC sign-in could not start: " + err.Error()})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: nonce, Path: "/login/oidc", HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, u, http.StatusSeeOther)
}

func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	rd := c.oidcRedirector()
	if rd == nil {
		http.NotFound(w, r)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/login/oidc", MaxAge: -1, HttpOnly: true, Secure: c.cfg.Secure})
	ck, err := r.Cookie(oidcCookie)
	q := r.URL.Query()
	switch {
	case !c.allowSignIn(r):
		c.renderLogin(w, r, http.StatusTooManyRequests, loginData{Error: "too many sign-in attempts from your address; wait a minute and try again"})
		return
	case err != nil || ck.Value == "":
		c.renderLogin(w, r, http.StatusBadRequest, loginData{Error: "OIDC sign-in: this browser did not start it (or took over 10 minutes); start again"})
		return
	case q.Get("error") != "":
		c.renderLogin(w, r, http.StatusUnauthorized, loginData{Error: "the identity provider refused: " + q.Get("error")})
		return
	}
	g, err := rd.Callback(r.Context(), q.Get("state"), q.Get("code"), ck.Value)
	if err != nil {
		c.cfg.Log.Info("console: OIDC sign-in refused", "remote", clientAddr(r), "err", err)
		status := http.StatusUnauthorized
		if !errors.Is(err, ErrBadCredentials) {
			status = http.StatusBadGateway
		}
		c.renderLogin(w, r, status, loginData{Error: "OIDC sign-in failed: " + err.Error()})
		return
	}
	s := c.begin(w, r, g)
	if s == nil {
		return
	}
	// Continue from the console's own page: see oidcCookie.
	c.render(w, r, s, http.StatusOK, "continue", "Signed in", nil)
}
