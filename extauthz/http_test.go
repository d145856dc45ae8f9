package extauthz

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// httpCase is one request to the HTTP mode and what it must answer.
type httpCase struct {
	name    string
	method  string
	target  string            // path and query on keygate
	host    string            // Host header ("" : httptest's)
	headers map[string]string // canonical names; "X-Api-Key" etc.
	extra   [][2]string       // headers added (repeats allowed)
	status  int
	reason  string // x-keygate-reason on deny
	bare    bool   // send only these headers: no User-Agent or Accept-Encoding
}

// serveHTTP starts the HTTP mode over real loopback HTTP.
func serveHTTP(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(e.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	return ts
}

func (c httpCase) do(t *testing.T, ts *httptest.Server) *http.Response {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, ts.URL+c.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	for _, kv := range c.extra {
		req.Header.Add(kv[0], kv[1])
	}
	client := ts.Client()
	if c.bare {
		req.Header.Set("User-Agent", "") // present but empty: not sent
		tr := client.Transport.(*http.Transport).Clone()
		tr.DisableCompression = true // no Accept-Encoding
		t.Cleanup(tr.CloseIdleConnections)
		client = &http.Client{Transport: tr}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func fwd(method, uri, host string, more map[string]string) map[string]string {
	h := map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Uri": uri, "X-Forwarded-Host": host}
	for k, v := range more {
		h[k] = v
	}
	return h
}

func TestHTTPMode(t *testing.T) {
	key := map[string]string{"X-Api-Key": testKey}
	tests := []httpCase{
		{name: "envoy: allow", target: "/ext_authz/v1/orders?limit=1", host: "api.example.com", headers: key, status: 200},
		{name: "envoy: bearer", target: "/ext_authz/v1/orders", headers: map[string]string{"Authorization": "Bearer " + testKey}, status: 200},
		{name: "envoy: bare prefix is path /", target: "/ext_authz", headers: key, status: 200},
		{name: "envoy: route needs orders:write", method: "POST", target: "/ext_authz/v1/orders", headers: key, status: 200},
		{name: "envoy: route needs admin", target: "/ext_authz/admin/users", headers: key, status: 403, reason: "scope_denied"},
		{name: "envoy: host route", target: "/ext_authz/x", host: "internal.example.com", headers: key, status: 403, reason: "scope_denied"},
		{name: "envoy: dot segments", target: "/ext_authz/v1/../admin", headers: key, status: 400, reason: "non_canonical_path"},
		{name: "envoy: no key", target: "/ext_authz/v1/orders", status: 401, reason: "missing_key"},
		{name: "envoy: malformed", target: "/ext_authz/", headers: map[string]string{"X-Api-Key": "kg_nope"}, status: 401, reason: "malformed_key"},
		{name: "envoy: wrong secret", target: "/ext_authz/", headers: map[string]string{"X-Api-Key": wrongSecretKey}, status: 401, reason: "unknown_key"},
		{name: "envoy: two keys", target: "/ext_authz/", extra: [][2]string{{"X-Api-Key", testKey}, {"X-Api-Key", otherKey}}, status: 401, reason: "ambiguous_credentials"},
		{name: "forward auth: allow", target: "/auth", headers: fwd("GET", "/v1/orders?x=1", "api.example.com", key), status: 200},
		{name: "forward auth: nginx names", target: "/auth", headers: map[string]string{"X-Original-Method": "GET", "X-Original-Uri": "/admin", "X-Forwarded-Host": "api.example.com", "X-Api-Key": testKey}, status: 403, reason: "scope_denied"},
		{name: "forward auth: no host, host rules", target: "/auth", headers: map[string]string{"X-Original-Method": "GET", "X-Original-Uri": "/admin", "X-Api-Key": testKey}, status: 400, reason: "invalid_host"},
		{name: "forward auth: host with a host for a port", target: "/auth", headers: fwd("GET", "/v1/orders", "api.example.com:1.internal.example.com", key), status: 400, reason: "invalid_host"},
		{name: "forward auth: upper-case host rule", target: "/auth", headers: fwd("GET", "/x", "INTERNAL.example.com", key), status: 403, reason: "scope_denied"},
		{name: "forward auth: lower-case method", target: "/auth", headers: fwd("post", "/v1/orders", "api.example.com", key), status: 400, reason: "invalid_method"},
		{name: "forward auth: two X-Forwarded-Host", target: "/auth", headers: map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/x", "X-Api-Key": testKey},
			extra: [][2]string{{"X-Forwarded-Host", "api.example.com"}, {"X-Forwarded-Host", "internal.example.com"}}, status: 400, reason: "ambiguous_forwarded_request"},
		{name: "forward auth: joined X-Forwarded-Host", target: "/auth", headers: fwd("GET", "/x", "api.example.com, internal.example.com", key), status: 400, reason: "ambiguous_forwarded_request"},
		{name: "forward auth: X-Forwarded-Host joined to an empty copy", target: "/auth", headers: fwd("GET", "/x", ",internal.example.com", key), status: 400, reason: "ambiguous_forwarded_request"},
		{name: "forward auth: two X-Original-Method", target: "/auth", headers: map[string]string{"X-Forwarded-Uri": "/x", "X-Forwarded-Host": "api.example.com", "X-Api-Key": testKey},
			extra: [][2]string{{"X-Original-Method", "GET"}, {"X-Original-Method", "POST"}}, status: 400, reason: "ambiguous_forwarded_request"},
		{name: "forward auth: CGI look-alike of the credential", target: "/auth", headers: fwd("GET", "/v1/orders", "api.example.com", map[string]string{"X-Api-Key": testKey, "X_api_key": otherKey}), status: 400, reason: "invalid_header"},
		{name: "forward auth: method from header", target: "/auth", headers: fwd("POST", "/v1/orders", "api.example.com", key), status: 200},
		{name: "forward auth: non-canonical uri", target: "/auth", headers: fwd("GET", "//admin", "h", key), status: 400, reason: "non_canonical_path"},
		{name: "forward auth: no uri", target: "/auth", headers: map[string]string{"X-Forwarded-Method": "GET", "X-Api-Key": testKey}, status: 400, reason: "missing_forwarded_request"},
		{name: "forward auth: no method", target: "/auth", headers: map[string]string{"X-Forwarded-Uri": "/v1/orders", "X-Api-Key": testKey}, status: 400, reason: "missing_forwarded_request"},
		{name: "forward auth: client X-Forwarded-Uri beside the proxy's X-Original-Uri", target: "/auth",
			headers: map[string]string{"X-Forwarded-Uri": "/public", "X-Original-Uri": "/admin/users", "X-Forwarded-Method": "GET", "X-Api-Key": testKey}, status: 400, reason: "ambiguous_forwarded_request"},
		{name: "forward auth: methods disagree", target: "/auth",
			headers: map[string]string{"X-Forwarded-Method": "GET", "X-Original-Method": "POST", "X-Forwarded-Uri": "/v1/orders", "X-Api-Key": testKey}, status: 400, reason: "ambiguous_forwarded_request"},
		{name: "forward auth: both conventions agree", target: "/auth",
			headers: map[string]string{"X-Forwarded-Method": "GET", "X-Original-Method": "GET", "X-Forwarded-Uri": "/v1/orders", "X-Original-Uri": "/v1/orders", "X-Forwarded-Host": "api.example.com", "X-Api-Key": testKey}, status: 200},
		{name: "forward auth: two X-Forwarded-Uri", target: "/auth", headers: map[string]string{"X-Forwarded-Method": "GET", "X-Api-Key": testKey},
			extra: [][2]string{{"X-Forwarded-Uri", "/a"}, {"X-Forwarded-Uri", "/b"}}, status: 400, reason: "ambiguous_forwarded_request"},
		{name: "other path", target: "/v1/orders", headers: key, status: 404},
		{name: "prefix look-alike", target: "/ext_authzzz/v1", headers: key, status: 404},
	}
	e := newEnv(t, withRoutes(t))
	e.put(testKey, func(r *policy.Record) { r.Scopes = []string{"orders:read", "orders:write"} })
	ts := serveHTTP(t, e)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.do(t, ts)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Header.Get(headerReason), tc.status)
			}
			checkHTTPAnswer(t, resp, body, tc)
		})
	}
}

