package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/console"
)

const linkRefused = "the sign-in link is unknown, used or expired; restart the console for a new one"

// A one-time link signs in once, within its TTL; every other link is
// refused with 401 and starts no session.
func TestSignInLink(t *testing.T) {
	h := newHarness(t)
	used := h.newLink()
	u := h.newUser("")
	resp, body := u.get("/login/link?t=" + used)
	redirected(t, resp, body, "/")
	body = u.mustGet("/")
	if !strings.Contains(body, `Signed in as <strong id="who">file-store operator</strong>`) {
		t.Errorf("the overview does not name who is signed in:\n%s", body)
	}

	expired := h.newLink()
	h.clock.Advance(15*time.Minute - time.Second)
	almost := h.newLink() // made later: still good
	h.clock.Advance(time.Second)
	tests := []struct {
		name, token string
	}{
		{"used", used},
		{"expired", expired},
		{"unknown", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := h.newUser("")
			resp, body := other.get("/login/link?t=" + url.QueryEscape(tt.token))
			status(t, resp, body, http.StatusUnauthorized, linkRefused)
			if c := other.cookie("/", "keygate_session"); c != "" {
				t.Errorf("a refused link set a session cookie %q", c)
			}
			resp, body = other.get("/")
			redirected(t, resp, body, "/login")
		})
	}
	resp, body = h.newUser("").get("/login/link?t=" + almost)
	redirected(t, resp, body, "/")
}

// The session cookie is HttpOnly and SameSite=Strict; under TLS it is
// Secure and named with the __Host- prefix (Path=/, no Domain).
func TestSessionCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[secure], func(t *testing.T) {
			h := newHarness(t, func(c *console.Config) { c.Secure = secure })
			u := h.newUser("")
			resp, body := u.get("/login")
			status(t, resp, body, http.StatusOK)
			var login *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "keygate_login" {
					login = c
				}
			}
			if login == nil || !login.HttpOnly || login.SameSite != http.SameSiteStrictMode || login.Path != "/login" || login.Secure != secure {
				t.Errorf("sign-in form cookie = %+v, want HttpOnly, SameSite=Strict, Path=/login, Secure=%v", login, secure)
			}
			resp, body = u.get("/login/link?t=" + h.newLink())
			redirected(t, resp, body, "/")
			name := "keygate_session"
			if secure {
				name = "__Host-keygate_session"
			}
			var sess *http.Cookie
			for _, c := range resp.Cookies() {
				if strings.Contains(c.Name, "keygate_session") {
					if sess != nil {
						t.Errorf("two session cookies: %v and %v", sess, c)
					}
					sess = c
				}
			}
			switch {
			case sess == nil:
				t.Fatalf("no session cookie in %q", resp.Header.Values("Set-Cookie"))
			case sess.Name != name || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure != secure ||
				sess.Path != "/" || sess.Domain != "" || len(sess.Value) < 40:
				t.Errorf("session cookie = %q, want %s, HttpOnly, SameSite=Strict, Secure=%v, Path=/, no Domain",
					resp.Header.Values("Set-Cookie"), name, secure)
			}
			hsts := resp.Header.Get("Strict-Transport-Security")
			if (hsts == "max-age=31536000") != secure || (hsts != "") != secure {
				t.Errorf("Strict-Transport-Security = %q with Secure %v", hsts, secure)
			}
			body = u.mustGet("/") // the browser sends it back
			if !strings.Contains(body, `id="who"`) {
				t.Errorf("not signed in with the cookie:\n%s", body)
			}
		})
	}
}

// Every sign-in makes a new session id and ends the browser's old
// session; a cookie planted before sign-in is never promoted.
func TestNewSessionAtEverySignIn(t *testing.T) {
	h := newHarness(t)
	u := h.newUser("")
	base, _ := url.Parse(h.srv.URL)
	u.client.Jar.SetCookies(base, []*http.Cookie{{Name: "keygate_session", Value: "planted-by-someone-else", Path: "/"}})
	u.signIn()
	first, firstCSRF := u.cookie("/", "keygate_session"), u.csrf
	if first == "" || first == "planted-by-someone-else" {
		t.Fatalf("session cookie after sign-in = %q", first)
	}
	u.signIn()
	second := u.cookie("/", "keygate_session")
	if second == "" || second == first || u.csrf == firstCSRF {
		t.Fatalf("second sign-in kept session id or CSRF token (%q, %q)", second, u.csrf)
	}
	// The old session is over: its cookie and its token do nothing.
	old := h.newUser("")
	old.client.Jar.SetCookies(base, []*http.Cookie{{Name: "keygate_session", Value: first, Path: "/"}})
	resp, body := old.get("/keys")
	redirected(t, resp, body, "/login")
	resp, body = old.postRaw("/new", url.Values{"csrf": {firstCSRF}, "tenant": {"acme"}})
	status(t, resp, body, http.StatusUnauthorized, "not signed in (or the session ended): sign in again")
	if n := h.keyCount(); n != 0 {
		t.Errorf("the ended session issued a key: %d keys", n)
	}
	u.mustGet("/keys")
}

