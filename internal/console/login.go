package console

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
)

// Sign-in forms carry a token matching a short-lived cookie (double
// submit): there is no session yet to hold a CSRF token, and a page on
// another site must not be able to sign a browser in as someone else.
const loginCookie = "keygate_login"

type loginData struct {
	OIDC    bool // the "Sign in with OIDC" button
	Methods []string
	Method  string
	User    string
	CSRF    string
	Error   string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.session(r) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, loginData{})
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	tok, err := randomToken()
	if err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	d.Methods, d.CSRF = c.auth.Methods(), tok
	if r, ok := c.auth.(interface{ Redirects() bool }); ok {
		d.OIDC = r.Redirects()
	}
	if d.Method == "" {
		d.Method = d.Methods[0]
	}
	c.render(w, r, nil, status, "login", "Sign in", d)
}

// loginCSRF checks the sign-in form's double-submit token.
func loginCSRF(w http.ResponseWriter, r *http.Request) bool {
	ck, err := r.Cookie(loginCookie)
	form := r.PostFormValue("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		http.Error(w, "refused: the sign-in form's token is missing or wrong; reload the sign-in page", http.StatusForbidden)
		return false
	}
	return true
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !loginCSRF(w, r) {
		return
	}
	method, user := r.PostFormValue("method"), r.PostFormValue("user")
	d := loginData{Method: method, User: user}
	if !slices.Contains(c.auth.Methods(), method) {
		d.Error = "choose a sign-in method"
		c.renderLogin(w, r, http.StatusBadRequest, d)
		return
	}
	if !c.allowSignIn(r) {
		c.cfg.Log.Warn("console: sign-in attempts limited", "remote", clientAddr(r))
		d.Error = "too many sign-in attempts from your address; wait a minute and try again"
		c.renderLogin(w, r, http.StatusTooManyRequests, d)
		return
	}
	g, err := c.auth.SignIn(r.Context(), method, user, r.PostFormValue("secret"))
	if err != nil {
		c.cfg.Log.Info("console: sign-in refused", "method", method, "user", user, "remote", clientAddr(r), "err", err)
		d.Error = err.Error()
		status := http.StatusUnauthorized
		if !errors.Is(err, ErrBadCredentials) {
			d.Error, status = "Vault could not be asked: "+err.Error(), http.StatusBadGateway
		}
		c.renderLogin(w, r, status, d)
		return
	}
	c.startSession(w, r, g)
}

// loginLink signs in with a one-time link (LinkAuth: the file store).
func (c *Console) loginLink(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(c.auth.Methods(), "link") {
		http.NotFound(w, r)
		return
	}
	if !c.allowSignIn(r) {
		http.Error(w, "too many sign-in attempts from your address; wait a minute", http.StatusTooManyRequests)
		return
	}
	g, err := c.auth.SignIn(r.Context(), "link", "", r.URL.Query().Get("t"))
	if err != nil {
		c.cfg.Log.Info("console: sign-in link refused", "remote", clientAddr(r))
		c.renderLogin(w, r, http.StatusUnauthorized, loginData{Error: err.Error()})
		return
	}
	c.startSession(w, r, g)
}

func (c *Console) startSession(w http.ResponseWriter, r *http.Request, g *Grant) {
	if c.begin(w, r, g) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// begin starts a session for g and sets its cookie; nil (answered) if it
// cannot.
func (c *Console) begin(w http.ResponseWriter, r *http.Request, g *Grant) *session {
	if old := c.session(r); old != nil { // a new id at every sign-in
		_ = c.sessions.end(r.Context(), old)
	}
	s, err := c.sessions.start(g)
	if err != nil {
		http.Error(w, "cannot start a session", http.StatusInternalServerError)
		return nil
	}
	c.cfg.Log.Info("console: signed in", "who", g.Who.Name, "entity_id", g.Who.EntityID, "method", g.Who.Method,
		"remote", clientAddr(r), "session_expires", s.expires)
	c.setSessionCookie(w, s)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1, HttpOnly: true, Secure: c.cfg.Secure})
	return s
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	err := c.sessions.end(r.Context(), s)
	c.cfg.Log.Info("console: signed out", "who", s.grant.Who.Name, "entity_id", s.grant.Who.EntityID, "token_revoked", err == nil, "err", err)
	c.clearSessionCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
