package extauthz

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/policy"
)

// withHeaders adds n filler headers like a sidecar's.
func withHeaders(b *reqBuilder, n int) *reqBuilder {
	for i := range n {
		b.header(fmt.Sprintf("x-filler-%03d", i), strings.Repeat("v", i%40))
	}
	return b
}

func TestCheckKeyExtractionAllow(t *testing.T) {
	tests := []struct {
		name        string
		req         *authv3.CheckRequest
		wantRemoved []string // credential headers removed, exactly
	}{
		{"x-api-key", newReq().key(testKey).build(), []string{"x-api-key"}},
		{"x-api-key mixed-case name", newReq().header("X-Api-Key", testKey).build(), []string{"x-api-key"}},
		{"x-api-key with surrounding spaces and tabs", newReq().key(" \t" + testKey + "\t ").build(), []string{"x-api-key"}},
		{"authorization Bearer", newReq().header("authorization", "Bearer "+testKey).build(), []string{"authorization"}},
		{"authorization ApiKey", newReq().header("authorization", "ApiKey "+testKey).build(), []string{"authorization"}},
		{"authorization lowercase bearer", newReq().header("authorization", "bearer "+testKey).build(), []string{"authorization"}},
		{"authorization BEARER with extra spaces", newReq().header("Authorization", "BEARER   "+testKey+"  ").build(), []string{"authorization"}},
		{"both headers carry the same key", newReq().key(testKey).header("authorization", "Bearer "+testKey).build(), []string{"x-api-key", "authorization"}},
		{"only in header_map as raw_value bytes", newReq().raw("x-api-key", []byte(testKey)).build(), []string{"x-api-key"}},
		{"only in header_map as value", newReq().mapValue("x-api-key", testKey).build(), []string{"x-api-key"}},
		{"header_map authorization raw_value", newReq().raw("Authorization", []byte("Bearer "+testKey)).build(), []string{"authorization"}},
		{"header_map duplicate with the same value", newReq().raw("x-api-key", []byte(testKey)).raw("X-API-KEY", []byte(testKey)).build(), []string{"x-api-key"}},
		{"Basic authorization beside x-api-key is not ours", newReq().key(testKey).header("authorization", "Basic dXNlcjpwYXNz").build(), []string{"x-api-key"}},
		{"120 headers", withHeaders(newReq().key(testKey), 120).build(), []string{"x-api-key"}},
		{"x-envoy headers present", newReq().key(testKey).header("x-envoy-original-path", "/admin").header("x-envoy-internal", "true").build(), []string{"x-api-key"}},
		{"key in query string too", newReq().key(testKey).path("/v1/orders?api_key=" + otherKey).build(), []string{"x-api-key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			resp := e.check(tc.req)
			if got := outcome(resp); got != "allowed" {
				t.Fatalf("outcome %q, want allowed", got)
			}
			rm := removed(resp)
			for _, cred := range []string{"x-api-key", "authorization"} {
				if want := slices.Contains(tc.wantRemoved, cred); rm[cred] != want {
					t.Errorf("headers_to_remove has %q: %v, want %v (got %v)", cred, rm[cred], want, resp.GetOkResponse().GetHeadersToRemove())
				}
			}
			if got := headerSet(resp)["x-keygate-key-id"]; got != testID {
				t.Errorf("x-keygate-key-id = %q, want %q", got, testID)
			}
		})
	}
}

