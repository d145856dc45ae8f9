package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/browsertest"
	"github.com/keygate/keygate/internal/vaulttest"
)

var linkRE = regexp.MustCompile(`sign in \(once, within [^)]*\): (\S+)`)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the console's screenshots to docs/console/")

// consoleRun is a running `keygate console`.
type consoleRun struct {
	url  string
	link string // the one-time sign-in link (file store)
	logs *syncBuffer
}

// startConsole runs `keygate console` in-process on a loopback port (and,
// on the file store, reads the one-time sign-in link it prints).
func startConsole(t *testing.T, env envMap, args ...string) *consoleRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &consoleRun{logs: &syncBuffer{}}
	var stdout syncBuffer
	done := make(chan error, 1)
	args = append([]string{"console", "--addr", "127.0.0.1:0", "--log-level", "debug"}, args...)
	go func() { done <- run(ctx, args, env.get, strings.NewReader(""), &stdout, c.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && err != context.Canceled {
				t.Errorf("console returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("console did not stop within 20s")
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console log:\n%s", redact(c.logs.String()))
		}
	})
	re := regexp.MustCompile(`keygate console: (https?://127\.0\.0\.1:\d+)`)
	eventually(t, 20*time.Second, "console listening", func() bool {
		select {
		case err := <-done:
			t.Fatalf("console exited: %v\n%s", err, redact(c.logs.String()))
		default:
		}
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			c.url = m[1]
			if l := linkRE.FindStringSubmatch(stdout.String()); l != nil {
				c.link = l[1]
			}
			return true
		}
		return false
	})
	return c
}

// vaultPeople enables a userpass mount and makes two people: alice with
// the shipped admin policy and bob who may only read and list, both for
// the test's base path. It returns the mount.
func vaultPeople(t *testing.T, root *vaultapi.Client, base string) string {
	t.Helper()
	const mount = "userpass" // the console's default; people are then "userpass-<name>"
	if err := root.Sys().EnableAuthWithOptions(mount, &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatalf("enable userpass: %v", err)
	}
	t.Cleanup(func() { _ = root.Sys().DisableAuth(mount) })
	admin, err := os.ReadFile("../../vault/policies/keygate-admin.hcl")
	if err != nil {
		t.Fatal(err)
	}
	adminPolicy := strings.ReplaceAll(string(admin), "secret/data/keygate/", "secret/data/"+base+"/")
	adminPolicy = strings.ReplaceAll(adminPolicy, "secret/metadata/keygate/", "secret/metadata/"+base+"/")
	readPolicy := fmt.Sprintf(`
path "secret/data/%[1]s/keys/+" { capabilities = ["read"] }
path "secret/data/%[1]s/usage/+" { capabilities = ["read"] }
path "secret/data/%[1]s/journal" { capabilities = ["read"] }
path "secret/metadata/%[1]s/keys" { capabilities = ["list"] }
`, base)
	for name, body := range map[string]string{mount + "-admin": adminPolicy, mount + "-read": readPolicy} {
		if err := root.Sys().PutPolicy(name, body); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		t.Cleanup(func() { _ = root.Sys().DeletePolicy(name) })
	}
	for user, policy := range map[string]string{"alice": mount + "-admin", "bob": mount + "-read"} {
		if _, err := root.Logical().Write("auth/"+mount+"/users/"+user, map[string]any{
			"password": user + "-password", "token_policies": policy, "token_ttl": "1h",
		}); err != nil {
			t.Fatalf("user %s: %v", user, err)
		}
	}
	return mount
}

// liveTokens counts the live Vault tokens of a display name.
func liveTokens(t *testing.T, root *vaultapi.Client, displayName string) int {
	t.Helper()
	sec, err := root.Logical().List("auth/token/accessors")
	if err != nil || sec == nil {
		t.Fatalf("list token accessors: %v", err)
	}
	keys, _ := sec.Data["keys"].([]any)
	n := 0
	for _, k := range keys {
		acc, _ := k.(string)
		info, err := root.Auth().Token().LookupAccessor(acc)
		if err != nil || info == nil {
			continue
		}
		if dn, _ := info.Data["display_name"].(string); dn == displayName {
			n++
		}
	}
	return n
}

