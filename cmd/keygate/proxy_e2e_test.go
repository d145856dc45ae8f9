package main

import (
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	kgdocs "github.com/keygate/keygate/internal/docs"
)

// End-to-end through real proxies: a client on 127.0.0.2 talks to nginx or
// Caddy, which asks `keygate serve --http-addr` (GET /auth) from 127.0.0.1
// and proxies allowed requests to an upstream that records what it
// received. The proxies run the files under envoy/ that users copy. Each
// case names the sentence in docs/deploy.md (section "Deploy with nginx / Caddy /
// Traefik") it protects; TestProxyCasesCiteREADME keeps them in step.

func TestProxyNginx(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t)
	f.run(t, startNginx(t, f.ring.all, f.keygate, f.up.addr))
	f.runUntrusted(t, startNginx(t, f.ring.all, f.untrusted, f.up.addr))
}

func TestProxyCaddy(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t)
	f.run(t, startCaddy(t, f.ring.all, f.keygate, f.up.addr))
	f.runUntrusted(t, startCaddy(t, f.ring.all, f.untrusted, f.up.addr))
}

// proxyFixture is keygate on a file store with a routes file (/admin needs
// the admin scope, POST /v1/orders orders:write), one key per case, and the
// upstream. keygate runs twice on the same store: as documented
// (--trusted-proxies 127.0.0.1/32, the proxies' address) and without
// --trusted-proxies.
type proxyFixture struct {
	ring      keyring
	keys      map[string]created
	keygate   string // host:port of --http-addr, with --trusted-proxies
	untrusted string // host:port of --http-addr, without
	srv       *server
	up        *upstream
}

// proxyKeys are the `keys create` flags of each fixture key.
var proxyKeys = map[string][]string{
	"plain":     {"--tenant", "acme", "--scopes", "orders:read"},
	"noscopes":  {"--tenant", "beta"},
	"client":    {"--tenant", "acme", "--cidrs", proxyClientIP + "/32"},
	"proxyaddr": {"--tenant", "acme", "--cidrs", "127.0.0.1/32"},
	"elsewhere": {"--tenant", "acme", "--cidrs", "127.0.0.3/32"},
	"remote":    {"--tenant", "acme", "--cidrs", "10.0.0.0/8"},
	"thishost":  {"--tenant", "acme", "--hosts", "127.0.0.1"},
	"otherhost": {"--tenant", "acme", "--hosts", proxySiteHost},
	"limited":   {"--tenant", "acme", "--rate-limit", "1/minute"},
	"gold":      {"--tenant", "acme", "--header", "x-plan=gold"},
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
	args := []string{"--http-addr", "127.0.0.1:0", "--routes-file", routes, "--strip-headers", "x-plan"}
	f.srv = serve(t, env, f.ring.all, append(args, "--trusted-proxies", "127.0.0.1/32")...)
	f.keygate = strings.TrimPrefix(f.srv.httpAddr(t), "http://")
	f.untrusted = strings.TrimPrefix(serve(t, env, f.ring.all, args...).httpAddr(t), "http://")
	f.up = newUpstream(t)
	return f
}

// README sentences the cases protect (whitespace aside, verbatim).
const (
	readmeIdentity   = "allowed requests reach the upstream with keygate's `x-keygate-*` values and without `X-Api-Key`/`Authorization`"
	readmeRecord     = "a client's copy of an identity or record header never reaches the upstream"
	readmeUnderscore = "header names with underscores never reach keygate or the upstream"
	readmeForwarded  = "client-sent `X-Forwarded-For/-Host/-Uri/-Method` never change a decision"
	readmeHost       = "a `Host` the proxy would read differently from the host it routes on is denied"
	readmeDenials    = "denials and a keygate outage never reach the upstream"
	readmeClient     = "a client-written entry, even one naming a trusted proxy, never becomes the client address"
	readmeUntrusted  = "Without `--trusted-proxies` keygate sees the proxy's address as every client's"
)

// proxyAllowCase is a request the upstream must receive, with keygate's
// identity and without the credential.
type proxyAllowCase struct {
	name, key      string
	readme         string // the README sentence this protects
	bearer         bool
	headers        map[string]string // more client-sent headers
	raw            http.Header       // more, sent as written
	tenant, scopes string            // what the upstream sees; "" = absent
	plan           string            // X-Plan the upstream sees; "" = absent
	// xff is the X-Forwarded-For the upstream sees, by proxy (unchecked if
	// nil): the proxy builds keygate's the same way.
	xff map[string]string
}