// checkHTTPAnswer checks what every answer must hold: identity headers
// only on allow, a reason and JSON body on deny, no key anywhere.
func checkHTTPAnswer(t *testing.T, resp *http.Response, body []byte, tc httpCase) {
	t.Helper()
	h := resp.Header
	for _, k := range []string{testKey, otherKey, wrongSecretKey} {
		if strings.Contains(string(body), k) || strings.Contains(strings.Join(flatten(h), "\n"), k) {
			t.Errorf("answer echoes a key")
		}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if h.Get("X-Keygate-Key-Id") != testID || h.Get("X-Keygate-Tenant") != "acme" || h.Get(headerReason) != "" {
			t.Errorf("allow headers %v", h)
		}
		if rm := h.Get(headerEnvoyRemove); rm == "" || !strings.Contains(rm, "x-api-key") && !strings.Contains(rm, "authorization") {
			t.Errorf("%s = %q, want the credential header", headerEnvoyRemove, rm)
		}
	case resp.StatusCode == http.StatusNotFound:
	case strings.HasSuffix(tc.reason, "_forwarded_request"):
		if h.Get(headerReason) != tc.reason {
			t.Errorf("reason %q, want %s", h.Get(headerReason), tc.reason)
		}
	default:
		var b struct{ Reason string }
		if err := json.Unmarshal(body, &b); err != nil || b.Reason != tc.reason || h.Get(headerReason) != tc.reason {
			t.Errorf("deny body %q (%v), reason header %q; want %s", body, err, h.Get(headerReason), tc.reason)
		}
		if h.Get("X-Keygate-Key-Id") != "" {
			t.Errorf("deny carries identity headers: %v", h)
		}
		if (resp.StatusCode == 401) != (h.Get("Www-Authenticate") != "") {
			t.Errorf("status %d with WWW-Authenticate %q", resp.StatusCode, h.Get("Www-Authenticate"))
		}
	}
}