// grantClipboard lets the tab's pages at origin use the clipboard.
func grantClipboard(t *testing.T, tab *browsertest.Tab, origin string) {
	t.Helper()
	browsertest.Get(tab, func(ctx context.Context, _ *chromedp.Target) (struct{}, error) {
		c := chromedp.FromContext(ctx)
		for _, name := range []string{"clipboard-read", "clipboard-write"} {
			if _, err := cdp.Call(ctx, c.Browser, browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted,
				Origin: origin, BrowserContextID: c.BrowserContextID,
			}); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
}

// checkedErrors: how many of each tab's browser errors were reported.
var checkedErrors = map[*browsertest.Tab]int{}

// signIn signs user in; Vault names them <mount>-<user>.
func signIn(t *testing.T, tab *browsertest.Tab, base, mount, user string) {
	t.Helper()
	tab.Navigate(base + "/login")
	tab.RunResponse(
		chromedp.SetValue(chromedp.CSS("#method"), "userpass"),
		chromedp.SetValue(chromedp.CSS("#user"), user),
		chromedp.SetValue(chromedp.CSS("#secret"), user+"-password"),
		chromedp.Click(chromedp.CSS("#login button[type=submit]")),
	)
	if got := tab.Text("#who"); got != mount+"-"+user {
		t.Fatalf("signed in as %q, want %s-%s", got, mount, user)
	}
}

// checkPage asserts the page has no serious or critical accessibility
// violations and the browser reported no error (a CSP violation, a failed
// load) since the tab's previous check, and saves its screenshot.
func checkPage(t *testing.T, tab *browsertest.Tab, shots, name string) {
	t.Helper()
	if v := browsertest.Serious(tab.Axe()); len(v) > 0 {
		t.Errorf("%s: accessibility violations: %v", name, v)
	}
	if errs := tab.Errors(); len(errs) > checkedErrors[tab] {
		t.Errorf("%s: browser errors (CSP violations included): %v", name, errs[checkedErrors[tab]:])
		checkedErrors[tab] = len(errs)
	}
	tab.Screenshot(filepath.Join(shots, name+".png"))
}

// TestConsoleBrowser drives the console in a real headless Chromium against
// a real Vault and a real `keygate serve`, as a security team would.
func TestConsoleBrowser(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	base := env["KEYGATE_VAULT_BASE_PATH"]
	v := vaulttest.Server(t)
	root := v.Client(t)
	mount := vaultPeople(t, root, base)
	audit := auditFile(t)
	other := ring.add(createKey(t, env, "--tenant", "globex", "--name", "globex billing", "--scopes", "billing:read"))
	s := serve(t, env, ring.all)
	// The console has no token of its own: people sign in with theirs.
	cons := startConsole(t, env.with("VAULT_TOKEN", ""))
	shots := t.TempDir()
	if *updateScreenshots {
		shots = "../../docs/console"
	}

	b := browsertest.New(t)
	alice := b.NewTab(t)
	resp := alice.Navigate(cons.url + "/login")
	if csp := browsertest.Header(resp, "Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
		!strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	checkPage(t, alice, shots, "login")

	// A wrong password is Vault's refusal, shown as such.
	alice.RunResponse(
		chromedp.SetValue(chromedp.CSS("#user"), "alice"),
		chromedp.SetValue(chromedp.CSS("#secret"), "wrong"),
		chromedp.Click(chromedp.CSS("#login button[type=submit]")),
	)
	if got := alice.Text("#error"); !strings.Contains(got, "invalid username or password") {
		t.Errorf("wrong password: %q", got)
	}
	checkedErrors[alice] = len(alice.Errors()) // the 401 just asked for

	signIn(t, alice, cons.url, mount, "alice")
	aliceName := mount + "-alice"
	ck := alice.Cookie("keygate_session")
	if ck == nil || !ck.HTTPOnly || ck.SameSite != "Strict" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict", ck)
	}
	if n := liveTokens(t, root, aliceName); n != 1 {
		t.Fatalf("alice has %d live Vault tokens after sign-in, want 1", n)
	}
	if got := alice.Text("#count-total"); got != "1" {
		t.Errorf("overview counts %s keys, want 1", got)
	}
	checkPage(t, alice, shots, "overview")

	// Create a key: shown once, usable at once.
	alice.Navigate(cons.url + "/new")
	checkPage(t, alice, shots, "new-key")
	alice.RunResponse(
		chromedp.SetValue(chromedp.CSS("#f-name"), "orders service"),
		chromedp.SetValue(chromedp.CSS("#f-tenant"), "acme"),
		chromedp.SetValue(chromedp.CSS("#f-owner"), "team-orders@example.com"),
		chromedp.SetValue(chromedp.CSS("#f-scopes"), "orders:read orders:write"),
		chromedp.SetValue(chromedp.CSS("#f-expires-in"), "90d"),
		chromedp.Click(chromedp.CSS("#submit")),
	)
	raw := alice.Text("#new-key")
	id := alice.Text("#key-id")
	ring.add(created{ID: id, Key: raw})
	if !keyShape.MatchString(raw) {
		t.Fatalf("the new key page shows %d characters, not a key", len(raw))
	}
	if strings.Contains(alice.URL(), raw) {
		t.Fatal("the new key is in the URL")
	}
	if o := s.decide(t, raw, checkFlags{}); o.status != 200 {
		t.Fatalf("Check with the key the console issued: %v", o)
	}
	// The copy button puts the key on the clipboard.
	grantClipboard(t, alice, cons.url)
	alice.Run(chromedp.Click(chromedp.CSS("button.copy")))
	copied := "" // the script sets it when the clipboard's promise settles
	eventually(t, 5*time.Second, "the copy button's status", func() bool {
		copied = browsertest.Get(alice, chromedp.Evaluate[string](`document.querySelector("#copied").textContent`))
		return copied != ""
	})
	if copied != "Copied." {
		t.Errorf("after Copy: %q", copied)
	}
	if clip := browsertest.Get(alice, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)); clip != raw {
		t.Errorf("the clipboard holds %d characters, not the key", len(clip))
	}
	alice.RunResponse(chromedp.Reload())
	if gone := browsertest.Get(alice, chromedp.Evaluate[bool](`document.querySelector("#new-key") === null`)); !gone {
		t.Fatal("the new key is still shown after a reload")
	}
	if strings.Contains(browsertest.Get(alice, chromedp.Evaluate[string](`document.documentElement.outerHTML`)), raw) {
		t.Fatal("the reloaded page still holds the key")
	}
	checkPage(t, alice, shots, "key")

	alice.Navigate(cons.url + "/keys?sort=name")
	if got := alice.Text("#total"); !strings.HasPrefix(got, "2 keys") {
		t.Errorf("keys page: %q, want 2 keys", got)
	}
	checkPage(t, alice, shots, "keys")
	alice.Navigate(cons.url + "/import")
	checkPage(t, alice, shots, "import")

	// bob may list and read, not revoke: Vault's refusal, nothing changes.
	bob := b.NewTab(t)
	signIn(t, bob, cons.url, mount, "bob")
	bob.Navigate(cons.url + "/keys")
	if got := bob.Text("#total"); !strings.HasPrefix(got, "2 keys") {
		t.Errorf("bob's keys page: %q", got)
	}
	bob.Navigate(cons.url + "/keys/" + other.ID)
	resp = bob.RunResponse(
		chromedp.SetValue(chromedp.CSS("#reason"), "testing"),
		chromedp.Click(chromedp.CSS("#confirm-revoke")),
		chromedp.Click(chromedp.CSS("#revoke")),
	)
	if resp.Status != http.StatusForbidden || !strings.Contains(bob.Text("#error"), "Vault refused") {
		t.Errorf("bob's revoke: HTTP %d %q, want 403 and Vault's refusal", resp.Status, bob.Text("#error"))
	}
	if out := mustCLI(t, env, "keys", "show", other.ID, "--json"); !strings.Contains(out, `"status": "active"`) && !strings.Contains(out, `"status":"active"`) {
		t.Errorf("after bob's refused revoke the key is not active: %s", redact(out))
	}
	if o := s.decide(t, other.Key, checkFlags{}); o.status != 200 {
		t.Errorf("the key bob could not revoke is denied: %v", o)
	}

	// A POST without the CSRF token is refused, even with bob's session.
	form := url.Values{"confirm": {"yes"}, "reason": {"csrf"}}
	req, _ := http.NewRequest(http.MethodPost, cons.url+"/keys/"+other.ID+"/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "keygate_session", Value: bob.Cookie("keygate_session").Value})
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusForbidden {
		t.Errorf("POST without a CSRF token: %v %v, want 403", r, err)
	} else {
		r.Body.Close()
	}

	// alice revokes, with a reason: every replica denies within 2 s.
	alice.Navigate(cons.url + "/keys/" + id)
	start := time.Now()
	alice.RunResponse(
		chromedp.SetValue(chromedp.CSS("#reason"), "leaked"),
		chromedp.Click(chromedp.CSS("#confirm-revoke")),
		chromedp.Click(chromedp.CSS("#revoke")),
	)
	if got := alice.Text("#key-status"); got != "revoked (leaked)" {
		t.Errorf("status after revoke: %q", got)
	}
	took := eventually(t, 2*time.Second, "Check denied after the console's revoke", func() bool {
		return s.decide(t, raw, checkFlags{}).status == 401
	})
	t.Logf("revoked in the console → denied by keygate serve after %s (%s after the click)", took, time.Since(start).Round(time.Millisecond))

	// Vault's audit device saw alice, not the console, write the record;
	// the console's log names her; no raw key anywhere.
	auditLog, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"display_name":"` + aliceName + `"[^\n]*"path":"secret/data/` + regexp.QuoteMeta(base) + `/keys/` + id).Match(auditLog) {
		t.Error("Vault's audit log has no write of the key by alice")
	}
	logs := cons.logs.String()
	if !strings.Contains(logs, `"action":"revoke"`) || !strings.Contains(logs, `"who":"`+aliceName+`"`) {
		t.Errorf("console log lacks alice's revoke:\n%s", redact(logs))
	}
	for _, k := range ring.all() {
		if strings.Contains(logs, k) || strings.Contains(string(auditLog), k) {
			t.Error("a raw key is in the console's log or Vault's audit log")
		}
	}

	// Sign-out revokes the Vault token.
	alice.RunResponse(chromedp.Click(chromedp.CSS(".signout button")))
	if !strings.HasSuffix(alice.URL(), "/login") {
		t.Errorf("after sign-out at %s", alice.URL())
	}
	if n := liveTokens(t, root, aliceName); n != 0 {
		t.Errorf("alice has %d live Vault tokens after sign-out, want 0", n)
	}
	alice.Navigate(cons.url + "/keys")
	if !strings.HasSuffix(alice.URL(), "/login") {
		t.Errorf("after sign-out /keys is at %s, want the sign-in page", alice.URL())
	}
}

// prometheusBin finds the Prometheus server scripts/prometheus.sh links:
// $PROMETHEUS, <repo>/.tools/prometheus or $PATH. Without one it skips,
// or fails when CI is set.
func prometheusBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("PROMETHEUS"), "../../.tools/prometheus"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no prometheus: run scripts/prometheus.sh")
	}
	t.Skip("no prometheus: run scripts/prometheus.sh")
	return ""
}