func TestCheckKeyExtractionDeny(t *testing.T) {
	flipLast := testKey[:len(testKey)-1] + string(rune(testKey[len(testKey)-1]^1))
	withByte := func(b string) string { return testKey[:10] + b + testKey[11:] }
	nilHeaderEntry := newReq().build()
	nilHeaderEntry.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{nil, {Key: "x-api-key"}}}

	tests := []struct {
		name string
		req  *authv3.CheckRequest
		want string
	}{
		{"no headers", newReq().build(), "missing_key"},
		{"empty x-api-key", newReq().key("").build(), "missing_key"},
		{"whitespace x-api-key", newReq().key(" \t  ").build(), "missing_key"},
		{"Basic authorization only", newReq().header("authorization", "Basic "+testKey).build(), "missing_key"},
		{"Bearer without token", newReq().header("authorization", "Bearer").build(), "missing_key"},
		{"Bearer with only spaces", newReq().header("authorization", "Bearer    ").build(), "missing_key"},
		{"Bearer with tab separator", newReq().header("authorization", "Bearer\t"+testKey).build(), "missing_key"},
		{"key in query string only", newReq().path("/v1/orders?api_key=" + testKey).build(), "missing_key"},
		{"key in another header", newReq().header("x-api-token", testKey).header("cookie", "api_key="+testKey).build(), "missing_key"},
		{"120 headers without key", withHeaders(newReq(), 120).build(), "missing_key"},
		{"both headers, different keys", newReq().key(testKey).header("authorization", "Bearer "+otherKey).build(), "ambiguous_credentials"},
		{"comma-joined x-api-key", newReq().key(testKey + "," + otherKey).build(), "ambiguous_credentials"},
		{"comma-joined same key", newReq().key(testKey + ", " + testKey).build(), "ambiguous_credentials"},
		{"key joined after an empty copy", newReq().key("," + testKey).build(), "ambiguous_credentials"},
		{"bearer token joined after an empty copy", newReq().header("authorization", "Bearer ,"+testKey).build(), "ambiguous_credentials"},
		{"comma-joined authorization", newReq().header("authorization", "Bearer "+testKey+", Bearer "+otherKey).build(), "ambiguous_credentials"},
		{"header_map duplicates, different values", newReq().raw("x-api-key", []byte(testKey)).raw("x-api-key", []byte(otherKey)).build(), "ambiguous_credentials"},
		{"headers and header_map disagree", newReq().key(testKey).raw("x-api-key", []byte(otherKey)).build(), "ambiguous_credentials"},
		{"malformed plus valid key", newReq().key("garbage").header("authorization", "Bearer "+testKey).build(), "ambiguous_credentials"},
		{"wrong prefix", newReq().key("kx_" + testKey[3:]).build(), "malformed_key"},
		{"other prefix", newReq().key("ghp_" + testKey[3:]).build(), "malformed_key"},
		{"bad checksum", newReq().key(flipLast).build(), "malformed_key"},
		{"truncated", newReq().key(testKey[:len(testKey)-1]).build(), "malformed_key"},
		{"trailing CRLF", newReq().key(testKey + "\r\n").build(), "malformed_key"},
		{"trailing LF in raw_value", newReq().raw("x-api-key", []byte(testKey+"\n")).build(), "malformed_key"},
		{"NUL inside", newReq().key(withByte("\x00")).build(), "malformed_key"},
		{"NUL appended", newReq().key(testKey + "\x00").build(), "malformed_key"},
		{"non-UTF-8 byte", newReq().raw("x-api-key", []byte(withByte("\xff"))).build(), "malformed_key"},
		{"non-UTF-8 in headers map", newReq().key(withByte("\xc3")).build(), "malformed_key"},
		{"8 KB key", newReq().key("kg_" + strings.Repeat("A", 8<<10)).build(), "malformed_key"},
		{"8 KB bearer", newReq().header("authorization", "Bearer kg_"+strings.Repeat("a", 8<<10)).build(), "malformed_key"},
		{"unicode lookalike", newReq().key(strings.Replace(testKey, "S", "Ѕ", 1)).build(), "malformed_key"},
		{"nil CheckRequest", nil, "missing_key"},
		{"empty CheckRequest", &authv3.CheckRequest{}, "missing_key"},
		{"nil Request", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{}}, "missing_key"},
		{"nil Http", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}}, "missing_key"},
		{"empty Http", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{}}}}, "missing_key"},
		{"nil header_map entry", nilHeaderEntry, "missing_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			resp := e.check(tc.req)
			if got := outcome(resp); got != tc.want {
				t.Fatalf("outcome %q, want %q", got, tc.want)
			}
			if n := e.store.reads.Load(); n != 0 {
				t.Errorf("%d store reads for a request without a usable key, want 0", n)
			}
		})
	}
}

