package extauthz

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/keygate/keygate/internal/refpolicy"
	"github.com/keygate/keygate/policy"
)

// checkSeeds are FuzzCheck's seeds: x-api-key, authorization, path, source
// address, one more header's name and value. The first, the second and the
// ones with the imported key on /v1/orders are allowed.
var checkSeeds = [][6]string{
	{testKey, "", "/v1/orders", "10.1.2.3", "user-agent", "curl/8.5"},
	{"", "Bearer " + testKey, "/v1/orders?x=1", "::ffff:10.0.0.1", "x-keygate-tenant", "evil"},
	{testKey, "Bearer " + testKey, "/", "10.0.0.1", "X-API-KEY", testKey},
	{testKey + "\r\n", "", "//admin", "", "origin", "https://app.example.com"},
	{wrongSecretKey, "Basic dXNlcjpwYXNz", "/v1/../admin", "1.2.3.4:abc", "authorization", "Bearer " + otherKey},
	{otherKey, "ApiKey " + testKey, "/admin", "fe80::1%eth0", "x-api-key", ""},
	{testKey + "," + testKey, "bearer", "/%2e%2e/", "10.1.2.3", ":authority", "api.example.com"},
	{"kg_" + strings.Repeat("A", 50), "Bearer \x00", "/\xff", "\xff", "\xff", "\xff"},
	{" " + testKey + "\t", "", "/v1/orders#frag", "10.255.255.255", "X-Keygate-Key-Id", testID},
	{"", "", "/v1/orders", "10.1.2.3", "x-api-key", testKey},
	{legacy, "", "/v1/orders", "10.1.2.3", "user-agent", "curl/8.5"},
	{"", "Bearer " + legacy + "x", "/v1/orders", "10.1.2.3", "x-api-key", legacy},
	{testKey, "", "/reports/1", "10.1.2.3", "", ""},
	{testKey, "", "/v1/orders;x", "10.9.9.9", "referer", "https://app.example.com/"},
}

// FuzzCheck feeds arbitrary credential values, paths, peer addresses and one
// extra header into Check. Properties: no panic, no error; an allow only for
// the one valid key, given as a credential, on a canonical path, from an
// allowed address, where the scopes the routes file requires for the path
// (refpolicy.Route, README's reading) are the key's, and scope_denied
// exactly where they are not; no response ever contains a key.
func FuzzCheck(f *testing.F) {
	for _, s := range checkSeeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	c := newCheckFuzz(f)
	f.Fuzz(func(t *testing.T, keyVal, authVal, path, source, extraName, extraVal string) {
		c.decide(t, [6]string{keyVal, authVal, path, source, extraName, extraVal})
	})
}

type checkFuzz struct {
	e       *env
	allowed netip.Prefix
	rules   []refpolicy.Rule
	granted []string // the scopes of both keys' records
}

func newCheckFuzz(t testing.TB) *checkFuzz {
	e := newEnv(t, withRoutes(t), importedKeys)
	rec := e.put(testKey, cidrs("10.0.0.0/8"))
	e.putImported(legacy, legacy, cidrs("10.0.0.0/8"))
	e.srv.OnDecision = nil // keep memory flat over millions of execs
	c := &checkFuzz{e: e, allowed: netip.MustParsePrefix("10.0.0.0/8"), granted: rec.Scopes}
	for _, r := range e.srv.cfg.Routes.Rules {
		c.rules = append(c.rules, refpolicy.Rule{Host: r.Host, Method: r.Method, PathPrefix: r.PathPrefix, Scopes: r.Scopes})
	}
	return c
}

// decide checks FuzzCheck's properties for one input; its class is the
// outcome ("allowed" or the deny's reason code).
func (c *checkFuzz) decide(t *testing.T, v [6]string) string {
	keyVal, authVal, path, source, extraName, extraVal := v[0], v[1], v[2], v[3], v[4], v[5]
	b := newReq().path(path).source(source)
	if keyVal != "" {
		b.header("x-api-key", keyVal)
	}
	if authVal != "" {
		b.raw("authorization", []byte(authVal))
	}
	if extraName != "" {
		b.mapValue(extraName, extraVal)
	}
	req := b.build()
	resp, err := c.e.srv.Check(context.Background(), req)
	if err != nil || resp == nil {
		t.Fatalf("Check = %v, %v", resp, err)
	}
	// Requests gRPC could not have delivered (invalid UTF-8 in a proto
	// string) need not yield a response gRPC can send.
	_, reqErr := proto.Marshal(req)
	checkResponse(t, resp, reqErr == nil)

	got := outcome(resp)
	hr := req.GetAttributes().GetRequest().GetHttp()
	rule, _ := refpolicy.Route(c.rules, hr.GetHost(), hr.GetMethod(), pathOnly(path))
	granted := rule < 0 || !slices.ContainsFunc(c.rules[rule].Scopes, func(s string) bool { return !slices.Contains(c.granted, s) })
	switch got {
	case policy.Allowed.String():
		has := func(k string) bool {
			return strings.Contains(keyVal, k) || strings.Contains(authVal, k) || strings.Contains(extraVal, k)
		}
		if !has(testKey) && !has(legacy) {
			t.Errorf("allowed without a valid key (keygate's or imported) as a credential")
		}
		if !policy.CanonicalPath(pathOnly(path)) {
			t.Errorf("allowed a non-canonical path %q", path)
		}
		ip, err := netip.ParseAddr(source)
		if err != nil || !c.allowed.Contains(ip.Unmap().WithZone("")) {
			t.Errorf("allowed from %q, outside %v", source, c.allowed)
		}
		if !granted {
			t.Errorf("allowed %q, whose route (rule %d) needs scopes %q the key lacks", path, rule, c.rules[rule].Scopes)
		}
	case policy.ScopeDenied.String():
		if granted {
			t.Errorf("scope_denied for %q, whose route (rule %d) needs only scopes the key has", path, rule)
		}
	case policy.NonCanonicalPath.String():
		if policy.CanonicalPath(pathOnly(path)) {
			t.Errorf("non_canonical_path for the canonical %q", path)
		}
	}
	text := resp.String()
	if js, err := protojson.Marshal(resp); err == nil {
		text = string(js)
	}
	for _, v := range []string{keyVal, authVal, extraVal} {
		v = strings.TrimSpace(v)
		secretish := strings.Contains(v, "kg_") || strings.Contains(v, legacy)
		if len(v) >= 8 && secretish && !strings.Contains(extraName, v) && strings.Contains(text, v) {
			t.Errorf("response echoes a credential value")
		}
	}
	return got
}

