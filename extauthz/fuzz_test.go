package extauthz

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/keygate/keygate/policy"
)

// FuzzCheck feeds arbitrary credential values, paths, peer addresses and one
// extra header into Check. Properties: no panic, no error; an allow only for
// the one valid key, given as a credential, on a canonical path, from an
// allowed address; no response ever contains a key.
func FuzzCheck(f *testing.F) {
	e := newEnv(f, withRoutes(f), importedKeys)
	e.put(testKey, cidrs("10.0.0.0/8"))
	e.putImported(legacy, legacy, cidrs("10.0.0.0/8"))
	e.srv.OnDecision = nil // keep memory flat over millions of execs
	allowed := netip.MustParsePrefix("10.0.0.0/8")

	f.Add(testKey, "", "/v1/orders", "10.1.2.3", "user-agent", "curl/8.5")
	f.Add("", "Bearer "+testKey, "/v1/orders?x=1", "::ffff:10.0.0.1", "x-keygate-tenant", "evil")
	f.Add(testKey, "Bearer "+testKey, "/", "10.0.0.1", "X-API-KEY", testKey)
	f.Add(testKey+"\r\n", "", "//admin", "", "origin", "https://app.example.com")
	f.Add(wrongSecretKey, "Basic dXNlcjpwYXNz", "/v1/../admin", "1.2.3.4:abc", "authorization", "Bearer "+otherKey)
	f.Add(otherKey, "ApiKey "+testKey, "/admin", "fe80::1%eth0", "x-api-key", "")
	f.Add(testKey+","+testKey, "bearer", "/%2e%2e/", "10.1.2.3", ":authority", "api.example.com")
	f.Add("kg_"+strings.Repeat("A", 50), "Bearer \x00", "/\xff", "\xff", "\xff", "\xff")
	f.Add(" "+testKey+"\t", "", "/v1/orders#frag", "10.255.255.255", "X-Keygate-Key-Id", testID)
	f.Add("", "", "/v1/orders", "10.1.2.3", "x-api-key", testKey)
	f.Add(legacy, "", "/v1/orders", "10.1.2.3", "user-agent", "curl/8.5")
	f.Add("", "Bearer "+legacy+"x", "/v1/orders", "10.1.2.3", "x-api-key", legacy)

	f.Fuzz(func(t *testing.T, keyVal, authVal, path, source, extraName, extraVal string) {
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
		resp, err := e.srv.Check(context.Background(), req)
		if err != nil || resp == nil {
			t.Fatalf("Check = %v, %v", resp, err)
		}
		// Requests gRPC could not have delivered (invalid UTF-8 in a proto
		// string) need not yield a response gRPC can send.
		_, reqErr := proto.Marshal(req)
		checkResponse(t, resp, reqErr == nil)

		if outcome(resp) == "allowed" {
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
			if err != nil || !allowed.Contains(ip.Unmap().WithZone("")) {
				t.Errorf("allowed from %q, outside %v", source, allowed)
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
	})
}

// FuzzHTTPCheck drives the HTTP mode with arbitrary methods, targets and
// headers: it never panics, answers 200 only for the valid key, never
// echoes a key, and every deny carries a reason.
func FuzzHTTPCheck(f *testing.F) {
	trusted := netip.MustParsePrefix("127.0.0.0/8")
	e := newEnv(f, withRoutes(f), importedKeys, func(c *Config) { c.TrustedProxies = []netip.Prefix{trusted} })
	e.put(testKey, cidrs("10.0.0.0/8"))
	e.srv.OnDecision = nil
	h := e.srv.HTTPHandler()
	f.Add("GET", "/ext_authz/v1/orders", testKey, "10.1.2.3", "", "")
	f.Add("POST", "/auth", "Bearer "+testKey, "203.0.113.1, 10.0.0.1", "/v1/orders?x=1", "api.example.com")
	f.Add("GET", "/auth", testKey+","+otherKey, "", "//admin", "")
	f.Add("PUT", "/ext_authz?x", legacy, "::ffff:10.0.0.1", "", "internal.example.com")
	f.Fuzz(func(t *testing.T, method, target, key, xff, fwdURI, fwdHost string) {
		req, err := http.NewRequest(method, "http://keygate"+target, nil)
		if err != nil {
			return
		}
		for name, v := range map[string]string{"X-Api-Key": key, "X-Forwarded-For": xff, "X-Forwarded-Uri": fwdURI, "X-Forwarded-Host": fwdHost} {
			if v != "" {
				req.Header.Set(name, v)
			}
		}
		req.RemoteAddr = "127.0.0.1:40000" // a trusted proxy
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		switch {
		case rec.Code == http.StatusOK && !strings.Contains(key, testKey):
			t.Fatalf("200 without the valid key (key header %q)", key)
		case rec.Code == http.StatusOK && !clientInside(xff, trusted, netip.MustParsePrefix("10.0.0.0/8")):
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
	})
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
