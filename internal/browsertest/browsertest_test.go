package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// strictCSP is what the console will send: no inline script or style.
const strictCSP = "default-src 'none'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"

// page wraps body in an accessible document.
func page(title, body string) string {
	return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
		`<title>` + title + `</title><link rel="stylesheet" href="/style.css"></head>` +
		`<body><main><h1>` + title + `</h1>` + body + `</main><script src="/app.js"></script></body></html>`
}

// site is a small app: a sign-in form setting a session cookie, a page
// showing who is signed in, pages that pass and fail axe, all under strictCSP.
func site() http.Handler {
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, "body { font: 16px sans-serif; color: #111; background: #fff } .tall { height: 2400px }")
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `for (const e of document.querySelectorAll('[data-js]')) e.textContent = 'script ran';`)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, page("Sign in", `<p data-js="">no script</p>
<form method="post" action="/login"><label for="user">User name</label>
<input id="user" name="user" autocomplete="username"><button type="submit">Sign in</button></form>`))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: r.FormValue("user"), Path: "/",
			HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/whoami", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		user := "nobody"
		if c, err := r.Cookie("session"); err == nil {
			user = c.Value
		}
		write(w, http.StatusOK, page("Who", `<p id="who">`+html.EscapeString(user)+`</p>`))
	})
	mux.HandleFunc("GET /tall", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, page("Tall", `<div class="tall">top</div><p>bottom</p>`))
	})
	mux.HandleFunc("GET /inline", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, page("Inline", `<script>document.title = 'inline ran'</script>`))
	})
	mux.HandleFunc("GET /framed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Which", "main")
		write(w, http.StatusOK, page("Framed", `<iframe src="/frame" title="inner"></iframe>`))
	})
	mux.HandleFunc("GET /frame", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Which", "frame")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		write(w, http.StatusOK, `<!doctype html><html lang="en"><title>inner</title><p>inner</p></html>`)
	})
	mux.HandleFunc("GET /inaccessible", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, `<!doctype html><html lang="en"><head><title>Bad</title></head><body><main><h1>Bad</h1>
<img src="/style.css"><form><input name="q"><button type="submit">Go</button></form></main></body></html>`)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", strictCSP)
		mux.ServeHTTP(w, r)
	})
}

// serve starts site over TLS on 127.0.0.1 (Secure cookies need it; the
// browser takes its self-signed certificate).
func serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewTLSServer(site())
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestSignInFormAndCookies(t *testing.T) {
	b := New(t)
	url := serve(t)
	tab := b.NewTab(t)

	if resp := tab.Navigate(url + "/"); resp.Status != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", resp.Status)
	}
	if got := tab.Text("[data-js]"); got != "script ran" {
		t.Errorf("script-src 'self' script: text %q, want %q", got, "script ran")
	}
	tab.Run(chromedp.SendKeys(chromedp.CSS("#user"), "ada"))
	resp := tab.RunResponse(chromedp.Click(chromedp.CSS("button[type=submit]")))
	if resp.Status != http.StatusOK || !strings.HasSuffix(resp.URL, "/whoami") {
		t.Errorf("after submit: %d %s, want 200 .../whoami", resp.Status, resp.URL)
	}
	if got := tab.URL(); got != url+"/whoami" {
		t.Errorf("URL() = %q, want %q", got, url+"/whoami")
	}
	if got := tab.Text("#who"); got != "ada" {
		t.Errorf("#who = %q, want ada", got)
	}

	c := tab.Cookie("session")
	if c == nil {
		t.Fatalf("no session cookie in %v", tab.Cookies())
	}
	if c.Value != "ada" || !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || !c.Session {
		t.Errorf("session cookie = %+v, want ada, HttpOnly, Secure, SameSite=Strict, session", *c)
	}
	if errs := tab.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

func TestTabsHaveSeparateCookies(t *testing.T) {
	b := New(t)
	url := serve(t)
	signIn := func(user string) *Tab {
		tab := b.NewTab(t)
		tab.Navigate(url + "/")
		tab.Run(chromedp.SendKeys(chromedp.CSS("#user"), user))
		tab.RunResponse(chromedp.Submit(chromedp.CSS("form")))
		return tab
	}
	ada, bob, anon := signIn("ada"), signIn("bob"), b.NewTab(t)
	anon.Navigate(url + "/whoami")

	for tab, want := range map[*Tab]string{ada: "ada", bob: "bob", anon: "nobody"} {
		tab.Navigate(url + "/whoami")
		if got := tab.Text("#who"); got != want {
			t.Errorf("#who = %q, want %q", got, want)
		}
	}
	if got := anon.Cookies(); len(got) != 0 {
		t.Errorf("a tab that never signed in has cookies %v", got)
	}
}