var proxyAllow = []proxyAllowCase{
	{name: "x-api-key", key: "plain", readme: readmeIdentity, tenant: "acme", scopes: "orders:read",
		xff: map[string]string{"nginx": proxyClientIP, "caddy": proxyClientIP}},
	{name: "bearer", key: "plain", readme: readmeIdentity, bearer: true, tenant: "acme", scopes: "orders:read"},
	{name: "spoofed identity", key: "plain", readme: readmeRecord, tenant: "acme", scopes: "orders:read",
		headers: map[string]string{"X-Keygate-Key-Id": "evil", "X-Keygate-Tenant": "evil", "X-Keygate-Reason": "evil"}},
	{name: "spoofed scopes, key without scopes", key: "noscopes", readme: readmeRecord, tenant: "beta",
		headers: map[string]string{"X-Keygate-Scopes": "admin"}},
	{name: "spoofed x-plan, key sets none", key: "plain", readme: readmeRecord, tenant: "acme", scopes: "orders:read",
		headers: map[string]string{"X-Plan": "forged"}},
	{name: "spoofed x-plan, key sets gold", key: "gold", readme: readmeRecord, tenant: "acme", plan: "gold",
		headers: map[string]string{"X-Plan": "forged"}},
	{name: "x-plan gold", key: "gold", readme: readmeRecord, tenant: "acme", plan: "gold"},
	{name: "underscored names", key: "plain", readme: readmeUnderscore, tenant: "acme", scopes: "orders:read",
		raw: http.Header{"X_Keygate_Tenant": {"evil"}, "X_Plan": {"forged"}, "X_Api_Key": {"junk"}, "x_keygate_scopes": {"admin"}}},
	{name: "cidr of the client", key: "client", readme: readmeClient, tenant: "acme"},
	{name: "cidr of the client, client-sent XFF", key: "client", readme: readmeClient, tenant: "acme",
		headers: map[string]string{"X-Forwarded-For": "10.1.2.3"},
		// nginx appends to the client's header, Caddy replaces it.
		xff: map[string]string{"nginx": "10.1.2.3, " + proxyClientIP, "caddy": proxyClientIP}},
	{name: "cidr of the client, client-sent XFF naming the proxy", key: "client", readme: readmeClient, tenant: "acme",
		headers: map[string]string{"X-Forwarded-For": "127.0.0.1"}},
	{name: "host 127.0.0.1", key: "thishost", readme: readmeForwarded, tenant: "acme"},
	{name: "host 127.0.0.1, repeated X-Forwarded-Host", key: "thishost", readme: readmeForwarded, tenant: "acme",
		raw: http.Header{"X-Forwarded-Host": {proxySiteHost, "evil.example"}}},
	{name: "rate limit 1/minute, first request", key: "limited", readme: readmeDenials, tenant: "acme"}, // before the deny below
}

// proxyDenyCase is a request the proxy must answer itself (with keygate's
// status and x-keygate-reason), the upstream never reached.
type proxyDenyCase struct {
	name, key string
	readme    string // the README sentence this protects
	req       clientRequest
	rawReq    string // sent instead of req if set; %s is the key
	// nginxStatus/nginxReason and caddyStatus/caddyReason, when set, are
	// that proxy's answer instead of status and reason.
	nginxStatus, caddyStatus int
	nginxReason, caddyReason string
	status                   int
	reason                   string
}