// startPrometheus runs a real Prometheus on loopback scraping target
// (host:port) every second, and returns its URL once it is ready.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin := prometheusBin(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs: [{job_name: keygate, static_configs: [{targets: [%q]}]}]
`, target)), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out syncBuffer
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", out.String())
		}
	})
	u := "http://" + addr
	eventually(t, 30*time.Second, "prometheus ready", func() bool {
		r, err := http.Get(u + "/-/ready")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	return u
}

// TestConsoleUsageChart: with --prometheus-url, the key, tenant and
// overview pages chart request rates from a real Prometheus scraping a real
// keygate serve.
func TestConsoleUsageChart(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme", "--scopes", "orders:read"))
	s := serve(t, env, ring.all, "--metrics-addr", ":0", "--metrics-key-requests")
	metrics := strings.TrimPrefix(s.logAddr(t, "serving metrics", "metrics_addr"), "http://")
	prom := startPrometheus(t, metrics)

	cons := startConsole(t, env, "--prometheus-url", prom)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	if r, err := client.Get(cons.link); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("sign-in link: %v %v", r, err)
	}

	page := func(path string) string {
		r, err := client.Get(cons.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	if p := page("/keys/" + k.ID); !strings.Contains(p, "No requests recorded") {
		t.Errorf("before any Check the key page should say no requests were recorded:\n%s", p)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // Checks until the chart shows them, at most 600 (one per 50ms)
		defer close(done)
		for range 600 {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				s.decideQuiet(k.Key)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for _, path := range []string{"/keys/" + k.ID, "/keys?tenant=acme", "/"} {
		eventually(t, 30*time.Second, "a chart of allowed requests on "+path, func() bool {
			p := page(path)
			return strings.Contains(p, "<polyline") && strings.Contains(p, `class="swatch allowed"`)
		})
	}
	if p := page("/keys/" + k.ID); strings.Contains(p, "style=") {
		t.Error("the chart uses an inline style attribute, which the Content-Security-Policy blocks")
	}
}

// TestConsoleOIDC: single sign-on through Vault's oidc auth method with a
// real identity-provider round trip (a loopback provider), in Chromium.
func TestConsoleOIDC(t *testing.T) {
	env := vaultEnv(t)
	base := env["KEYGATE_VAULT_BASE_PATH"]
	root := vaulttest.Server(t).Client(t)
	mount := vaultPeople(t, root, base) // for its admin policy
	idp := newOIDCProvider(t, "carol")
	if err := root.Sys().EnableAuthWithOptions("oidc", &vaultapi.EnableAuthOptions{Type: "oidc"}); err != nil {
		t.Fatalf("enable oidc: %v", err)
	}
	t.Cleanup(func() { _ = root.Sys().DisableAuth("oidc") })
	if _, err := root.Logical().Write("auth/oidc/config", map[string]any{
		"oidc_discovery_url": idp.issuer(), "oidc_client_id": idp.clientID, "oidc_client_secret": idp.secret, "default_role": "console",
	}); err != nil {
		t.Fatalf("oidc config: %v", err)
	}
	cons := startConsole(t, env.with("VAULT_TOKEN", ""), "--oidc-mount", "oidc")
	if _, err := root.Logical().Write("auth/oidc/role/console", map[string]any{
		"role_type": "oidc", "user_claim": "sub", "allowed_redirect_uris": []string{cons.url + "/login/oidc/callback"},
		"token_policies": mount + "-admin", "token_ttl": "1h", "oidc_scopes": "email",
	}); err != nil {
		t.Fatalf("oidc role: %v", err)
	}

	b := browsertest.New(t)
	tab := b.NewTab(t)
	tab.Navigate(cons.url + "/login")
	tab.Run(chromedp.Click(chromedp.CSS("#oidc"))) // a chain of navigations: the provider, the callback, the continue page
	// Poll without failing until the overview is shown: the continue page
	// also names the person (#who), and a node found on it is gone once its
	// refresh replaces it. Only the overview has #count-total.
	var who, total string
	eventually(t, 20*time.Second, "the overview after OIDC sign-in", func() bool {
		var err error
		if total, err = tab.TryText("#count-total"); err != nil || total == "" {
			return false // not the overview yet
		}
		who, err = tab.TryText("#who")
		return err == nil && who != ""
	})
	if !strings.Contains(who, "carol") {
		t.Fatalf("signed in through OIDC as %q, want carol", who)
	}
	t.Logf("signed in through the provider and Vault's oidc method as %s", who)
	if tab.Cookie("keygate_oidc") != nil {
		t.Error("the OIDC nonce cookie outlived the sign-in")
	}
	if total != "0" {
		t.Errorf("overview after OIDC sign-in: %s keys", total)
	}
	if n := liveTokens(t, root, who); n != 1 {
		t.Errorf("%d live tokens for %s, want 1", n, who)
	}

	// A callback this browser did not start cannot sign anyone in.
	other := b.NewTab(t)
	if resp := other.Navigate(cons.url + "/login/oidc/callback?state=forged&code=forged"); resp.Status != http.StatusBadRequest {
		t.Errorf("forged callback: HTTP %d, want 400", resp.Status)
	}
	if other.Cookie("keygate_session") != nil {
		t.Error("a forged callback made a session")
	}
	// A provider that refuses: the refusal is shown, no session.
	idp.mu.Lock()
	idp.refuse = true
	idp.mu.Unlock()
	other.Navigate(cons.url + "/login")
	other.RunResponse(chromedp.Click(chromedp.CSS("#oidc")))
	if got := other.Text("#error"); !strings.Contains(got, "access_denied") {
		t.Errorf("refused by the provider: %q", got)
	}

	tab.RunResponse(chromedp.Click(chromedp.CSS(".signout button")))
	if n := liveTokens(t, root, who); n != 0 {
		t.Errorf("%d live tokens for %s after sign-out, want 0", n, who)
	}
}

// TestConsoleTLS: with --tls-cert the console serves HTTPS, its session
// cookie is Secure with the __Host- prefix and pages ask for HSTS; without
// TLS it refuses an address off loopback unless --plaintext says so.
func TestConsoleTLS(t *testing.T) {
	p := newPKI(t)
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	createKey(t, env, "--tenant", "acme")
	cons := startConsole(t, env, "--tls-cert", p.serverCert, "--tls-key", p.key)
	if !strings.HasPrefix(cons.url, "https://") || !strings.HasPrefix(cons.link, "https://") {
		t.Fatalf("console at %s, link %q: want https", cons.url, redact(cons.link))
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: p.clientTLS(nil)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(cons.link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-keygate_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly ||
		session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("sign-in over TLS: HTTP %d, session cookie %+v; want 303 and a Secure, HttpOnly, SameSite=Strict __Host- cookie", resp.StatusCode, session)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("Strict-Transport-Security %q", hsts)
	}
	if _, stderr, err := cli(t, env, "console", "--addr", "0.0.0.0:0"); err == nil || !strings.Contains(err.Error()+stderr, "--tls-cert") {
		t.Errorf("plain HTTP off loopback: %v %s, want a refusal naming --tls-cert", err, stderr)
	}
}
