package main

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"testing"
)

// End-to-end through real proxies: a client talks to nginx or Caddy, which
// asks `keygate serve --http-addr` (GET /auth) and proxies allowed requests to
// an upstream that records what it received. The proxies run the files under
// envoy/ that users copy.

func TestProxyNginx(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t)
	f.run(t, startNginx(t, f.ring.all, f.keygate, f.up.addr))
}

func TestProxyCaddy(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t)
	f.run(t, startCaddy(t, f.ring.all, f.keygate, f.up.addr))
}

// proxyFixture is keygate on a file store with a routes file (/admin needs
// the admin scope, POST /v1/orders orders:write), one key per case, and the
// upstream.
type proxyFixture struct {
	ring    keyring
	keys    map[string]created
	keygate string // host:port of --http-addr
	srv     *server
	up      *upstream
}

// proxyKeys are the `keys create` flags of each fixture key.
var proxyKeys = map[string][]string{
	"plain":     {"--tenant", "acme", "--scopes", "orders:read"},
	"noscopes":  {"--tenant", "beta"},
	"local":     {"--tenant", "acme", "--cidrs", "127.0.0.1/32"},
	"remote":    {"--tenant", "acme", "--cidrs", "10.0.0.0/8"},
	"thishost":  {"--tenant", "acme", "--hosts", "127.0.0.1"},
	"otherhost": {"--tenant", "acme", "--hosts", "api.example.com"},
	"limited":   {"--tenant", "acme", "--rate-limit", "1/minute"},
}

const proxyRoutes = `{"routes": [
  {"path_prefix": "/admin", "scopes": ["admin"]},
  {"method": "POST", "path_prefix": "/v1/orders", "scopes": ["orders:write"]},
  {"path_prefix": "/", "scopes": []}
]}`

func newProxyFixture(t *testing.T) *proxyFixture {
	t.Helper()
	f := &proxyFixture{keys: map[string]created{}}
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	for name, args := range proxyKeys {
		f.keys[name] = f.ring.add(createKey(t, env, args...))
	}
	// Well-formed, but from another store: unknown here.
	other := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/other.yaml"}
	f.keys["unknown"] = f.ring.add(createKey(t, other, "--tenant", "acme"))
	routes := writeFile(t, "routes.json", proxyRoutes)
	f.srv = serve(t, env, f.ring.all, "--http-addr", "127.0.0.1:0", "--routes-file", routes)
	f.keygate = strings.TrimPrefix(f.srv.httpAddr(t), "http://")
	f.up = newUpstream(t)
	return f
}

// proxyAllowCase is a request the upstream must receive, with keygate's
// identity and without the credential.
type proxyAllowCase struct {
	name, key      string
	bearer         bool
	headers        map[string]string // more client-sent headers
	tenant, scopes string            // what the upstream sees; "" = absent
}

var proxyAllow = []proxyAllowCase{
	{name: "x-api-key", key: "plain", tenant: "acme", scopes: "orders:read"},
	{name: "bearer", key: "plain", bearer: true, tenant: "acme", scopes: "orders:read"},
	{name: "spoofed identity", key: "plain", tenant: "acme", scopes: "orders:read",
		headers: map[string]string{"X-Keygate-Key-Id": "evil", "X-Keygate-Tenant": "evil"}},
	{name: "spoofed scopes, key without scopes", key: "noscopes", tenant: "beta",
		headers: map[string]string{"X-Keygate-Scopes": "admin"}},
	{name: "cidr 127.0.0.1/32", key: "local", tenant: "acme"},
	{name: "cidr 127.0.0.1/32, client-sent XFF", key: "local", tenant: "acme",
		headers: map[string]string{"X-Forwarded-For": "10.1.2.3"}},
	{name: "host 127.0.0.1", key: "thishost", tenant: "acme"},
	{name: "rate limit 1/minute, first request", key: "limited", tenant: "acme"}, // before the deny below
}

// proxyDenyCase is a request the proxy must answer itself (with keygate's
// status and x-keygate-reason), the upstream never reached.
type proxyDenyCase struct {
	name, key, method, path string // method GET and path /v1/orders if ""
	headers                 map[string]string
	// caddyStatus/caddyReason, when set, are Caddy's answer instead:
	// Caddy overwrites X-Forwarded-* but passes a client's X-Original-*
	// through, so keygate sees the two disagree and answers 400.
	caddyStatus int
	caddyReason string
	status      int
	reason      string
}