func flatten(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ","))
	}
	return out
}

// TestHTTPModeClientAddress: the client is the connecting peer unless the
// peer is a trusted proxy; then the rightmost X-Forwarded-For entry that is
// not a trusted proxy. A header the client wrote never satisfies a CIDR.
func TestHTTPModeClientAddress(t *testing.T) {
	with := func(xff ...string) [][2]string {
		var out [][2]string
		for _, v := range xff {
			out = append(out, [2]string{"X-Forwarded-For", v})
		}
		return out
	}
	// The test's peer is 127.0.0.1.
	untrusted, loopback := "", "127.0.0.0/8"
	twoHops := "127.0.0.0/8,192.168.0.0/16"
	for _, tc := range []struct {
		trusted string
		httpCase
	}{
		{untrusted, httpCase{name: "untrusted peer: its X-Forwarded-For is ignored", extra: with("10.1.2.3"), status: 403, reason: "cidr_denied"}},
		{untrusted, httpCase{name: "untrusted peer, no header", status: 403, reason: "cidr_denied"}},
		{loopback, httpCase{name: "last entry inside", extra: with("203.0.113.7, 10.1.2.3"), status: 200}},
		{loopback, httpCase{name: "two header lines: last wins", extra: with("203.0.113.7", "10.1.2.3"), status: 200}},
		{loopback, httpCase{name: "client-supplied inside, proxy-added outside", extra: with("10.1.2.3, 203.0.113.7"), status: 403, reason: "cidr_denied"}},
		{loopback, httpCase{name: "with port", extra: with("10.1.2.3:5555"), status: 200}},
		{loopback, httpCase{name: "IPv4-mapped", extra: with("::ffff:10.1.2.3"), status: 200}},
		{loopback, httpCase{name: "garbage", extra: with("not-an-ip"), status: 403, reason: "cidr_denied"}},
		{loopback, httpCase{name: "empty entry", extra: with("10.1.2.3, "), status: 403, reason: "cidr_denied"}},
		{loopback, httpCase{name: "garbage left of the client is never read", extra: with("not-an-ip, 10.1.2.3"), status: 200}},
		{loopback, httpCase{name: "trusted peer without header is the client", status: 403, reason: "cidr_denied"}},
		{twoHops, httpCase{name: "two trusted hops", extra: with("203.0.113.7, 10.1.2.3, 192.168.4.4"), status: 200}},
		{twoHops, httpCase{name: "client forges a trusted hop", extra: with("10.1.2.3, 192.168.4.4, 203.0.113.7"), status: 403, reason: "cidr_denied"}},
		{"10.0.0.0/8,127.0.0.0/8", httpCase{name: "every entry trusted: the leftmost", extra: with("10.1.2.3, 10.9.9.9"), status: 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.TrustedProxies = prefixes(t, tc.trusted) })
			e.put(testKey, cidrs("10.0.0.0/8"))
			ts := serveHTTP(t, e)
			tc.target, tc.headers = "/ext_authz/", map[string]string{"X-Api-Key": testKey}
			resp := tc.do(t, ts)
			if resp.StatusCode != tc.status || resp.Header.Get(headerReason) != tc.reason {
				t.Errorf("status %d reason %q, want %d %q", resp.StatusCode, resp.Header.Get(headerReason), tc.status, tc.reason)
			}
		})
	}
}

func prefixes(t *testing.T, list string) []netip.Prefix {
	var out []netip.Prefix
	for s := range strings.SplitSeq(list, ",") {
		if s != "" {
			out = append(out, netip.MustParsePrefix(s))
		}
	}
	return out
}