func TestResponse(t *testing.T) {
	b := New(t)
	url := serve(t)
	tab := b.NewTab(t)

	if tab.Response() != nil {
		t.Errorf("Response() before any navigation = %+v, want nil", tab.Response())
	}
	if resp := tab.Navigate(url + "/missing"); resp.Status != http.StatusNotFound {
		t.Errorf("GET /missing = %d, want 404", resp.Status)
	}
	tab.Navigate(url + "/framed")
	tab.Text("iframe")
	resp := tab.Response()
	if got := Header(resp, "x-which"); got != "main" {
		t.Errorf("Response() X-Which = %q, want main (the main frame's, not the iframe's)", got)
	}
	if got := Header(resp, "Content-Security-Policy"); got != strictCSP {
		t.Errorf("Response() CSP = %q, want %q", got, strictCSP)
	}
}

func TestStrictCSPIsEnforced(t *testing.T) {
	b := New(t)
	url := serve(t)
	tab := b.NewTab(t)
	tab.Navigate(url + "/inline")
	if got := Get(tab, chromedp.Title()); got != "Inline" {
		t.Errorf("title = %q: the inline script ran despite the CSP", got)
	}
	errs := tab.Errors()
	if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "Content Security Policy") }) {
		t.Errorf("Errors() = %q, want a Content Security Policy violation", errs)
	}
}

func TestOnlyLoopback(t *testing.T) {
	b := New(t)
	tab := b.NewTab(t)
	for _, url := range []string{"http://example.com/", "http://192.0.2.1/"} {
		ctx, cancel := context.WithTimeout(tab.ctx, 10*time.Second)
		start := time.Now()
		_, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut {
			t.Errorf("navigating to %s: %v after %v, want a quick network error", url, err, time.Since(start))
		}
	}
}

func TestScreenshot(t *testing.T) {
	b := New(t)
	url := serve(t)
	tab := b.NewTab(t)
	tab.Navigate(url + "/tall")
	path := filepath.Join(t.TempDir(), "shots", "nested", "tall.png")
	tab.Screenshot(path)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if h := img.Bounds().Dy(); h < 2400 {
		t.Errorf("screenshot is %d px high, want the whole page (>= 2400)", h)
	}
}

func TestAxe(t *testing.T) {
	b := New(t)
	url := serve(t)
	tab := b.NewTab(t)

	tab.Navigate(url + "/")
	if v := Serious(tab.Axe()); len(v) > 0 {
		t.Errorf("accessible page under %q: serious violations %v", strictCSP, v)
	}
	if errs := tab.Errors(); len(errs) > 0 {
		t.Errorf("injecting axe caused page errors (CSP?): %q", errs)
	}

	tab.Navigate(url + "/inaccessible")
	v := tab.Axe()
	var ids []string
	for _, x := range v {
		ids = append(ids, x.ID)
	}
	for _, want := range []string{"image-alt", "label"} {
		i := slices.IndexFunc(v, func(x Violation) bool { return x.ID == want })
		if i < 0 {
			t.Errorf("violations %v, want %s among them", ids, want)
			continue
		}
		if got := v[i]; len(Serious([]Violation{got})) == 0 || len(got.Nodes) == 0 || len(got.Nodes[0].Target) == 0 {
			t.Errorf("%s: %+v, want a serious or critical impact and the failing node", want, got)
		}
	}
	t.Logf("inaccessible page: %v", v)
}

func TestSerious(t *testing.T) {
	in := []Violation{{ID: "a", Impact: "minor"}, {ID: "b", Impact: "moderate"}, {ID: "c", Impact: "serious"}, {ID: "d", Impact: "critical"}, {ID: "e"}}
	got := Serious(in)
	if len(got) != 2 || got[0].ID != "c" || got[1].ID != "d" {
		t.Errorf("Serious = %v, want c and d", got)
	}
}

func TestFindToolNamesTheScript(t *testing.T) {
	t.Setenv(EnvAxe, filepath.Join(t.TempDir(), "none.js"))
	if _, err := findTool("axe.min.js", EnvAxe, nil); err == nil || !strings.Contains(err.Error(), "scripts/chromium.sh") {
		t.Errorf("findTool with a missing $%s = %v, want an error naming scripts/chromium.sh", EnvAxe, err)
	}
}