var proxyDeny = []proxyDenyCase{
	{name: "no key", status: 401, reason: "missing_key"},
	{name: "unknown key", key: "unknown", status: 401, reason: "unknown_key"},
	{name: "cidr 10.0.0.0/8", key: "remote", status: 403, reason: "cidr_denied"},
	{name: "cidr 10.0.0.0/8, spoofed XFF", key: "remote", status: 403, reason: "cidr_denied",
		headers: map[string]string{"X-Forwarded-For": "10.1.2.3"}},
	{name: "other host, spoofed X-Forwarded-Host", key: "otherhost", status: 403, reason: "host_denied",
		headers: map[string]string{"X-Forwarded-Host": "api.example.com"}},
	{name: "route needs admin", key: "plain", path: "/admin/users", status: 403, reason: "scope_denied"},
	{name: "route needs admin, spoofed URI", key: "plain", path: "/admin/users", status: 403, reason: "scope_denied",
		headers:     map[string]string{"X-Forwarded-Uri": "/public", "X-Original-URI": "/public"},
		caddyStatus: 400, caddyReason: "ambiguous_forwarded_request"},
	{name: "POST needs orders:write", key: "plain", method: "POST", status: 403, reason: "scope_denied"},
	{name: "POST needs orders:write, spoofed method", key: "plain", method: "POST", status: 403, reason: "scope_denied",
		headers:     map[string]string{"X-Forwarded-Method": "GET", "X-Original-Method": "GET"},
		caddyStatus: 400, caddyReason: "ambiguous_forwarded_request"},
	{name: "rate limit 1/minute, second request", key: "limited", status: 429, reason: "rate_limited"},
}

func (f *proxyFixture) run(t *testing.T, p *proxy) {
	for _, c := range proxyAllow {
		t.Run("allow/"+c.name, func(t *testing.T) { f.allowed(t, p, c) })
	}
	for _, c := range proxyDeny {
		t.Run("deny/"+c.name, func(t *testing.T) { f.denied(t, p, c) })
	}
	t.Run("deny/keygate down", func(t *testing.T) { f.keygateDown(t, p) })
}

func (f *proxyFixture) allowed(t *testing.T, p *proxy, c proxyAllowCase) {
	k := f.keys[c.key]
	h := map[string]string{"X-Api-Key": k.Key}
	if c.bearer {
		h = map[string]string{"Authorization": "Bearer " + k.Key}
	}
	maps.Copy(h, c.headers)
	before := f.up.count()
	resp, body := p.do(t, "GET", "/v1/orders?x=1", h)
	if resp.StatusCode != 200 || body != "upstream ok" || f.up.count() != before+1 {
		t.Fatalf("%s: %d %q (reason %q), upstream requests %d -> %d", p.name, resp.StatusCode,
			body, resp.Header.Get("X-Keygate-Reason"), before, f.up.count())
	}
	got := f.up.last()
	if got.URL.RequestURI() != "/v1/orders?x=1" {
		t.Errorf("upstream got %q", got.URL.RequestURI())
	}
	wantHeader(t, got.Header, "X-Keygate-Key-Id", k.ID)
	wantHeader(t, got.Header, "X-Keygate-Tenant", c.tenant)
	wantHeader(t, got.Header, "X-Keygate-Scopes", c.scopes)
	wantHeader(t, got.Header, "X-Api-Key", "")
	wantHeader(t, got.Header, "Authorization", "")
}

func (f *proxyFixture) denied(t *testing.T, p *proxy, c proxyDenyCase) {
	h := map[string]string{}
	if c.key != "" {
		h["X-Api-Key"] = f.keys[c.key].Key
	}
	maps.Copy(h, c.headers)
	before := f.up.count()
	resp, _ := p.do(t, cmp.Or(c.method, "GET"), cmp.Or(c.path, "/v1/orders"), h)
	if p.name == "caddy" && c.caddyStatus != 0 {
		c.status, c.reason = c.caddyStatus, c.caddyReason
	}
	if resp.StatusCode != c.status || resp.Header.Get("X-Keygate-Reason") != c.reason {
		t.Errorf("%s: %d %q, want %d %q", p.name, resp.StatusCode, resp.Header.Get("X-Keygate-Reason"), c.status, c.reason)
	}
	if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without WWW-Authenticate", p.name)
	}
	if c.status == 429 && resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: 429 without Retry-After", p.name)
	}
	if n := f.up.count(); n != before {
		t.Errorf("upstream reached: %d -> %d requests", before, n)
	}
}

// keygateDown stops keygate: the proxy must fail closed (nginx 500, Caddy
// 502), even for a valid key.
func (f *proxyFixture) keygateDown(t *testing.T, p *proxy) {
	f.srv.stop(t, f.ring.all)
	before := f.up.count()
	resp, _ := p.do(t, "GET", "/v1/orders", map[string]string{"X-Api-Key": f.keys["plain"].Key})
	if resp.StatusCode < 500 {
		t.Errorf("%s with keygate down: %d, want 5xx", p.name, resp.StatusCode)
	}
	if n := f.up.count(); n != before {
		t.Errorf("upstream reached: %d -> %d requests", before, n)
	}
}

// wantHeader checks that h holds name exactly once with value want, or not
// at all when want is "".
func wantHeader(t *testing.T, h map[string][]string, name, want string) {
	t.Helper()
	got := h[name]
	switch {
	case want == "" && len(got) != 0:
		t.Errorf("upstream saw %s: %d values", name, len(got))
	case want != "" && !slices.Equal(got, []string{want}):
		t.Errorf("upstream saw %s = %q, want [%q]", name, redactAll(got), want)
	}
}

func redactAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = redact(v)
	}
	return out
}