// TestHTTPModeTooLarge: more header lines or bytes than the limits is an
// explicit deny, never a request read in part (a dropped header could be
// the second credential that makes a request ambiguous).
func TestHTTPModeTooLarge(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRequestBytes = 16 << 10 })
	ts := serveHTTP(t, e)
	many := [][2]string{}
	for i := range maxForwardedHeaders {
		many = append(many, [2]string{fmt.Sprintf("X-Pad-%d", i), "1"})
	}
	// Bare requests carry X-Api-Key, the padding and nothing else; the
	// bytes counted are the URI's and each header line's name and value.
	const target = "/ext_authz/v1"
	fill := 16<<10 - len(target) - len("X-Api-Key") - len(testKey) - len("X-Pad")
	for _, tc := range []httpCase{
		{name: "under the line limit", extra: many[:maxForwardedHeaders-10], status: 200}, // the client adds a few
		{name: "exactly the line limit", extra: many[:maxForwardedHeaders-1], bare: true, status: 200},
		{name: "one line over the line limit", extra: many, bare: true, status: 413, reason: "request_too_large"},
		{name: "exactly the byte limit", extra: [][2]string{{"X-Pad", strings.Repeat("a", fill)}}, bare: true, status: 200},
		{name: "one byte over the byte limit", extra: [][2]string{{"X-Pad", strings.Repeat("a", fill+1)}}, bare: true, status: 413, reason: "request_too_large"},
		{name: "over the line limit", extra: append(many, [2]string{"X-Api-Key", otherKey}), status: 413, reason: "request_too_large"},
		{name: "over the byte limit", extra: [][2]string{{"X-Pad", strings.Repeat("a", 16<<10)}}, status: 413, reason: "request_too_large"},
		{name: "a path over the byte limit", target: "/ext_authz/v1/" + strings.Repeat("a", 16<<10), status: 413, reason: "request_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.target == "" {
				tc.target = target
			}
			tc.headers = map[string]string{"X-Api-Key": testKey}
			resp := tc.do(t, ts)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Header.Get(headerReason), tc.status)
			}
			checkHTTPAnswer(t, resp, body, tc)
		})
	}
}

// TestHTTPModeSpoofedIdentity: keygate's identity headers the answer does
// not set are named for removal, whether or not the proxy showed keygate
// the client's copy; the ones it sets are overwritten.
func TestHTTPModeSpoofedIdentity(t *testing.T) {
	e := newEnv(t)
	e.put(testKey, func(r *policy.Record) { r.Scopes = nil })
	ts := serveHTTP(t, e)
	resp := httpCase{target: "/ext_authz/", headers: map[string]string{
		"X-Api-Key": testKey, "X-Keygate-Scopes": "admin", "X-Keygate-Key-Id": "evil", "X-Keygate-Tenant": "evil",
	}}.do(t, ts)
	rm := resp.Header.Get(headerEnvoyRemove)
	if resp.StatusCode != 200 || rm != "x-api-key,x-keygate-reason,x-keygate-scopes" {
		t.Errorf("status %d, remove %q: want x-api-key and the identity headers not set", resp.StatusCode, rm)
	}
	unseen := httpCase{target: "/ext_authz/", headers: map[string]string{"X-Api-Key": testKey}}.do(t, ts)
	if got := unseen.Header.Get(headerEnvoyRemove); got != rm {
		t.Errorf("without client copies: remove %q, want %q too", got, rm)
	}
	if resp.Header.Get("X-Keygate-Key-Id") != testID || resp.Header.Get("X-Keygate-Tenant") != "acme" {
		t.Errorf("identity headers %v", resp.Header)
	}
}

// TestHTTPModeMatchesGRPC: for the same request, both modes reach the same
// reason (they share one decision path).
func TestHTTPModeMatchesGRPC(t *testing.T) {
	e := newEnv(t, withRoutes(t))
	ts := serveHTTP(t, e)
	for _, key := range []string{testKey, otherKey, wrongSecretKey, "kg_x", ""} {
		for _, path := range []string{"/v1/orders", "/admin", "/v1//orders"} {
			b := newReq().path(path).host("api.example.com").method("GET")
			hc := httpCase{target: "/ext_authz" + path, host: "api.example.com", headers: map[string]string{}}
			if key != "" {
				b.key(key)
				hc.headers["X-Api-Key"] = key
			}
			want := outcome(e.check(b.build()))
			resp := hc.do(t, ts)
			got := resp.Header.Get(headerReason)
			if resp.StatusCode == 200 {
				got = "allowed"
			}
			if got != want {
				t.Errorf("key %.8s… path %s: HTTP %s, gRPC %s", key, path, got, want)
			}
		}
	}
}
