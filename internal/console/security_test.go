package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/keyadmin"
)

// Every answer carries the security headers, whatever its status; pages
// are not cached (they can show a key), static files may be. No page has
// inline script or style, so the CSP needs no 'unsafe-inline'.
func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	anon := h.newUser("")
	id := h.issue(keyadmin.Fields{Name: ptr("web")}).ID
	if strings.Contains(csp, "unsafe") {
		t.Fatalf("the CSP allows unsafe sources: %s", csp)
	}
	tests := []struct {
		who          *user
		method, path string
		want         int
	}{
		{anon, "GET", "/login", 200},
		{anon, "GET", "/", 303},
		{anon, "GET", "/keys", 303},
		{anon, "GET", "/login/link?t=nope", 401},
		{anon, "POST", "/login", 403},
		{anon, "POST", "/new", 401},
		{u, "GET", "/", 200},
		{u, "GET", "/keys", 200},
		{u, "GET", "/keys?sort=-name&status=active", 200},
		{u, "GET", "/keys?page=abc", 400},
		{u, "GET", "/keys/" + id, 200},
		{u, "GET", "/keys/nosuchkey123", 404},
		{u, "GET", "/keys/" + id + "/edit", 200},
		{u, "GET", "/new", 200},
		{u, "GET", "/import", 200},
		{u, "GET", "/no/such/page", 404},
		{u, "POST", "/new", 403},
		{u, "POST", "/keys/" + id + "/revoke", 403},
		{u, "GET", "/static/console.css", 200},
		{u, "GET", "/static/console.js", 200},
		{anon, "GET", "/static/console.js", 200},
		{u, "GET", "/static/nothing.css", 404},
	}
	inline := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(\s[^>]*)?>`), // checked below: must have src
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)javascript:`),
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, h.srv.URL+tt.path, nil)
		resp, body := tt.who.do(req)
		name := tt.method + " " + tt.path
		if resp.StatusCode != tt.want {
			t.Errorf("%s = %d, want %d", name, resp.StatusCode, tt.want)
		}
		hd := resp.Header
		for k, v := range map[string]string{"Content-Security-Policy": csp, "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"} {
			if got := hd.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
		wantCache := "no-store"
		if strings.HasPrefix(tt.path, "/static/") {
			wantCache = ""
		}
		if got := hd.Get("Cache-Control"); got != wantCache {
			t.Errorf("%s: Cache-Control = %q, want %q", name, got, wantCache)
		}
		if hd.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP", name)
		}
		if !strings.HasPrefix(hd.Get("Content-Type"), "text/html") {
			continue
		}
		for _, re := range inline {
			for _, m := range re.FindAllString(body, -1) {
				if !strings.HasPrefix(strings.ToLower(m), "<script") || !strings.Contains(m, ` src="/static/`) {
					t.Errorf("%s: inline script or style %q", name, m)
				}
			}
		}
	}
}

// postRoutes are every state-changing route with a form that would
// change something if accepted.
func postRoutes(id string) map[string]url.Values {
	return map[string]url.Values{
		"/logout":                 {},
		"/new":                    {"tenant": {"acme"}, "name": {"evil"}},
		"/keys/" + id + "/edit":   {"tenant": {"evil"}},
		"/keys/" + id + "/revoke": {"confirm": {"yes"}, "reason": {"evil"}},
		"/keys/" + id + "/rotate": {"grace": {"1h"}},
		"/keys/" + id + "/delete": {"confirm": {"yes"}, "force": {"yes"}},
		"/import":                 {"text": {importYAML}},
	}
}

// Every POST needs the session's CSRF token: without it, with a wrong one
// or another session's, the answer is 403 and nothing changes.
func TestPostNeedsCSRFToken(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	other := h.signedIn()
	id := h.issue(keyadmin.Fields{Name: ptr("web")}).ID
	before := h.fileBytes()
	const refused = "refused: the form's CSRF token is missing or wrong; reload the page and try again\n"
	for path, form := range postRoutes(id) {
		for _, tok := range []struct{ name, value string }{
			{"missing", ""}, {"wrong", strings.Repeat("A", 43)}, {"another session's", other.csrf}, {"truncated", u.csrf[:20]},
		} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if tok.value != "" {
				f.Set("csrf", tok.value)
			}
			resp, body := u.postRaw(path, f, "Origin", h.srv.URL, "Sec-Fetch-Site", "same-origin")
			if resp.StatusCode != http.StatusForbidden || body != refused {
				t.Errorf("POST %s with the token %s = %d %q, want 403 %q", path, tok.name, resp.StatusCode, body, refused)
			}
		}
	}
	if h.fileBytes() != before {
		t.Error("a refused POST changed the key file")
	}
	u.mustGet("/keys") // still signed in: the refused /logout did nothing
	if !strings.Contains(h.logs.String(), "console: refused a request without a valid CSRF token") {
		t.Error("refusals are not logged")
	}
}

