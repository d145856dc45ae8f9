package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// addrOrZero is what a caller gets from a peer address it cannot parse.
func addrOrZero(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

const (
	notBefore = "2026-06-01T00:00:00Z"
	expiresAt = "2026-07-01T00:00:00Z"
)

var (
	notBeforeTime = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	expiresAtTime = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
)

// Record changes shared by the Evaluate tables.
func scopes(s ...string) func(*Record) { return func(r *Record) { r.Scopes = s } }
func hosts(s ...string) func(*Record)  { return func(r *Record) { r.AllowedHosts = s } }
func cidrs(s ...string) func(*Record)  { return func(r *Record) { r.AllowedCIDRs = s } }
func referrers(s ...string) func(*Record) {
	return func(r *Record) { r.AllowedReferrers = s }
}
func lifetime(r *Record) { r.NotBefore, r.ExpiresAt = notBefore, expiresAt }

func everything(r *Record) {
	lifetime(r)
	scopes("orders:read", "orders:write")(r)
	hosts("api.example.com", "*.example.net")(r)
	cidrs("10.0.0.0/8", "2001:db8::/32")(r)
	referrers("https://app.example.com", "https://*.example.org")(r)
}

type evalCase struct {
	name string
	rec  func(*Record)
	req  Request
}

func runEval(t *testing.T, tc evalCase) Reason {
	t.Helper()
	rec := mustRecord(t, tc.rec)
	req := tc.req
	if req.Now.IsZero() {
		req.Now = testNow
	}
	return evaluate(rec, &req)
}

func TestEvaluateAllow(t *testing.T) {
	tests := []evalCase{
		{name: "no restrictions, empty request"},
		{name: "revocable fields unset, any source", req: Request{SourceIP: mustAddr("203.0.113.9"), Host: "anything"}},

		// Lifetime.
		{name: "at not_before", rec: lifetime, req: Request{Now: notBeforeTime}},
		{name: "just before expires_at", rec: lifetime, req: Request{Now: expiresAtTime.Add(-time.Nanosecond)}},
		{name: "expires_at with offset", rec: func(r *Record) { r.ExpiresAt = "2026-06-01T13:30:00+01:00" }, req: Request{Now: testNow.Add(29 * time.Minute)}},

		// Host.
		{name: "host exact", rec: hosts("api.example.com"), req: Request{Host: "api.example.com"}},
		{name: "host port stripped", rec: hosts("api.example.com"), req: Request{Host: "api.example.com:8443"}},
		{name: "host case-insensitive", rec: hosts("api.example.com"), req: Request{Host: "API.Example.COM"}},
		{name: "host case-insensitive with port", rec: hosts("api.example.com"), req: Request{Host: "Api.Example.Com:443"}},
		{name: "host IPv6 literal, other spelling", rec: hosts("2001:db8::1"), req: Request{Host: "[2001:DB8:0::1]:443"}},
		{name: "host IPv6 pattern in long form", rec: hosts("2001:db8:0:0:0:0:0:1"), req: Request{Host: "[2001:db8::1]"}},
		{name: "host with underscore", rec: hosts("my_host.example.com"), req: Request{Host: "my_host.example.com"}},
		{name: "host highest port", rec: hosts("api.example.com"), req: Request{Host: "api.example.com:65535"}},
		{name: "host second pattern", rec: hosts("other.example", "api.example.com"), req: Request{Host: "api.example.com"}},
		{name: "wildcard one label", rec: hosts("*.example.com"), req: Request{Host: "sub.example.com"}},
		{name: "wildcard two labels", rec: hosts("*.example.com"), req: Request{Host: "a.b.example.com"}},
		{name: "wildcard with port and case", rec: hosts("*.example.com"), req: Request{Host: "SUB.example.com:443"}},
		{name: "host IPv4 literal", rec: hosts("192.0.2.1"), req: Request{Host: "192.0.2.1:8080"}},
		{name: "host IPv6 literal with port", rec: hosts("2001:db8::1"), req: Request{Host: "[2001:db8::1]:443"}},
		// :authority for an IPv6 literal without a port is "[2001:db8::1]".
		{name: "host IPv6 literal without port", rec: hosts("2001:db8::1"), req: Request{Host: "[2001:db8::1]"}},

		{name: "host of 253 bytes", rec: hosts(strings.Repeat("a.", 126) + "a"), req: Request{Host: strings.Repeat("a.", 126) + "a"}},
		{name: "host label of 63 bytes", rec: hosts(strings.Repeat("a", 63) + ".example"), req: Request{Host: strings.Repeat("a", 63) + ".example:443"}},
		{name: "host alphabet edges", rec: hosts("z9.example", "*.z0.example"), req: Request{Host: "Z9.example"}},
		{name: "wildcard alphabet edges", rec: hosts("z9.example", "*.z0.example"), req: Request{Host: "a9.z0.example"}},

		// Source address.
		{name: "cidr v4", rec: cidrs("10.0.0.0/8"), req: Request{SourceIP: mustAddr("10.1.2.3")}},
		{name: "cidr v4 first address", rec: cidrs("10.0.0.0/8"), req: Request{SourceIP: mustAddr("10.0.0.0")}},
		{name: "cidr v4 last address", rec: cidrs("10.0.0.0/8"), req: Request{SourceIP: mustAddr("10.255.255.255")}},
		{name: "cidr v6", rec: cidrs("2001:db8::/32"), req: Request{SourceIP: mustAddr("2001:db8:1::1")}},
		{name: "cidr IPv4-mapped source", rec: cidrs("10.0.0.0/8"), req: Request{SourceIP: mustAddr("::ffff:10.0.0.1")}},
		{name: "cidr zone stripped", rec: cidrs("fe80::/10"), req: Request{SourceIP: mustAddr("fe80::1%eth0")}},
		{name: "cidr single v4 address", rec: cidrs("192.0.2.7"), req: Request{SourceIP: mustAddr("192.0.2.7")}},
		{name: "cidr single mapped address in record", rec: cidrs("::ffff:192.0.2.7"), req: Request{SourceIP: mustAddr("192.0.2.7")}},
		{name: "cidr single v6 address", rec: cidrs("2001:db8::7"), req: Request{SourceIP: mustAddr("2001:db8::7")}},
		{name: "cidr any v4", rec: cidrs("0.0.0.0/0"), req: Request{SourceIP: mustAddr("203.0.113.1")}},
		{name: "cidr second of mixed list", rec: cidrs("2001:db8::/32", "10.0.0.0/8"), req: Request{SourceIP: mustAddr("10.9.9.9")}},

		// Referrer.
		{name: "origin exact", rec: referrers("https://app.example.com"), req: Request{Origin: "https://app.example.com"}},
		{name: "origin default https port", rec: referrers("https://app.example.com"), req: Request{Origin: "https://app.example.com:443"}},
		{name: "origin default http port", rec: referrers("http://app.example.com"), req: Request{Origin: "http://app.example.com:80"}},
		{name: "origin explicit port", rec: referrers("http://localhost:3000"), req: Request{Origin: "http://localhost:3000"}},
		{name: "origin upper-case host", rec: referrers("https://app.example.com"), req: Request{Origin: "https://APP.Example.com"}},
		{name: "origin upper-case scheme", rec: referrers("https://app.example.com"), req: Request{Origin: "HTTPS://app.example.com"}},
		{name: "origin wildcard", rec: referrers("https://*.example.com"), req: Request{Origin: "https://app.example.com"}},
		{name: "origin wildcard deep", rec: referrers("https://*.example.com"), req: Request{Origin: "https://a.b.example.com"}},
		{name: "origin wildcard with port", rec: referrers("https://*.example.com:8443"), req: Request{Origin: "https://a.example.com:8443"}},
		{name: "origin preferred over bad referer", rec: referrers("https://app.example.com"), req: Request{Origin: "https://app.example.com", Referer: "https://evil.example/"}},
		{name: "referer when origin absent", rec: referrers("https://app.example.com"), req: Request{Referer: "https://app.example.com/orders?id=1#top"}},
		{name: "referer when origin null", rec: referrers("https://app.example.com"), req: Request{Origin: "null", Referer: "https://app.example.com/"}},
		{name: "referer default port", rec: referrers("https://app.example.com"), req: Request{Referer: "https://app.example.com:443/x"}},
		{name: "origin IPv6", rec: referrers("https://[2001:db8::1]:8443"), req: Request{Origin: "https://[2001:db8::1]:8443"}},
		{name: "origin IPv6 without port", rec: referrers("https://[2001:db8::1]"), req: Request{Origin: "https://[2001:db8::1]"}},
		{name: "origin IPv6 in another form", rec: referrers("https://[2001:db8::1]"), req: Request{Origin: "https://[2001:DB8:0::1]"}},
		// A record that spells out the default port must still match.
		{name: "record origin with default port", rec: referrers("https://app.example.com:443"), req: Request{Origin: "https://app.example.com"}},
		{name: "record origin with default http port", rec: referrers("http://app.example.com:80"), req: Request{Origin: "http://app.example.com"}},
		{name: "record origin on port 80 over https", rec: referrers("https://app.example.com:80"), req: Request{Origin: "https://app.example.com:80"}},
		{name: "record origin lowest port", rec: referrers("https://app.example.com:1"), req: Request{Origin: "https://app.example.com:1"}},
		{name: "record origin highest port", rec: referrers("https://app.example.com:65535"), req: Request{Origin: "https://app.example.com:65535"}},
		// Lenient, and pinned so that a change is deliberate: an unbracketed
		// IPv6 literal in a record's origin is read as the whole host, never
		// as host and port.
		{name: "record origin unbracketed IPv6", rec: referrers("https://fe80::1"), req: Request{Origin: "https://[fe80::1]"}},

		// Scopes.
		{name: "no required scopes", rec: scopes("orders:read")},
		{name: "required scopes granted", rec: scopes("orders:read", "orders:write"), req: Request{RequiredScopes: []string{"orders:write", "orders:read"}}},
		{name: "required scopes empty slice", rec: scopes("orders:read"), req: Request{RequiredScopes: []string{}}},
		{name: "scope list one", rec: scopes("orders:read"), req: Request{ScopeList: "orders:read"}},
		{name: "scope list two", rec: scopes("orders:read", "orders:write"), req: Request{ScopeList: "orders:read orders:write"}},
		{name: "scope list extra spaces", rec: scopes("orders:read", "orders:write"), req: Request{ScopeList: "   orders:read    orders:write   "}},
		{name: "scope list tabs around", rec: scopes("orders:read", "orders:write"), req: Request{ScopeList: "\torders:read \t orders:write\t"}},
		{name: "scope list tab separated", rec: scopes("orders:read", "orders:write"), req: Request{ScopeList: "orders:read\torders:write"}},
		{name: "scope list blank", rec: scopes("orders:read"), req: Request{ScopeList: " \t "}},
		{name: "scope list without record scopes", req: Request{ScopeList: ""}},
		{name: "scope list and required scopes", rec: scopes("a", "b"), req: Request{RequiredScopes: []string{"a"}, ScopeList: "b"}},
		{name: "scope list repeated", rec: scopes("a"), req: Request{ScopeList: "a a a"}},

		// Everything at once.
		{name: "every restriction satisfied", rec: everything, req: Request{
			Host: "api.example.com:443", SourceIP: mustAddr("::ffff:10.1.1.1"), Origin: "https://x.example.org",
			RequiredScopes: []string{"orders:read"}, ScopeList: "orders:write",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := runEval(t, tc); got != Allowed {
				t.Errorf("Evaluate = %v, want %v", got, Allowed)
			}
		})
	}
}

func TestEvaluateDeny(t *testing.T) {
	tests := []struct {
		evalCase
		want Reason
	}{
		// Lifetime and status.
		{evalCase{name: "revoked", rec: func(r *Record) { r.Status = StatusRevoked }}, Revoked},
		{evalCase{name: "revoked and outside lifetime", rec: func(r *Record) { lifetime(r); r.Status = StatusRevoked }, req: Request{Now: expiresAtTime.Add(time.Hour)}}, Revoked},
		{evalCase{name: "not yet valid", rec: lifetime, req: Request{Now: notBeforeTime.Add(-time.Nanosecond)}}, NotYetValid},
		{evalCase{name: "not yet valid, zero clock", rec: lifetime, req: Request{Now: time.Time{}.Add(time.Nanosecond)}}, NotYetValid},
		{evalCase{name: "expired exactly at expires_at", rec: lifetime, req: Request{Now: expiresAtTime}}, Expired},
		{evalCase{name: "expired after expires_at", rec: lifetime, req: Request{Now: expiresAtTime.Add(time.Second)}}, Expired},
		{evalCase{name: "expired at expires_at in another zone", rec: lifetime, req: Request{Now: expiresAtTime.In(time.FixedZone("x", 5*3600))}}, Expired},
		{evalCase{name: "expired beats host", rec: func(r *Record) { lifetime(r); hosts("api.example.com")(r) }, req: Request{Now: expiresAtTime, Host: "evil"}}, Expired},

		// Host.
		{evalCase{name: "host missing", rec: hosts("api.example.com")}, InvalidHost},
		{evalCase{name: "host other", rec: hosts("api.example.com"), req: Request{Host: "evil.com"}}, HostDenied},
		{evalCase{name: "host as suffix", rec: hosts("api.example.com"), req: Request{Host: "api.example.com.evil.com"}}, HostDenied},
		{evalCase{name: "host as prefix", rec: hosts("api.example.com"), req: Request{Host: "xapi.example.com"}}, HostDenied},
		{evalCase{name: "host subdomain of exact", rec: hosts("example.com"), req: Request{Host: "api.example.com"}}, HostDenied},
		{evalCase{name: "wildcard bare domain", rec: hosts("*.example.com"), req: Request{Host: "example.com"}}, HostDenied},
		{evalCase{name: "wildcard bare domain with port", rec: hosts("*.example.com"), req: Request{Host: "example.com:443"}}, HostDenied},
		{evalCase{name: "wildcard glued suffix", rec: hosts("*.example.com"), req: Request{Host: "badexample.com"}}, HostDenied},
		{evalCase{name: "wildcard leading dot only", rec: hosts("*.example.com"), req: Request{Host: ".example.com"}}, InvalidHost},
		{evalCase{name: "wildcard suffix then more", rec: hosts("*.example.com"), req: Request{Host: "a.example.com.evil"}}, HostDenied},
		{evalCase{name: "host with userinfo", rec: hosts("api.example.com"), req: Request{Host: "evil@api.example.com"}}, InvalidHost},
		// A host a router could read differently is refused, never cut at
		// the first colon.
		{evalCase{name: "host port is a host", rec: hosts("api.example.com"), req: Request{Host: "api.example.com:1.admin.example.com"}}, InvalidHost},
		{evalCase{name: "host port letters", rec: hosts("api.example.com"), req: Request{Host: "api.example.com:abc"}}, InvalidHost},
		{evalCase{name: "host port too big", rec: hosts("api.example.com"), req: Request{Host: "api.example.com:99999"}}, InvalidHost},
		{evalCase{name: "host port zero", rec: hosts("api.example.com"), req: Request{Host: "api.example.com:0"}}, InvalidHost},
		{evalCase{name: "host port empty", rec: hosts("api.example.com"), req: Request{Host: "api.example.com:"}}, InvalidHost},
		{evalCase{name: "host trailing dot", rec: hosts("api.example.com"), req: Request{Host: "api.example.com."}}, InvalidHost},
		{evalCase{name: "host space", rec: hosts("api.example.com"), req: Request{Host: "api.example.com "}}, InvalidHost},
		{evalCase{name: "host two ports", rec: hosts("api.example.com"), req: Request{Host: "api.example.com:80:80"}}, InvalidHost},
		{evalCase{name: "host IPv6 unbracketed", rec: hosts("2001:db8::1"), req: Request{Host: "2001:db8::1"}}, InvalidHost},
		{evalCase{name: "host IPv6 zone", rec: hosts("fe80::1"), req: Request{Host: "[fe80::1%25eth0]"}}, InvalidHost},
		{evalCase{name: "host short IPv4", rec: hosts("127.0.0.1"), req: Request{Host: "127.1"}}, InvalidHost},
		{evalCase{name: "wildcard never matches an IP", rec: hosts("*.0.0.1"), req: Request{Host: "127.0.0.1"}}, HostDenied},

		{evalCase{name: "host beats cidr", rec: func(r *Record) { hosts("a.example")(r); cidrs("10.0.0.0/8")(r) }, req: Request{Host: "b.example"}}, HostDenied},

		// Source address.
		{evalCase{name: "cidr outside", rec: cidrs("10.0.0.0/8"), req: Request{SourceIP: mustAddr("11.0.0.1")}}, CIDRDenied},
		{evalCase{name: "cidr unknown source", rec: cidrs("10.0.0.0/8")}, CIDRDenied},
		{evalCase{name: "cidr source empty string", rec: cidrs("10.0.0.0/8"), req: Request{SourceIP: addrOrZero("")}}, CIDRDenied},
		{evalCase{name: "cidr source with bad port", rec: cidrs("1.2.3.4/32"), req: Request{SourceIP: addrOrZero("1.2.3.4:abc")}}, CIDRDenied},
		{evalCase{name: "cidr unknown source, allow-all list", rec: cidrs("0.0.0.0/0", "::/0")}, CIDRDenied},
		{evalCase{name: "cidr mapped outside", rec: cidrs("10.0.0.0/8"), req: Request{SourceIP: mustAddr("::ffff:11.0.0.1")}}, CIDRDenied},
		{evalCase{name: "cidr v6 source, v4 list", rec: cidrs("0.0.0.0/0"), req: Request{SourceIP: mustAddr("2001:db8::1")}}, CIDRDenied},
		{evalCase{name: "cidr v4 source, v6 list", rec: cidrs("::/0"), req: Request{SourceIP: mustAddr("10.0.0.1")}}, CIDRDenied},
		{evalCase{name: "cidr zone outside", rec: cidrs("2001:db8::/32"), req: Request{SourceIP: mustAddr("fe80::1%eth0")}}, CIDRDenied},
		{evalCase{name: "cidr single address other", rec: cidrs("192.0.2.7"), req: Request{SourceIP: mustAddr("192.0.2.8")}}, CIDRDenied},
		{evalCase{name: "cidr beats referrer", rec: func(r *Record) { cidrs("10.0.0.0/8")(r); referrers("https://a.example")(r) }, req: Request{SourceIP: mustAddr("11.0.0.1")}}, CIDRDenied},

		// Referrer.
		{evalCase{name: "referrer missing", rec: referrers("https://app.example.com")}, ReferrerDenied},
		{evalCase{name: "origin null without referer", rec: referrers("https://app.example.com"), req: Request{Origin: "null"}}, ReferrerDenied},
		{evalCase{name: "origin wins over good referer", rec: referrers("https://app.example.com"), req: Request{Origin: "https://evil.example", Referer: "https://app.example.com/"}}, ReferrerDenied},
		{evalCase{name: "http vs https", rec: referrers("https://app.example.com"), req: Request{Origin: "http://app.example.com"}}, ReferrerDenied},
		{evalCase{name: "https vs http", rec: referrers("http://app.example.com"), req: Request{Origin: "https://app.example.com"}}, ReferrerDenied},
		{evalCase{name: "https with port 80", rec: referrers("https://app.example.com"), req: Request{Origin: "https://app.example.com:80"}}, ReferrerDenied},
		{evalCase{name: "other port", rec: referrers("https://app.example.com"), req: Request{Origin: "https://app.example.com:8443"}}, ReferrerDenied},
		{evalCase{name: "port missing", rec: referrers("http://localhost:3000"), req: Request{Origin: "http://localhost"}}, ReferrerDenied},
		{evalCase{name: "userinfo", rec: referrers("https://app.example.com"), req: Request{Origin: "https://user@app.example.com"}}, ReferrerDenied},
		{evalCase{name: "userinfo in referer", rec: referrers("https://app.example.com"), req: Request{Referer: "https://user:pw@app.example.com/"}}, ReferrerDenied},
		// An origin's host is read as an :authority is (ParseHost): a wildcard
		// never matches a name no host can have (found by FuzzEvaluate).
		{evalCase{name: "wildcard and a non-host label", rec: referrers("https://*.example.org"), req: Request{Referer: "https://!.example.org"}}, ReferrerDenied},
		{evalCase{name: "wildcard and a non-ASCII label", rec: referrers("https://*.example.org"), req: Request{Origin: "https://\u00e9.example.org"}}, ReferrerDenied},
		{evalCase{name: "wildcard and an escaped label", rec: referrers("https://*.example.org"), req: Request{Origin: "https://%C3%A9.example.org"}}, ReferrerDenied},
		{evalCase{name: "origin with an empty port", rec: referrers("https://app.example.com"), req: Request{Origin: "https://app.example.com:"}}, ReferrerDenied},
		{evalCase{name: "origin with a trailing dot", rec: referrers("https://*.example.org"), req: Request{Origin: "https://a.example.org."}}, ReferrerDenied},
		{evalCase{name: "userinfo trick", rec: referrers("https://app.example.com"), req: Request{Referer: "https://app.example.com@evil.example/"}}, ReferrerDenied},
		{evalCase{name: "wildcard bare domain", rec: referrers("https://*.example.com"), req: Request{Origin: "https://example.com"}}, ReferrerDenied},
		{evalCase{name: "referrer wildcard leading dot only", rec: referrers("https://*.example.com"), req: Request{Origin: "https://.example.com"}}, ReferrerDenied},
		{evalCase{name: "https on port 80 is not the default", rec: referrers("https://app.example.com:80"), req: Request{Origin: "https://app.example.com"}}, ReferrerDenied},
		{evalCase{name: "http on port 443 is not the default", rec: referrers("http://app.example.com:443"), req: Request{Origin: "http://app.example.com"}}, ReferrerDenied},
		{evalCase{name: "wildcard glued suffix", rec: referrers("https://*.example.com"), req: Request{Origin: "https://badexample.com"}}, ReferrerDenied},
		{evalCase{name: "host suffix", rec: referrers("https://app.example.com"), req: Request{Origin: "https://app.example.com.evil.example"}}, ReferrerDenied},
		{evalCase{name: "no scheme", rec: referrers("https://app.example.com"), req: Request{Origin: "app.example.com"}}, ReferrerDenied},
		{evalCase{name: "unparsable", rec: referrers("https://app.example.com"), req: Request{Origin: "https://app.example.com/%zz"}}, ReferrerDenied},
		{evalCase{name: "other scheme", rec: referrers("https://app.example.com"), req: Request{Origin: "file://app.example.com"}}, ReferrerDenied},
		{evalCase{name: "referrer beats scope", rec: func(r *Record) { referrers("https://a.example")(r); scopes("x")(r) }, req: Request{ScopeList: "y"}}, ReferrerDenied},

		// Scopes.
		{evalCase{name: "required scope missing", rec: scopes("orders:read"), req: Request{RequiredScopes: []string{"orders:write"}}}, ScopeDenied},
		{evalCase{name: "one of two required missing", rec: scopes("orders:read"), req: Request{RequiredScopes: []string{"orders:read", "orders:write"}}}, ScopeDenied},
		{evalCase{name: "required scope, record without scopes", req: Request{RequiredScopes: []string{"orders:read"}}}, ScopeDenied},
		{evalCase{name: "scope list missing one", rec: scopes("orders:read"), req: Request{ScopeList: "orders:read orders:write"}}, ScopeDenied},
		{evalCase{name: "scope list extra spaces missing one", rec: scopes("orders:read"), req: Request{ScopeList: "  orders:read   admin  "}}, ScopeDenied},
		{evalCase{name: "scope list case differs", rec: scopes("orders:read"), req: Request{ScopeList: "Orders:read"}}, ScopeDenied},
		{evalCase{name: "scope list prefix only", rec: scopes("orders:read"), req: Request{ScopeList: "orders"}}, ScopeDenied},
		{evalCase{name: "scope list comma separated", rec: scopes("a", "b"), req: Request{ScopeList: "a,b"}}, ScopeDenied},
		{evalCase{name: "wildcard scope is literal", rec: scopes("orders:*"), req: Request{ScopeList: "orders:read"}}, ScopeDenied},
		{evalCase{name: "required ok, list denied", rec: scopes("a"), req: Request{RequiredScopes: []string{"a"}, ScopeList: "b"}}, ScopeDenied},
		{evalCase{name: "list ok, required denied", rec: scopes("a"), req: Request{RequiredScopes: []string{"b"}, ScopeList: "a"}}, ScopeDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := runEval(t, tc.evalCase); got != tc.want {
				t.Errorf("Evaluate = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvaluateInvalidRecord(t *testing.T) {
	req := &Request{Now: testNow}
	if got := evaluate(nil, req); got != InvalidRecord {
		t.Errorf("nil record: %v, want %v", got, InvalidRecord)
	}
	// A record built in code (or decoded with encoding/json directly) is
	// not validated: deny, even though it looks fine.
	if got := evaluate(baseRecord(), req); got != InvalidRecord {
		t.Errorf("unvalidated record: %v, want %v", got, InvalidRecord)
	}
	if got := evaluate(&Record{}, req); got != InvalidRecord {
		t.Errorf("zero record: %v, want %v", got, InvalidRecord)
	}
	// A status change takes effect once validated (what a store does
	// with every record it returns).
	r := mustRecord(t, nil)
	r.Status = StatusRevoked
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := evaluate(r, req); got != Revoked {
		t.Errorf("revoked: %v, want %v", got, Revoked)
	}
	r.Status = "garbage"
	if err := r.Validate(); err == nil {
		t.Fatal("Validate accepted status \"garbage\"")
	}
	if got := evaluate(r, req); got != InvalidRecord {
		t.Errorf("unknown status: %v, want %v", got, InvalidRecord)
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	tests := []evalCase{
		{name: "scope list", rec: scopes("orders:read", "orders:write"), req: Request{ScopeList: " orders:read  orders:write "}},
		{name: "required scopes", rec: scopes("orders:read"), req: Request{RequiredScopes: []string{"orders:read"}}},
		{name: "host with port, cidr, scope list", rec: func(r *Record) {
			lifetime(r)
			scopes("orders:read")(r)
			hosts("api.example.com")(r)
			cidrs("10.0.0.0/8")(r)
		}, req: Request{Host: "api.example.com:443", SourceIP: mustAddr("::ffff:10.0.0.1"), ScopeList: "orders:read"}},
		// HTTP/2 :authority usually has no port.
		{name: "host without port", rec: func(r *Record) {
			scopes("orders:read")(r)
			hosts("api.example.com")(r)
		}, req: Request{Host: "api.example.com", ScopeList: "orders:read"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := mustRecord(t, tc.rec)
			req := tc.req
			req.Now = testNow
			if got := evaluate(rec, &req); got != Allowed {
				t.Fatalf("Evaluate = %v, want %v", got, Allowed)
			}
			if n := testing.AllocsPerRun(100, func() { evaluate(rec, &req) }); n != 0 {
				t.Errorf("Evaluate allocates %v times per call, want 0", n)
			}
		})
	}
}

// TestEvaluateConcurrent shares one record and one Hasher between
// goroutines, as the cache does; run with -race.
func TestEvaluateConcurrent(t *testing.T) {
	rec := mustRecord(t, everything)
	h := mustHasher(t, AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1}})
	d := h.Hash(fixedKey)
	done := make(chan error)
	for g := range 4 {
		go func() {
			req := &Request{Now: testNow, Host: "api.example.com", SourceIP: mustAddr("10.0.0.1"), Origin: "https://a.example.org", ScopeList: "orders:read"}
			if g%2 == 1 {
				req.ScopeList = "admin"
			}
			for range 500 {
				got := evaluate(rec, req)
				if want := map[bool]Reason{false: Allowed, true: ScopeDenied}[g%2 == 1]; got != want {
					done <- fmt.Errorf("Evaluate = %v, want %v", got, want)
					return
				}
				if ok, err := h.Verify(fixedKey, d); !ok || err != nil {
					done <- fmt.Errorf("Verify = %v, %v", ok, err)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestHasScopes(t *testing.T) {
	have := []string{"a", "b"}
	for _, tt := range []struct {
		need []string
		want bool
	}{
		{nil, true}, {[]string{}, true}, {[]string{"a"}, true}, {[]string{"b", "a"}, true},
		{[]string{"c"}, false}, {[]string{"a", "c"}, false}, {[]string{""}, false}, {[]string{"A"}, false},
	} {
		if got := hasScopes(have, tt.need); got != tt.want {
			t.Errorf("hasScopes(%q) = %v, want %v", tt.need, got, tt.want)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, bc := range []struct {
		name string
		rec  func(*Record)
		req  Request
	}{
		{"scopes only", scopes("orders:read", "orders:write"), Request{ScopeList: "orders:read orders:write"}},
		{"host cidr scopes", func(r *Record) {
			lifetime(r)
			scopes("orders:read", "orders:write")(r)
			hosts("api.example.com", "*.example.net")(r)
			cidrs("10.0.0.0/8", "2001:db8::/32")(r)
		}, Request{Host: "api.example.com:443", SourceIP: mustAddr("10.1.1.1"), ScopeList: "orders:write"}},
		{"everything with origin", everything, Request{
			Host: "api.example.com:443", SourceIP: mustAddr("10.1.1.1"), Origin: "https://x.example.org", ScopeList: "orders:write",
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rec := mustRecord(b, bc.rec)
			req := bc.req
			req.Now = testNow
			b.ReportAllocs()
			for b.Loop() {
				if evaluate(rec, &req) != Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}