func TestCheckIdentityHeaders(t *testing.T) {
	e := newEnv(t)
	resp := e.check(newReq().key(testKey).
		mapValue("X-Keygate-Key-Id", "forged").
		mapValue("X-Keygate-Tenant", "evil").
		mapValue("x-keygate-other", "1").
		header("x-keygate-scopes", "admin").
		header("X-KEYGATE-OTHER", "2").
		header("x-plan", "platinum").
		build())
	if got := outcome(resp); got != "allowed" {
		t.Fatalf("outcome %q, want allowed", got)
	}
	set := headerSet(resp)
	for name, want := range map[string]string{
		"x-keygate-key-id": testID,
		"x-keygate-tenant": "acme",
		"x-keygate-scopes": "orders:read orders:write",
		"x-plan":           "gold",
	} {
		if set[name] != want {
			t.Errorf("header %q = %q, want %q", name, set[name], want)
		}
	}
	rm := removed(resp)
	for _, name := range []string{"x-keygate-key-id", "x-keygate-tenant", "x-keygate-scopes", "x-plan"} {
		if rm[name] {
			t.Errorf("%q is removed; it must be overwritten (set), not removed", name)
		}
	}
	for _, name := range []string{"x-api-key", "x-keygate-other"} {
		if !rm[name] {
			t.Errorf("%q not in headers_to_remove %v", name, resp.GetOkResponse().GetHeadersToRemove())
		}
	}
	md := resp.GetDynamicMetadata().GetFields()
	if md["key_id"].GetStringValue() != testID || md["tenant"].GetStringValue() != "acme" {
		t.Errorf("dynamic metadata = %v", resp.GetDynamicMetadata())
	}
}

// TestCheckRecordHeaders: an allow sets every header its record sets,
// with its value, besides the identity headers, from none up to the most
// a record may have.
func TestCheckRecordHeaders(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 32} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			want := map[string]string{headerKeyID: testID, headerTenant: "acme", headerScopes: "orders:read orders:write"}
			headers := map[string]string{}
			for i := range n {
				name, value := fmt.Sprintf("x-rec-%02d", i), fmt.Sprintf("v%d", i)
				headers[name], want[name] = value, value
			}
			e := newEnv(t)
			e.put(testKey, func(r *policy.Record) { r.Headers = headers })
			resp := e.check(newReq().key(testKey).build())
			if got := outcome(resp); got != "allowed" {
				t.Fatalf("outcome %q, want allowed", got)
			}
			if got := headerSet(resp); !maps.Equal(got, want) {
				t.Errorf("headers set %v, want %v", got, want)
			}
		})
	}
}

func TestCheckSpoofedScopesRemovedWhenRecordHasNone(t *testing.T) {
	e := newEnv(t)
	e.put(testKey, func(r *policy.Record) { r.Scopes = nil })
	resp := e.check(newReq().key(testKey).header("x-keygate-scopes", "admin").build())
	if got := outcome(resp); got != "allowed" {
		t.Fatalf("outcome %q, want allowed", got)
	}
	if _, ok := headerSet(resp)["x-keygate-scopes"]; ok {
		t.Errorf("x-keygate-scopes set for a record without scopes")
	}
	if !removed(resp)["x-keygate-scopes"] {
		t.Errorf("client-sent x-keygate-scopes not removed: %v", resp.GetOkResponse().GetHeadersToRemove())
	}
}

func TestCheckSpoofedHeadersOnDeny(t *testing.T) {
	e := newEnv(t)
	resp := e.check(newReq().key(otherKey).header("x-keygate-tenant", "evil").header("x-keygate-key-id", otherID).build())
	if got := outcome(resp); got != "unknown_key" {
		t.Fatalf("outcome %q, want unknown_key", got)
	}
	// checkInvariants asserts that no identity header is present on a deny.
}

func TestCheckSharedResponsesNotMutated(t *testing.T) {
	e := newEnv(t)
	first := e.check(newReq().key(testKey).header("x-keygate-other", "1").build())
	e.check(newReq().key(testKey).header("authorization", "Bearer "+testKey).header("x-keygate-else", "1").build())
	if got := first.GetOkResponse().GetHeadersToRemove(); !slices.Equal(got, []string{"x-api-key", "x-keygate-reason", "x-keygate-other"}) {
		t.Errorf("first response's headers_to_remove changed to %v", got)
	}
	third := e.check(newReq().key(testKey).build())
	if got := third.GetOkResponse().GetHeadersToRemove(); !slices.Equal(got, []string{"x-api-key", "x-keygate-reason"}) {
		t.Errorf("prebuilt removals polluted: %v", got)
	}
}