var proxyDeny = []proxyDenyCase{
	{name: "no key", readme: readmeDenials, status: 401, reason: "missing_key"},
	{name: "unknown key", key: "unknown", readme: readmeDenials, status: 401, reason: "unknown_key"},
	{name: "cidr 10.0.0.0/8", key: "remote", readme: readmeClient, status: 403, reason: "cidr_denied"},
	{name: "cidr 10.0.0.0/8, spoofed XFF", key: "remote", readme: readmeClient, status: 403, reason: "cidr_denied",
		req: clientRequest{headers: map[string]string{"X-Forwarded-For": "10.1.2.3"}}},
	{name: "cidr of the proxy", key: "proxyaddr", readme: readmeClient, status: 403, reason: "cidr_denied"},
	{name: "cidr 127.0.0.3, spoofed XFF", key: "elsewhere", readme: readmeClient, status: 403, reason: "cidr_denied",
		req: clientRequest{headers: map[string]string{"X-Forwarded-For": "127.0.0.3"}}},
	{name: "cidr 127.0.0.3, spoofed XFF ending in the proxy", key: "elsewhere", readme: readmeClient, status: 403, reason: "cidr_denied",
		req: clientRequest{headers: map[string]string{"X-Forwarded-For": "127.0.0.3, 127.0.0.1"}}},
	{name: "cidr 127.0.0.3, spoofed XFF lines", key: "elsewhere", readme: readmeClient, status: 403, reason: "cidr_denied",
		req: clientRequest{raw: http.Header{"X-Forwarded-For": {"127.0.0.3", "127.0.0.1"}}}},
	{name: "other host, spoofed X-Forwarded-Host", key: "otherhost", readme: readmeForwarded, status: 403, reason: "host_denied",
		req: clientRequest{headers: map[string]string{"X-Forwarded-Host": proxySiteHost}}},
	{name: "other host, repeated X-Forwarded-Host", key: "otherhost", readme: readmeForwarded, status: 403, reason: "host_denied",
		req: clientRequest{raw: http.Header{"X-Forwarded-Host": {proxySiteHost, proxySiteHost}}}},
	// nginx routes on "api.example.com" and refuses the Host itself (the
	// map in keygate.conf); Caddy routes on it too (its host matcher cuts
	// at the last ":") and passes the Host as it is to keygate, which
	// refuses it.
	{name: "host with a port trick", key: "otherhost", readme: readmeHost, status: 400, reason: "invalid_host",
		req: clientRequest{host: proxySiteHost + ":1.evil.example"}},
	// Caddy has no site for "api.example.com." and answers an empty 200
	// itself.
	{name: "host with a trailing dot", key: "otherhost", readme: readmeHost, status: 400, reason: "invalid_host",
		req: clientRequest{host: proxySiteHost + "."}, caddyStatus: 200},
	// The request line names api.example.com, Host 127.0.0.1. nginx routes
	// on the request line and refuses the disagreement; Caddy (Go) takes
	// the request line's host for routing, X-Forwarded-Host and the
	// upstream alike, so keygate judges api.example.com.
	{name: "absolute-form naming another host", key: "thishost", readme: readmeHost,
		rawReq: "GET http://" + proxySiteHost + "/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: %s\r\nConnection: close\r\n\r\n",
		status: 400, reason: "invalid_host", caddyStatus: 403, caddyReason: "host_denied"},
	{name: "route needs admin", key: "plain", readme: readmeForwarded, req: clientRequest{path: "/admin/users"}, status: 403, reason: "scope_denied"},
	// Caddy overwrites X-Forwarded-* but passes a client's X-Original-*
	// through, so keygate sees the two disagree and answers 400.
	{name: "route needs admin, spoofed URI", key: "plain", readme: readmeForwarded, status: 403, reason: "scope_denied",
		req:         clientRequest{path: "/admin/users", headers: map[string]string{"X-Forwarded-Uri": "/public", "X-Original-URI": "/public"}},
		caddyStatus: 400, caddyReason: "ambiguous_forwarded_request"},
	{name: "POST needs orders:write", key: "plain", readme: readmeForwarded, req: clientRequest{method: "POST"}, status: 403, reason: "scope_denied"},
	{name: "POST needs orders:write, spoofed method", key: "plain", readme: readmeForwarded, status: 403, reason: "scope_denied",
		req:         clientRequest{method: "POST", headers: map[string]string{"X-Forwarded-Method": "GET", "X-Original-Method": "GET"}},
		caddyStatus: 400, caddyReason: "ambiguous_forwarded_request"},
	{name: "rate limit 1/minute, second request", key: "limited", readme: readmeDenials, status: 429, reason: "rate_limited"},
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

// runUntrusted runs p in front of keygate without --trusted-proxies, which
// takes the proxy's address for every client's.
func (f *proxyFixture) runUntrusted(t *testing.T, p *proxy) {
	t.Run("untrusted/allow/cidr of the proxy", func(t *testing.T) {
		f.allowed(t, p, proxyAllowCase{key: "proxyaddr", readme: readmeUntrusted, tenant: "acme"})
	})
	t.Run("untrusted/deny/cidr of the client", func(t *testing.T) {
		f.denied(t, p, proxyDenyCase{key: "client", readme: readmeUntrusted, status: 403, reason: "cidr_denied"})
	})
}

func (f *proxyFixture) allowed(t *testing.T, p *proxy, c proxyAllowCase) {
	k := f.keys[c.key]
	h := map[string]string{"X-Api-Key": k.Key}
	if c.bearer {
		h = map[string]string{"Authorization": "Bearer " + k.Key}
	}
	maps.Copy(h, c.headers)
	before := f.up.count()
	resp, body := p.do(t, clientRequest{path: "/v1/orders?x=1", headers: h, raw: c.raw})
	if resp.StatusCode != 200 || body != "upstream ok" || f.up.count() != before+1 {
		t.Fatalf("%s: %d %q (reason %q), upstream requests %d -> %d", p.name, resp.StatusCode,
			redact(body), resp.Header.Get("X-Keygate-Reason"), before, f.up.count())
	}
	got := f.up.last()
	if got.URL.RequestURI() != "/v1/orders?x=1" {
		t.Errorf("upstream got %q", got.URL.RequestURI())
	}
	wantHeader(t, got.Header, "X-Keygate-Key-Id", k.ID)
	wantHeader(t, got.Header, "X-Keygate-Tenant", c.tenant)
	wantHeader(t, got.Header, "X-Keygate-Scopes", c.scopes)
	wantHeader(t, got.Header, "X-Keygate-Reason", "")
	wantHeader(t, got.Header, "X-Plan", c.plan)
	wantHeader(t, got.Header, "X-Api-Key", "")
	wantHeader(t, got.Header, "Authorization", "")
	wantHeader(t, got.Header, "X-Envoy-Auth-Headers-To-Remove", "")
	for name := range got.Header {
		if strings.Contains(name, "_") {
			t.Errorf("upstream saw %s", name)
		}
	}
	// The upstream sees the host keygate judged, once.
	if fh := got.Header.Values("X-Forwarded-Host"); len(fh) != 1 || hostOnly(fh[0]) != "127.0.0.1" {
		t.Errorf("upstream saw X-Forwarded-Host %q, want [127.0.0.1(:port)]", fh)
	}
	if want, ok := c.xff[p.name]; ok {
		wantHeader(t, got.Header, "X-Forwarded-For", want)
	}
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

func (f *proxyFixture) denied(t *testing.T, p *proxy, c proxyDenyCase) {
	before := f.up.count()
	var resp *http.Response
	if c.rawReq != "" {
		resp, _ = p.doRaw(t, strings.Replace(c.rawReq, "%s", f.keys[c.key].Key, 1))
	} else {
		r := c.req
		r.headers = maps.Clone(r.headers)
		if c.key != "" {
			if r.headers == nil {
				r.headers = map[string]string{}
			}
			r.headers["X-Api-Key"] = f.keys[c.key].Key
		}
		resp, _ = p.do(t, r)
	}
	switch {
	case p.name == "caddy" && c.caddyStatus != 0:
		c.status, c.reason = c.caddyStatus, c.caddyReason
	case p.name == "nginx" && c.nginxStatus != 0:
		c.status, c.reason = c.nginxStatus, c.nginxReason
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
	resp, _ := p.do(t, clientRequest{headers: map[string]string{"X-Api-Key": f.keys["plain"].Key}})
	if resp.StatusCode < 500 {
		t.Errorf("%s with keygate down: %d, want 5xx", p.name, resp.StatusCode)
	}
	if n := f.up.count(); n != before {
		t.Errorf("upstream reached: %d -> %d requests", before, n)
	}
}

// TestProxyCasesCiteREADME checks that every proxy case names a sentence
// the README really says, so the doc and the tests change together.
func TestProxyCasesCiteREADME(t *testing.T) {
	text, err := kgdocs.Text("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme := collapseSpace(text)
	var cited []string
	for _, c := range proxyAllow {
		cited = append(cited, c.readme)
	}
	for _, c := range proxyDeny {
		cited = append(cited, c.readme)
	}
	cited = append(cited, readmeUntrusted)
	slices.Sort(cited)
	for _, s := range slices.Compact(cited) {
		if s == "" || !strings.Contains(readme, collapseSpace(s)) {
			t.Errorf("the documentation (README.md, docs/) does not say %q", s)
		}
	}
}

var spaceRun = regexp.MustCompile(`\s+`)

func collapseSpace(s string) string { return spaceRun.ReplaceAllString(s, " ") }

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
