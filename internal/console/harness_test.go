package console_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/console"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// t0 is the tests' "now".
var t0 = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

// csp is the Content-Security-Policy every answer carries (console.go).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// clock is a settable clock shared by the console, its LinkAuth and keyadmin.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder notes every request URL and Location header a client saw.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, req.URL.String())
	if resp != nil {
		r.seen = append(r.seen, resp.Header.Get("Location"))
	}
	return resp, err
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// harness is a console on a real file store, served over loopback.
type harness struct {
	t       *testing.T
	clock   *clock
	logs    *syncBuffer
	path    string
	store   *filestore.Store
	svc     *keyadmin.Service
	auth    *console.LinkAuth
	console *console.Console
	srv     *httptest.Server
}

// newHarness starts a console; change adjusts its configuration (Secure
// serves it over TLS).
func newHarness(t *testing.T, change ...func(*console.Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: t0}, logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.path = filepath.Join(t.TempDir(), "keys.yaml")
	var err error
	if h.store, err = filestore.OpenOrCreate(context.Background(), h.path, log); err != nil {
		t.Fatal(err)
	}
	if h.svc, err = keyadmin.New(keyadmin.Config{Now: h.clock.Now}, h.store); err != nil {
		t.Fatal(err)
	}
	h.auth = &console.LinkAuth{Admin: h.svc, LinkTTL: 15 * time.Minute, Now: h.clock.Now}
	cfg := console.DefaultConfig()
	cfg.Log, cfg.Now, cfg.SignInBurst = log, h.clock.Now, 1000
	for _, c := range change {
		c(&cfg)
	}
	if h.console, err = console.New(cfg, h.auth); err != nil {
		t.Fatal(err)
	}
	if cfg.Secure {
		h.srv = httptest.NewTLSServer(h.console)
	} else {
		h.srv = httptest.NewServer(h.console)
	}
	t.Cleanup(h.srv.Close)
	return h
}

// user is one browser: a cookie jar, no automatic redirects.
type user struct {
	h      *harness
	client *http.Client
	rec    *recorder
	csrf   string // the session's CSRF token, from its last page
}

// newUser is a browser with its own cookie jar, connecting from the
// loopback address local (e.g. "127.0.0.2"; "" for the default).
func (h *harness) newUser(local string) *user {
	h.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	if local != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		tr.DialContext = d.DialContext
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	rec := &recorder{next: tr}
	return &user{h: h, rec: rec, client: &http.Client{Jar: jar, Transport: rec,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signedIn is a new user signed in with a fresh one-time link.
func (h *harness) signedIn() *user {
	h.t.Helper()
	u := h.newUser("")
	u.signIn()
	return u
}

func (h *harness) newLink() string {
	h.t.Helper()
	tok, err := h.auth.NewLink()
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// signIn opens a new one-time link and loads the overview for the CSRF token.
func (u *user) signIn() {
	u.h.t.Helper()
	resp, body := u.get("/login/link?t=" + u.h.newLink())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		u.h.t.Fatalf("sign-in = %d %q, want 303 to /: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	u.mustGet("/")
}

// cookie is the value of the cookie named name the jar would send to path.
func (u *user) cookie(path, name string) string {
	loc, _ := url.Parse(u.h.srv.URL + path)
	for _, c := range u.client.Jar.Cookies(loc) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends a request; the body is read, and HTML entities decoded.
func (u *user) do(req *http.Request) (*http.Response, string) {
	u.h.t.Helper()
	resp, err := u.client.Do(req)
	if err != nil {
		u.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		u.h.t.Fatal(err)
	}
	if m := csrfRE.FindSubmatch(b); m != nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		u.csrf = string(m[1])
	}
	return resp, html.UnescapeString(string(b))
}

func (u *user) get(path string) (*http.Response, string) {
	u.h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u.h.srv.URL+path, nil)
	if err != nil {
		u.h.t.Fatal(err)
	}
	return u.do(req)
}

// mustGet gets path and wants 200.
func (u *user) mustGet(path string) string {
	u.h.t.Helper()
	resp, body := u.get(path)
	if resp.StatusCode != http.StatusOK {
		u.h.t.Fatalf("GET %s = %d, want 200: %s", path, resp.StatusCode, body)
	}
	return body
}

// postRaw posts form as is, with extra headers (name, value pairs).
func (u *user) postRaw(path string, form url.Values, hdr ...string) (*http.Response, string) {
	u.h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u.h.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		u.h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return u.do(req)
}

// post posts form with the session's CSRF token, as the console's own
// pages do (a browser adds Origin and Sec-Fetch-Site).
func (u *user) post(path string, form url.Values) (*http.Response, string) {
	u.h.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf", u.csrf)
	return u.postRaw(path, f, "Origin", u.h.srv.URL, "Sec-Fetch-Site", "same-origin")
}

// redirected wants a 303 to where.
func redirected(t *testing.T, resp *http.Response, body, where string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != where {
		t.Fatalf("%s %s = %d to %q, want 303 to %q: %s", resp.Request.Method, resp.Request.URL.Path,
			resp.StatusCode, resp.Header.Get("Location"), where, body)
	}
}

// status wants code and every one of want in the (decoded) body.
func status(t *testing.T, resp *http.Response, body string, code int, want ...string) {
	t.Helper()
	if resp.StatusCode != code {
		t.Errorf("%s %s = %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, code, body)
		return
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s %s: body lacks %q:\n%s", resp.Request.Method, resp.Request.URL.Path, w, body)
		}
	}
}

// fileBytes is the key file as it is on disk: a refused request leaves it
// byte for byte.
func (h *harness) fileBytes() string {
	h.t.Helper()
	b, err := os.ReadFile(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func (h *harness) keyCount() int {
	h.t.Helper()
	ids, err := h.store.List(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return len(ids)
}

// issue issues a key straight through keyadmin, at the clock's time.
func (h *harness) issue(f keyadmin.Fields) *keyadmin.Issued {
	h.t.Helper()
	if f.Tenant == nil {
		f.Tenant = ptr("acme")
	}
	k, err := h.svc.Issue(context.Background(), f)
	if err != nil {
		h.t.Fatal(err)
	}
	return k
}

func (h *harness) record(id string) *policy.Record {
	h.t.Helper()
	k, err := h.svc.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("Get %s: %v", id, err)
	}
	return k.Record
}

// noSecret fails if secret appears in the logs or in any URL or Location
// header u saw.
func (h *harness) noSecret(secret string, users ...*user) {
	h.t.Helper()
	if secret == "" {
		h.t.Fatal("noSecret: empty secret")
	}
	if strings.Contains(h.logs.String(), secret) {
		h.t.Errorf("a raw key is in the console's log:\n%s", h.logs.String())
	}
	for _, u := range users {
		for _, s := range u.rec.all() {
			if strings.Contains(s, secret) {
				h.t.Errorf("a raw key is in a URL or Location header: %s", s)
			}
		}
	}
}

var newKeyRE = regexp.MustCompile(`<code id="new-key" class="mono">([^<]+)</code>`)

// shownKey is the raw key a key page shows once, or "".
func shownKey(body string) string {
	if m := newKeyRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

var rowRE = regexp.MustCompile(`<tr data-id="([0-9A-Za-z]{12})">`)

// listedIDs are the key ids of a keys page, in order.
func listedIDs(body string) []string {
	var ids []string
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func ptr[T any](v T) *T { return &v }