// TestCheckRemovesHeadersOtherKeysSet: once a record setting a header is
// loaded, every allow of a key that does not set it removes it, also for
// a key whose removal lists were built (and kept) before: a client must
// not pass another key's x-tier upstream.
func TestCheckRemovesHeadersOtherKeysSet(t *testing.T) {
	e := newEnv(t) // testKey's record sets x-plan
	before := e.check(newReq().key(testKey).build())
	if got := before.GetOkResponse().GetHeadersToRemove(); !slices.Equal(got, []string{"x-api-key", "x-keygate-reason"}) {
		t.Errorf("before x-tier is known: headers_to_remove %v", got)
	}
	e.put(otherKey, func(r *policy.Record) { r.Headers = map[string]string{"x-tier": "silver"} })
	if got := outcome(e.check(newReq().key(otherKey).build())); got != "allowed" {
		t.Fatalf("otherKey: %q, want allowed", got)
	}
	after := e.check(newReq().key(testKey).header("x-tier", "silver").build())
	if got := after.GetOkResponse().GetHeadersToRemove(); !slices.Equal(got, []string{"x-api-key", "x-keygate-reason", "x-tier"}) {
		t.Errorf("after a record setting x-tier was loaded: headers_to_remove %v, want x-tier removed too", got)
	}
}

// TestCheckDecisionRequestID: a Decision carries the request's
// x-request-id for the audit line, unless the request has two different
// ones (then none: either could be the client's).
func TestCheckDecisionRequestID(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  *authv3.CheckRequest
		want string
	}{
		{"one", newReq().key(testKey).header("x-request-id", "req-abc").build(), "req-abc"},
		{"none", newReq().key(testKey).build(), ""},
		{"the same in headers and header_map", newReq().key(testKey).header("x-request-id", "req-abc").raw("x-request-id", []byte("req-abc")).build(), "req-abc"},
		{"two different", newReq().key(testKey).header("x-request-id", "req-abc").raw("x-request-id", []byte("req-xyz")).build(), ""},
		{"on a deny", newReq().key(otherKey).header("x-request-id", "req-abc").build(), "req-abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.check(tc.req)
			if got := e.lastDecision().RequestID; got != tc.want {
				t.Errorf("RequestID %q, want %q", got, tc.want)
			}
		})
	}
}

// policyCase runs one request against a record through Check.
type policyCase struct {
	name string
	cfg  func(*Config)
	rec  func(*policy.Record)
	req  *authv3.CheckRequest
	want string
}

func runPolicyCases(t *testing.T, tests []policyCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*Config)
			if tc.cfg != nil {
				mods = append(mods, tc.cfg)
			}
			e := newEnv(t, mods...)
			e.put(testKey, tc.rec)
			resp := e.check(tc.req)
			if got := outcome(resp); got != tc.want {
				t.Errorf("outcome %q, want %q", got, tc.want)
			}
		})
	}
}

func withRoutes(t testing.TB) func(*Config) {
	data, err := os.ReadFile("testdata/routes.json")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := policy.ParseRoutes(data)
	if err != nil {
		t.Fatalf("ParseRoutes: %v", err)
	}
	return func(c *Config) { c.Routes = routes }
}

func cidrs(list ...string) func(*policy.Record) {
	return func(r *policy.Record) { r.AllowedCIDRs = list }
}

func hosts(list ...string) func(*policy.Record) {
	return func(r *policy.Record) { r.AllowedHosts = list }
}

func referrers(list ...string) func(*policy.Record) {
	return func(r *policy.Record) { r.AllowedReferrers = list }
}

func at(d time.Duration) string { return epoch.Add(d).Format(time.RFC3339) }

