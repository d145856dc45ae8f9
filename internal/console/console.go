package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the web console. Create it with New; it is an
// http.Handler.
type Console struct {
	cfg      Config
	auth     Authenticator
	sessions sessions
	index    *index
	pages    map[string]*template.Template
	mux      *http.ServeMux
	signIns  *lru.Cache[string, *rate.Limiter] // per client address
	mu       sync.Mutex                        // guards signIns' get-or-add
}

// New returns a Console that signs people in with auth.
func New(cfg Config, auth Authenticator) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if auth == nil {
		return nil, errors.New("console: nil authenticator")
	}
	signIns, err := lru.New[string, *rate.Limiter](10_000)
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, auth: auth, signIns: signIns}
	c.sessions.cfg = &c.cfg
	c.index = newIndex(&c.cfg)
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("GET /login/link", c.loginLink)
	m.HandleFunc("GET /login/oidc", c.oidcStart)
	m.HandleFunc("GET /login/oidc/callback", c.oidcCallback)
	m.HandleFunc("POST /logout", c.signedIn(c.logout))
	m.HandleFunc("GET /{$}", c.signedIn(c.overview))
	m.HandleFunc("GET /keys", c.signedIn(c.keys))
	m.HandleFunc("GET /keys/{id}", c.signedIn(c.key))
	m.HandleFunc("GET /new", c.signedIn(c.newKeyPage))
	m.HandleFunc("POST /new", c.signedIn(c.newKey))
	m.HandleFunc("GET /keys/{id}/edit", c.signedIn(c.editPage))
	m.HandleFunc("POST /keys/{id}/edit", c.signedIn(c.edit))
	m.HandleFunc("POST /keys/{id}/revoke", c.signedIn(c.revoke))
	m.HandleFunc("POST /keys/{id}/rotate", c.signedIn(c.rotate))
	m.HandleFunc("POST /keys/{id}/delete", c.signedIn(c.deleteKey))
	m.HandleFunc("GET /import", c.signedIn(c.importPage))
	m.HandleFunc("POST /import", c.signedIn(c.importKeys))
	c.mux = m
}

// contentSecurityPolicy allows only the console's own script and style
// files: no inline script or style, no framing, forms only to itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxBody bounds a request body (an import file included).
const maxBody = 4 << 20

// ServeHTTP sets the security headers every answer carries, refuses
// cross-site state changes, and routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // not no-referrer: Chrome then sends "Origin: null" on form POSTs
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if c.cfg.Secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store") // pages can show a key
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if why := c.crossSite(r); why != "" {
			c.cfg.Log.Warn("console: refused a cross-site request", "path", r.URL.Path, "remote", r.RemoteAddr, "why", why)
			http.Error(w, "refused: "+why, http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	c.mux.ServeHTTP(w, r)
}

// crossSite says why a state-changing request does not come from the
// console's own pages, or "". The CSRF token is checked too; this also
// stops requests with no session (sign-in) from other sites.
func (c *Console) crossSite(r *http.Request) string {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return "Sec-Fetch-Site: " + site
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || o == "null" || !strings.EqualFold(u.Host, r.Host) {
			return "Origin " + o + " is not this console"
		}
	}
	return ""
}

// signedIn wraps a handler that needs a session: no session redirects to
// the sign-in page; a POST without the session's CSRF token is refused.
func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in (or the session ended): sign in again", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && !validCSRF(s, r) {
			c.cfg.Log.Warn("console: refused a request without a valid CSRF token", "path", r.URL.Path, "who", s.grant.Who.Name)
			http.Error(w, "refused: the form's CSRF token is missing or wrong; reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r, s)
	}
}

// clientAddr is the TCP peer's address (the console trusts no forwarding
// header for its sign-in limit).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allowSignIn spends one sign-in attempt of r's client.
func (c *Console) allowSignIn(r *http.Request) bool {
	addr := clientAddr(r)
	c.mu.Lock()
	l, ok := c.signIns.Get(addr)
	if !ok {
		l = rate.NewLimiter(rate.Limit(c.cfg.SignInRate/60), c.cfg.SignInBurst)
		c.signIns.Add(addr, l)
	}
	c.mu.Unlock()
	return l.AllowN(c.cfg.Now(), 1)
}

// Run ends idle and expired sessions (revoking their tokens) every minute
// until ctx ends, then signs every session out.
func (c *Console) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.signOutAll()
			return nil
		case <-t.C:
			for _, s := range c.sessions.expired() {
				if s.grant.signOut != nil {
					if err := s.grant.signOut(ctx); err != nil {
						c.cfg.Log.Info("console: revoking an ended session's token failed (it may have expired)", "who", s.grant.Who.Name, "err", err)
					}
				}
			}
		}
	}
}

// signOutAll revokes every session's token: a console that stops leaves
// no live Vault token behind.
func (c *Console) signOutAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range c.sessions.all() {
		if err := c.sessions.end(ctx, s); err != nil {
			c.cfg.Log.Info("console: revoking a session's token at shutdown failed", "who", s.grant.Who.Name, "err", err)
		}
	}
}