// httpSeeds are FuzzHTTPCheck's seeds: method, target, key header,
// X-Forwarded-For, X-Forwarded-Uri, X-Forwarded-Host. The first two are
// allowed.
var httpSeeds = [][6]string{
	{"GET", "/ext_authz/v1/orders", testKey, "10.1.2.3", "", ""},
	{"POST", "/auth", "Bearer " + testKey, "203.0.113.1, 10.0.0.1", "/v1/orders?x=1", "api.example.com"},
	{"GET", "/auth", testKey + "," + otherKey, "", "//admin", ""},
	{"PUT", "/ext_authz?x", legacy, "::ffff:10.0.0.1", "", "internal.example.com"},
	{"GET", "/auth", testKey, "10.1.2.3", "/admin", "api.example.com"},
}

// FuzzHTTPCheck drives the HTTP mode with arbitrary methods, targets and
// headers: it never panics, answers 200 only for the valid key, never
// echoes a key, and every deny carries a reason.
func FuzzHTTPCheck(f *testing.F) {
	for _, s := range httpSeeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	h := newHTTPFuzz(f)
	f.Fuzz(func(t *testing.T, method, target, key, xff, fwdURI, fwdHost string) {
		h.decide(t, [6]string{method, target, key, xff, fwdURI, fwdHost})
	})
}

type httpFuzz struct {
	h       http.Handler
	trusted netip.Prefix
}

func newHTTPFuzz(t testing.TB) *httpFuzz {
	trusted := netip.MustParsePrefix("127.0.0.0/8")
	e := newEnv(t, withRoutes(t), importedKeys, func(c *Config) { c.TrustedProxies = []netip.Prefix{trusted} })
	e.put(testKey, cidrs("10.0.0.0/8"))
	e.srv.OnDecision = nil
	return &httpFuzz{h: e.srv.HTTPHandler(), trusted: trusted}
}

// decide checks FuzzHTTPCheck's properties; its class is "allowed", the
// deny's reason, or "unreadable" (a request Go cannot build).
func (hf *httpFuzz) decide(t *testing.T, v [6]string) string {
	method, target, key, xff, fwdURI, fwdHost := v[0], v[1], v[2], v[3], v[4], v[5]
	req, err := http.NewRequest(method, "http://keygate"+target, nil)
	if err != nil {
		return "unreadable"
	}
	for name, v := range map[string]string{"X-Api-Key": key, "X-Forwarded-For": xff, "X-Forwarded-Uri": fwdURI, "X-Forwarded-Host": fwdHost} {
		if v != "" {
			req.Header.Set(name, v)
		}
	}
	req.RemoteAddr = "127.0.0.1:40000" // a trusted proxy
	rec := httptest.NewRecorder()
	hf.h.ServeHTTP(rec, req)
	body := rec.Body.String()
	switch {
	case rec.Code == http.StatusOK && !strings.Contains(key, testKey):
		t.Fatalf("200 without the valid key (key header %q)", key)
	case rec.Code == http.StatusOK && !clientInside(xff, hf.trusted, netip.MustParsePrefix("10.0.0.0/8")):
		t.Fatalf("200 for a client outside 10.0.0.0/8 (X-Forwarded-For %q)", xff)
	case rec.Code != http.StatusOK && rec.Code != http.StatusNotFound && rec.Header().Get(headerReason) == "":
		t.Fatalf("deny %d without a reason", rec.Code)
	case rec.Code < 400 && rec.Code != http.StatusOK:
		t.Fatalf("status %d", rec.Code)
	}
	text := body + strings.Join(flatten(rec.Header()), "\n")
	if v := strings.TrimSpace(key); len(v) >= 16 && strings.Contains(text, v) {
		t.Fatalf("answer echoes the credential")
	}
	switch {
	case rec.Code == http.StatusOK:
		return policy.Allowed.String()
	case rec.Header().Get(headerReason) != "":
		return rec.Header().Get(headerReason)
	}
	return strconv.Itoa(rec.Code)
}

// clientInside is the fuzz oracle for the client address: the rightmost
// X-Forwarded-For entry that is not a trusted proxy (the leftmost if all
// are) must be an address inside want.
func clientInside(xff string, trusted, want netip.Prefix) bool {
	entries := strings.Split(xff, ",")
	for i := len(entries) - 1; i >= 0; i-- {
		s := strings.TrimSpace(entries[i])
		if h, _, err := net.SplitHostPort(s); err == nil {
			s = h
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return false
		}
		if a = a.Unmap(); !trusted.Contains(a) || i == 0 {
			return want.Contains(a)
		}
	}
	return false
}