func TestCheckPolicyAllow(t *testing.T) {
	routes := withRoutes(t)
	nets := cidrs("10.0.0.0/8", "fe80::/10", "2001:db8::/32")
	hs := hosts("api.example.com", "*.tenant.example.com")
	refs := referrers("https://app.example.com", "https://*.partner.example")
	runPolicyCases(t, []policyCase{
		{name: "no context extension", req: newReq().key(testKey).build(), want: "allowed"},
		{name: "scope granted", req: newReq().key(testKey).scopes("orders:read").build(), want: "allowed"},
		{name: "two scopes granted", req: newReq().key(testKey).scopes("orders:read orders:write").build(), want: "allowed"},
		{name: "scope list with extra spaces", req: newReq().key(testKey).scopes("  orders:read   orders:write ").build(), want: "allowed"},
		{name: "empty scope list", req: newReq().key(testKey).scopes("").build(), want: "allowed"},
		{name: "routes: GET orders", cfg: routes, req: newReq().key(testKey).path("/v1/orders/42").build(), want: "allowed"},
		{name: "routes: query string stripped", cfg: routes, req: newReq().key(testKey).path("/v1/orders?next=/../admin//x").build(), want: "allowed"},
		{name: "routes: POST orders needs write", cfg: routes, req: newReq().key(testKey).method("POST").path("/v1/orders").build(), want: "allowed"},
		{name: "routes: admin with admin scope", cfg: routes, rec: func(r *policy.Record) { r.Scopes = []string{"admin"} }, req: newReq().key(testKey).path("/admin/users").build(), want: "allowed"},
		{name: "routes: unlisted path", cfg: routes, req: newReq().key(testKey).path("/healthz").build(), want: "allowed"},
		{name: "routes and extension together", cfg: routes, req: newReq().key(testKey).path("/v1/orders").scopes("orders:write").build(), want: "allowed"},
		{name: "no CIDRs, empty source", req: newReq().key(testKey).source("").build(), want: "allowed"},
		{name: "underscored header that reads as nothing keygate uses", req: newReq().key(testKey).header("x_trace_id", "1").mapValue("my_header", "2").build(), want: "allowed"},
		{name: "cidr: IPv4", rec: nets, req: newReq().key(testKey).source("10.1.2.3").build(), want: "allowed"},
		{name: "cidr: IPv4-mapped IPv6", rec: nets, req: newReq().key(testKey).source("::ffff:10.0.0.1").build(), want: "allowed"},
		{name: "cidr: link-local with zone", rec: nets, req: newReq().key(testKey).source("fe80::1%eth0").build(), want: "allowed"},
		{name: "cidr: IPv6", rec: nets, req: newReq().key(testKey).source("2001:db8::1").build(), want: "allowed"},
		{name: "host: exact", rec: hs, req: newReq().key(testKey).build(), want: "allowed"},
		{name: "host: case and port", rec: hs, req: newReq().key(testKey).host("API.Example.COM:443").build(), want: "allowed"},
		{name: "host: IPv6 literal rule", rec: hosts("2001:db8::1"), req: newReq().key(testKey).host("[2001:DB8::1]:8443").build(), want: "allowed"},
		{name: "routes: host rule, other spelling of the host", cfg: routes, rec: func(r *policy.Record) { r.Scopes = []string{"internal"} }, req: newReq().key(testKey).host("Internal.Example.COM:443").path("/x").build(), want: "allowed"},
		{name: "host: wildcard", rec: hs, req: newReq().key(testKey).host("a.tenant.example.com").build(), want: "allowed"},
		{name: "host: from :authority header", rec: hs, req: newReq().key(testKey).host("").header(":authority", "api.example.com").build(), want: "allowed"},
		{name: "referrer: origin", rec: refs, req: newReq().key(testKey).header("origin", "https://app.example.com").build(), want: "allowed"},
		{name: "referrer: origin default port", rec: refs, req: newReq().key(testKey).header("origin", "https://app.example.com:443").build(), want: "allowed"},
		{name: "referrer: referer only", rec: refs, req: newReq().key(testKey).header("referer", "https://app.example.com/page?x=1").build(), want: "allowed"},
		{name: "referrer: null origin falls back to referer", rec: refs, req: newReq().key(testKey).header("origin", "null").header("referer", "https://app.example.com/").build(), want: "allowed"},
		{name: "referrer: wildcard", rec: refs, req: newReq().key(testKey).header("Origin", "https://x.partner.example").build(), want: "allowed"},
		{name: "lifetime: inside window", rec: func(r *policy.Record) {
			r.NotBefore, r.ExpiresAt = at(-time.Hour), at(time.Hour)
		}, req: newReq().key(testKey).build(), want: "allowed"},
	})
}