// Sign-in attempts are limited per client address (the TCP peer, not a
// forwarding header): SignInBurst attempts, then 429, on both routes.
func TestSignInLimited(t *testing.T) {
	const burst = 3
	limited := func(c *console.Config) { c.SignInBurst, c.SignInRate = burst, 10 }

	t.Run("link", func(t *testing.T) {
		h := newHarness(t, limited)
		u := h.newUser("")
		for i := range burst {
			req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/login/link?t=wrong", nil)
			req.Header.Set("X-Forwarded-For", "192.0.2."+string(rune('1'+i)))
			resp, body := u.do(req)
			status(t, resp, body, http.StatusUnauthorized, linkRefused)
		}
		good := h.newLink()
		resp, body := u.get("/login/link?t=" + good)
		if resp.StatusCode != http.StatusTooManyRequests || body != "too many sign-in attempts from your address; wait a minute\n" {
			t.Fatalf("attempt %d = %d %q, want 429", burst+1, resp.StatusCode, body)
		}
		// Another address is not limited; the link refused above was not spent.
		resp, body = h.newUser("127.0.0.2").get("/login/link?t=wrong")
		status(t, resp, body, http.StatusUnauthorized, linkRefused)
		h.clock.Advance(6 * time.Second) // 10 a minute: one more attempt
		resp, body = u.get("/login/link?t=" + good)
		redirected(t, resp, body, "/")
	})

	t.Run("form", func(t *testing.T) {
		h := newHarness(t, limited)
		u := h.newUser("")
		u.mustGet("/login")
		attempt := func(secret string) (*http.Response, string) {
			tok := u.cookie("/login", "keygate_login")
			return u.postRaw("/login", url.Values{"csrf": {tok}, "method": {"link"}, "secret": {secret}})
		}
		for range burst {
			resp, body := attempt("wrong")
			status(t, resp, body, http.StatusUnauthorized, linkRefused)
		}
		good := h.newLink()
		resp, body := attempt(good)
		status(t, resp, body, http.StatusTooManyRequests, "too many sign-in attempts from your address; wait a minute and try again")
		h.clock.Advance(6 * time.Second)
		resp, body = attempt(good)
		redirected(t, resp, body, "/")
	})
}

// A session ends when idle for IdleTimeout, and at SessionMax however
// busy.
func TestSessionEnds(t *testing.T) {
	h := newHarness(t, func(c *console.Config) { c.SessionMax, c.IdleTimeout = time.Hour, 30*time.Minute })
	idle := h.signedIn()
	busy := h.signedIn()
	for range 2 {
		h.clock.Advance(29 * time.Minute)
		busy.mustGet("/keys")
	}
	resp, body := idle.get("/keys")
	redirected(t, resp, body, "/login")
	h.clock.Advance(2 * time.Minute) // 60 minutes after sign-in
	resp, body = busy.get("/keys")
	redirected(t, resp, body, "/login")
}

// Signing out ends the session and clears the cookie.
func TestSignOut(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	cookie := u.cookie("/", "keygate_session")
	resp, body := u.post("/logout", nil)
	redirected(t, resp, body, "/login")
	if c := u.cookie("/", "keygate_session"); c != "" {
		t.Errorf("the session cookie is still set after sign-out: %q", c)
	}
	replay := h.newUser("")
	base, _ := url.Parse(h.srv.URL)
	replay.client.Jar.SetCookies(base, []*http.Cookie{{Name: "keygate_session", Value: cookie, Path: "/"}})
	resp, body = replay.get("/")
	redirected(t, resp, body, "/login")
}

// Run ends every session when its context ends.
func TestRunSignsEveryoneOut(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.console.Run(ctx) }()
	u.mustGet("/keys")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	resp, body := u.get("/keys")
	redirected(t, resp, body, "/login")
}