// A POST from another site is refused by Origin or Sec-Fetch-Site even
// with a valid token (and a session cookie the browser would send).
func TestCrossSitePostRefused(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	id := h.issue(keyadmin.Fields{Name: ptr("web")}).ID
	before := h.fileBytes()
	routes := postRoutes(id)
	routes["/login"] = url.Values{"method": {"link"}, "secret": {h.newLink()}}
	headers := []struct {
		hdr []string
		why string
	}{
		{[]string{"Origin", "https://evil.example"}, "Origin https://evil.example is not this console"},
		{[]string{"Origin", "null"}, "Origin null is not this console"},
		{[]string{"Origin", "http://" + strings.TrimPrefix(h.srv.URL, "http://") + ".evil.example"}, "is not this console"},
		{[]string{"Sec-Fetch-Site", "cross-site"}, "Sec-Fetch-Site: cross-site"},
		{[]string{"Sec-Fetch-Site", "same-site"}, "Sec-Fetch-Site: same-site"},
		{[]string{"Origin", h.srv.URL, "Sec-Fetch-Site", "cross-site"}, "Sec-Fetch-Site: cross-site"},
	}
	for path, form := range routes {
		for _, hh := range headers {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf", u.csrf)
			from := u
			if path == "/login" {
				from = h.newUser("")
				from.mustGet("/login") // the double-submit token is valid too
				f.Set("csrf", from.cookie("/login", "keygate_login"))
			}
			resp, body := from.postRaw(path, f, hh.hdr...)
			if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(body, "refused: ") || !strings.Contains(body, hh.why) {
				t.Errorf("POST %s with %q = %d %q, want 403 naming %q", path, hh.hdr, resp.StatusCode, body, hh.why)
			}
		}
	}
	if h.fileBytes() != before {
		t.Error("a cross-site POST changed the key file")
	}
	u.mustGet("/keys")
	// The same request from the console's own page goes through.
	resp, body := u.post("/keys/"+id+"/revoke", url.Values{"confirm": {"yes"}})
	redirected(t, resp, body, "/keys/"+id)
}

// The sign-in form carries a token that must match its cookie (double
// submit): without both, a valid link is refused and not spent.
func TestSignInFormNeedsToken(t *testing.T) {
	h := newHarness(t)
	link := h.newLink()
	const refused = "refused: the sign-in form's token is missing or wrong; reload the sign-in page\n"
	tests := []struct {
		name      string
		getPage   bool   // the browser loaded the sign-in page (has the cookie)
		formToken string // "cookie": the cookie's value
	}{
		{"no cookie, no token", false, ""},
		{"no cookie, a token", false, strings.Repeat("B", 43)},
		{"cookie, no token", true, ""},
		{"cookie, another token", true, strings.Repeat("B", 43)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := h.newUser("")
			if tt.getPage {
				u.mustGet("/login")
			}
			f := url.Values{"method": {"link"}, "secret": {link}}
			if tt.formToken != "" {
				f.Set("csrf", tt.formToken)
			}
			resp, body := u.postRaw("/login", f)
			if resp.StatusCode != http.StatusForbidden || body != refused {
				t.Errorf("= %d %q, want 403 %q", resp.StatusCode, body, refused)
			}
			if c := u.cookie("/", "keygate_session"); c != "" {
				t.Errorf("session cookie set: %q", c)
			}
		})
	}
	u := h.newUser("")
	u.mustGet("/login")
	resp, body := u.postRaw("/login", url.Values{"csrf": {u.cookie("/login", "keygate_login")}, "method": {"link"}, "secret": {link}})
	redirected(t, resp, body, "/")
	u.mustGet("/keys")
}