func TestCheckPolicyDeny(t *testing.T) {
	routes := withRoutes(t)
	nets := cidrs("10.0.0.0/8", "fe80::/10", "2001:db8::/32")
	hs := hosts("api.example.com", "*.tenant.example.com")
	refs := referrers("https://app.example.com", "https://*.partner.example")
	runPolicyCases(t, []policyCase{
		{name: "scope not granted", req: newReq().key(testKey).scopes("admin").build(), want: "scope_denied"},
		{name: "one of two scopes not granted", req: newReq().key(testKey).scopes("orders:read admin").build(), want: "scope_denied"},
		{name: "routes: admin", cfg: routes, req: newReq().key(testKey).path("/admin").build(), want: "scope_denied"},
		{name: "routes: admin with query", cfg: routes, req: newReq().key(testKey).path("/admin?debug=1").build(), want: "scope_denied"},
		{name: "routes: admin with fragment", cfg: routes, req: newReq().key(testKey).path("/admin#x").build(), want: "scope_denied"},
		{name: "routes: host rule", cfg: routes, req: newReq().key(testKey).host("internal.example.com").path("/x").build(), want: "scope_denied"},
		{name: "routes: extension adds a scope", cfg: routes, req: newReq().key(testKey).path("/v1/orders").scopes("admin").build(), want: "scope_denied"},
		{name: "routes: dot-dot", cfg: routes, req: newReq().key(testKey).path("/v1/orders/../../admin").build(), want: "non_canonical_path"},
		{name: "routes: double slash", cfg: routes, req: newReq().key(testKey).path("//admin").build(), want: "non_canonical_path"},
		{name: "routes: encoded dots", cfg: routes, req: newReq().key(testKey).path("/v1/%2e%2e/admin").build(), want: "non_canonical_path"},
		{name: "routes: encoded slash", cfg: routes, req: newReq().key(testKey).path("/v1/orders%2F..%2Fadmin").build(), want: "non_canonical_path"},
		{name: "routes: backslash", cfg: routes, req: newReq().key(testKey).path(`/v1\admin`).build(), want: "non_canonical_path"},
		{name: "routes: dot segment", cfg: routes, req: newReq().key(testKey).path("/./admin?x").build(), want: "non_canonical_path"},
		{name: "routes: empty path", cfg: routes, req: newReq().key(testKey).path("").build(), want: "non_canonical_path"},
		{name: "routes: relative path", cfg: routes, req: newReq().key(testKey).path("admin").build(), want: "non_canonical_path"},
		{name: "cidr: empty source", rec: nets, req: newReq().key(testKey).source("").build(), want: "cidr_denied"},
		{name: "cidr: address with port", rec: nets, req: newReq().key(testKey).source("1.2.3.4:abc").build(), want: "cidr_denied"},
		{name: "cidr: allowed address with port", rec: nets, req: newReq().key(testKey).source("10.1.2.3:443").build(), want: "cidr_denied"},
		{name: "cidr: outside", rec: nets, req: newReq().key(testKey).source("192.168.0.1").build(), want: "cidr_denied"},
		{name: "cidr: mapped outside", rec: nets, req: newReq().key(testKey).source("::ffff:192.168.0.1").build(), want: "cidr_denied"},
		{name: "cidr: zone outside", rec: nets, req: newReq().key(testKey).source("fec0::1%eth0").build(), want: "cidr_denied"},
		{name: "cidr: not an IP", rec: nets, req: newReq().key(testKey).source("localhost").build(), want: "cidr_denied"},
		{name: "cidr: nil source", rec: nets, req: func() *authv3.CheckRequest {
			r := newReq().key(testKey).build()
			r.Attributes.Source = nil
			return r
		}(), want: "cidr_denied"},
		{name: "host: other", rec: hs, req: newReq().key(testKey).host("evil.com").build(), want: "host_denied"},
		{name: "host: bare wildcard suffix", rec: hs, req: newReq().key(testKey).host("tenant.example.com").build(), want: "host_denied"},
		{name: "host: suffix attack", rec: hs, req: newReq().key(testKey).host("api.example.com.evil.com").build(), want: "host_denied"},
		{name: "host: empty", rec: hs, req: newReq().key(testKey).host("").build(), want: "invalid_host"},
		{name: "host: trailing dot", rec: hs, req: newReq().key(testKey).host("api.example.com.").build(), want: "invalid_host"},
		{name: "host: a host for a port", rec: hs, req: newReq().key(testKey).host("api.example.com:1.evil.com").build(), want: "invalid_host"},
		{name: "host: port letters", rec: hs, req: newReq().key(testKey).host("api.example.com:abc").build(), want: "invalid_host"},
		{name: "host: port out of range", rec: hs, req: newReq().key(testKey).host("api.example.com:99999").build(), want: "invalid_host"},
		{name: "host: userinfo", rec: hs, req: newReq().key(testKey).host("evil.com@api.example.com").build(), want: "invalid_host"},
		{name: "routes: host rule dodged with a port", cfg: routes, req: newReq().key(testKey).host("internal.example.com:1.api.example.com").path("/x").build(), want: "invalid_host"},
		{name: "routes: host rule dodged with a trailing dot", cfg: routes, req: newReq().key(testKey).host("internal.example.com.").path("/x").build(), want: "invalid_host"},
		{name: "routes: host rule, upper case", cfg: routes, req: newReq().key(testKey).host("INTERNAL.example.com").path("/x").build(), want: "scope_denied"},
		{name: "routes: method rule dodged by case", cfg: routes, rec: func(r *policy.Record) { r.Scopes = []string{"orders:read"} }, req: newReq().key(testKey).method("post").path("/v1/orders").build(), want: "invalid_method"},
		{name: "routes: HEAD takes the GET rule", cfg: routes, req: newReq().key(testKey).method("HEAD").path("/reports").build(), want: "scope_denied"},
		{name: "routes: no method", cfg: routes, req: newReq().key(testKey).method("").path("/v1/orders").build(), want: "invalid_method"},
		{name: "CGI look-alike of an identity header", req: newReq().key(testKey).header("x_keygate_scopes", "admin").build(), want: "invalid_header"},
		{name: "CGI look-alike of the credential", req: newReq().key(testKey).mapValue("x_api_key", otherKey).build(), want: "invalid_header"},
		{name: "CGI look-alike of a record header", req: newReq().key(testKey).header("x_plan", "platinum").build(), want: "invalid_header"},
		{name: "CGI look-alike of a record header that starts with a dash", rec: func(r *policy.Record) { r.Headers = map[string]string{"-plan": "gold"} },
			req: newReq().key(testKey).header("_plan", "platinum").build(), want: "invalid_header"},
		{name: "CGI look-alike of a custom auth header", cfg: func(c *Config) { c.AuthHeader = "x-auth-token" },
			req: newReq().key(testKey).header("x_auth_token", "Bearer "+otherKey).build(), want: "invalid_header"},
		{name: "referrer: none", rec: refs, req: newReq().key(testKey).build(), want: "referrer_denied"},
		{name: "referrer: other origin", rec: refs, req: newReq().key(testKey).header("origin", "https://evil.com").build(), want: "referrer_denied"},
		{name: "referrer: scheme", rec: refs, req: newReq().key(testKey).header("origin", "http://app.example.com").build(), want: "referrer_denied"},
		{name: "referrer: suffix attack", rec: refs, req: newReq().key(testKey).header("referer", "https://app.example.com.evil.com/").build(), want: "referrer_denied"},
		{name: "referrer: origin wins over referer", rec: refs, req: newReq().key(testKey).header("origin", "https://evil.com").header("referer", "https://app.example.com/").build(), want: "referrer_denied"},
		{name: "referrer: userinfo", rec: refs, req: newReq().key(testKey).header("referer", "https://user@app.example.com/").build(), want: "referrer_denied"},
		{name: "revoked", rec: func(r *policy.Record) { r.Status = policy.StatusRevoked }, req: newReq().key(testKey).build(), want: "revoked_key"},
		{name: "expired", rec: func(r *policy.Record) { r.ExpiresAt = at(-time.Second) }, req: newReq().key(testKey).build(), want: "expired_key"},
		{name: "expires exactly now", rec: func(r *policy.Record) { r.ExpiresAt = at(0) }, req: newReq().key(testKey).build(), want: "expired_key"},
		{name: "not yet valid", rec: func(r *policy.Record) { r.NotBefore = at(time.Hour) }, req: newReq().key(testKey).build(), want: "key_not_yet_valid"},
		{name: "wrong secret for an existing id", req: newReq().key(wrongSecretKey).build(), want: "unknown_key"},
		{name: "unknown id", req: newReq().key(otherKey).build(), want: "unknown_key"},
	})
}

// Expiry and not-before are checked on every request, not only on fill.
func TestCheckLifetimeWhileCached(t *testing.T) {
	t.Run("expires while cached", func(t *testing.T) {
		e := newEnv(t)
		e.put(testKey, func(r *policy.Record) { r.ExpiresAt = at(10 * time.Second) })
		if got := outcome(e.check(newReq().key(testKey).build())); got != "allowed" {
			t.Fatalf("before expiry: %q", got)
		}
		e.clock.Advance(11 * time.Second) // still well within FoundTTL (30s)
		if got := outcome(e.check(newReq().key(testKey).build())); got != "expired_key" {
			t.Errorf("after expiry: %q, want expired_key", got)
		}
		if d := e.lastDecision(); d.Source != SourceHit {
			t.Errorf("source %v, want SourceHit (the check must not depend on a refill)", d.Source)
		}
		if n := e.store.reads.Load(); n != 1 {
			t.Errorf("%d store reads, want 1", n)
		}
	})
	t.Run("becomes valid while cached", func(t *testing.T) {
		e := newEnv(t)
		e.put(testKey, func(r *policy.Record) { r.NotBefore = at(10 * time.Second) })
		if got := outcome(e.check(newReq().key(testKey).build())); got != "key_not_yet_valid" {
			t.Fatalf("before not_before: %q", got)
		}
		e.clock.Advance(10 * time.Second)
		if got := outcome(e.check(newReq().key(testKey).build())); got != "allowed" {
			t.Errorf("at not_before: %q, want allowed", got)
		}
		if n := e.store.reads.Load(); n != 1 {
			t.Errorf("%d store reads, want 1", n)
		}
	})
}

func TestCheckWrongSecretLooksUnknown(t *testing.T) {
	e := newEnv(t)
	wrong := e.check(newReq().key(wrongSecretKey).build())
	unknown := e.check(newReq().key(otherKey).build())
	if outcome(wrong) != "unknown_key" {
		t.Fatalf("wrong secret: %q, want unknown_key", outcome(wrong))
	}
	if wrong.GetDeniedResponse().GetBody() != unknown.GetDeniedResponse().GetBody() ||
		wrong.GetStatus().GetMessage() != unknown.GetStatus().GetMessage() {
		t.Errorf("a wrong secret for an existing id is distinguishable from an unknown id")
	}
	// The right key still works: a wrong secret does not poison the cache.
	if got := outcome(e.check(newReq().key(testKey).build())); got != "allowed" {
		t.Errorf("right key after wrong secret: %q", got)
	}
}

// TestCheckDecisionLatency: a Decision's Latency (metrics' histogram, the
// audit line's latency_us) is measured from the start of that Check: never
// negative, never more than the time around the call, for every stage a
// Check can end at.
func TestCheckDecisionLatency(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		req  *authv3.CheckRequest
	}{
		{"allow", newReq().key(testKey).build()},
		{"deny before the lookup", newReq().key("kg_nope").build()},
		{"deny after the lookup", newReq().key(otherKey).build()},
	} {
		before := time.Now()
		e.check(tc.req)
		elapsed := time.Since(before)
		if d := e.lastDecision(); d.Latency < 0 || d.Latency > elapsed {
			t.Errorf("%s: latency %v, want between 0 and %v", tc.name, d.Latency, elapsed)
		}
	}
}

func TestCheckNeverReturnsError(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, req := range []*authv3.CheckRequest{nil, {}, newReq().key(testKey).build(), newReq().key(otherKey).build()} {
		resp, err := e.srv.Check(ctx, req)
		if err != nil || resp == nil {
			t.Fatalf("Check(cancelled ctx) = %v, %v", resp, err)
		}
		checkInvariants(t, resp)
	}
}

// TestLowerASCII: header names are compared in lower case; only A–Z change,
// each of them, and nothing next to them ('@' and '[' bracket the range).
func TestLowerASCII(t *testing.T) {
	for in, want := range map[string]string{
		"x-api-key": "x-api-key", "x-Api-key": "x-api-key", "X-API-KEY": "x-api-key", "x-api-keZ": "x-api-kez",
		"@[`{": "@[`{", "x-@-[": "x-@-[", "": "",
	} {
		if got := lowerASCII(in); got != want {
			t.Errorf("lowerASCII(%q) = %q, want %q", in, got, want)
		}
	}
}
