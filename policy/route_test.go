package policy

import (
	"slices"
	"testing"
)

const routesJSON = `{"routes": [
  {"method": "POST", "path_prefix": "/orders", "scopes": ["orders:write"]},
  {"path_prefix": "/orders", "scopes": ["orders:read"]},
  {"path_prefix": "/orders/export/", "scopes": ["orders:export"]},
  {"host": "admin.example.com", "path_prefix": "/", "scopes": ["admin"]},
  {"host": "*.internal.example.com", "path_prefix": "/metrics", "scopes": ["metrics"]},
  {"host": "*", "path_prefix": "/", "scopes": []},
  {"host": "*", "path_prefix": "/ordersx", "scopes": ["x"]},
  {"method": "GET", "path_prefix": "/orders", "scopes": ["shadowed"]},
  {"host": "api.example.com", "method": "DELETE", "path_prefix": "/orders/", "scopes": ["orders:delete"]}
]}`

func mustRoutes(t testing.TB, data string) *Routes {
	t.Helper()
	r, err := ParseRoutes([]byte(data))
	if err != nil {
		t.Fatalf("ParseRoutes: %v", err)
	}
	return r
}

func TestParseRoutesAllow(t *testing.T) {
	r := mustRoutes(t, routesJSON)
	if len(r.Rules) != 9 {
		t.Fatalf("got %d rules, want 9", len(r.Rules))
	}
	if got := r.Rules[4]; got.Host != "*.internal.example.com" || !got.host.wildcard || got.host.name != "internal.example.com" {
		t.Errorf("wildcard rule parsed as %+v", got)
	}
	if got := r.Rules[5]; got.host.name != "" {
		t.Errorf(`host "*" parsed as %+v, want any host`, got.host)
	}
	for _, data := range []string{
		`{"routes": []}`,
		`{"routes": null}`,
		`{}`,
		`{"routes": [{"path_prefix": "/"}]}`,
		`{"routes": [{"path_prefix": "/", "scopes": null}]}`,
		`{"routes": [{"host": "", "method": "", "path_prefix": "/a/b/", "scopes": ["a:b.c_d/e*f-g"]}]}`,
		`{"routes": [{"method": "M-SEARCH", "path_prefix": "/"}]}`,
		`{"routes": [{"host": "10.0.0.1", "path_prefix": "/"}]}`,
		"{\"routes\": [{\"path_prefix\": \"/\"}]}\n\t ",
	} {
		t.Run(data, func(t *testing.T) { mustRoutes(t, data) })
	}
}

func TestParseRoutesDeny(t *testing.T) {
	rule := func(fields string) string { return `{"routes": [{"path_prefix": "/ok"}, {` + fields + `}]}` }
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"unknown top-level field", `{"rules": []}`, []string{`"rules"`, "unknown field"}},
		{"unknown rule field", rule(`"path": "/x"`), []string{`routes[1].path"`, "unknown field"}},
		{"routes as object", `{"routes": {}}`, []string{`"routes"`}},
		{"scopes as string", rule(`"path_prefix": "/x", "scopes": "a"`), []string{"scopes"}},
		{"path_prefix as number", rule(`"path_prefix": 1`), []string{"path_prefix"}},
		{"empty input", ``, []string{"routes"}},
		{"not JSON", `routes: []`, []string{"routes"}},
		{"trailing data", `{"routes": []} {}`, []string{"trailing data"}},
		{"host upper case", rule(`"host": "API.example.com", "path_prefix": "/x"`), []string{"routes[1].host"}},
		{"host with port", rule(`"host": "api.example.com:443", "path_prefix": "/x"`), []string{"routes[1].host"}},
		{"host double wildcard", rule(`"host": "*.*.example.com", "path_prefix": "/x"`), []string{"routes[1].host"}},
		{"host URL", rule(`"host": "https://api.example.com", "path_prefix": "/x"`), []string{"routes[1].host"}},
		{"host star suffix", rule(`"host": "*example.com", "path_prefix": "/x"`), []string{"routes[1].host"}},
		{"lower-case method", rule(`"method": "get", "path_prefix": "/x"`), []string{"routes[1].method", `"get"`}},
		{"mixed-case method", rule(`"method": "Get", "path_prefix": "/x"`), []string{"routes[1].method"}},
		{"method with space", rule(`"method": "GE T", "path_prefix": "/x"`), []string{"routes[1].method"}},
		{"method with newline", rule(`"method": "GET\n", "path_prefix": "/x"`), []string{"routes[1].method"}},
		{"method list", rule(`"method": "GET,POST", "path_prefix": "/x"`), []string{"routes[1].method"}},
		{"missing path_prefix", rule(`"scopes": ["a"]`), []string{"routes[1].path_prefix"}},
		{"relative path_prefix", rule(`"path_prefix": "orders"`), []string{"routes[1].path_prefix"}},
		{"double slash", rule(`"path_prefix": "/orders//x"`), []string{"routes[1].path_prefix"}},
		{"dot segment", rule(`"path_prefix": "/a/./b"`), []string{"routes[1].path_prefix"}},
		{"dot-dot segment", rule(`"path_prefix": "/a/../b"`), []string{"routes[1].path_prefix"}},
		{"encoded slash", rule(`"path_prefix": "/a%2Fb"`), []string{"routes[1].path_prefix"}},
		{"encoded dot", rule(`"path_prefix": "/%2e%2e/admin"`), []string{"routes[1].path_prefix"}},
		{"backslash", rule(`"path_prefix": "/a\\b"`), []string{"routes[1].path_prefix"}},
		{"empty scope", rule(`"path_prefix": "/x", "scopes": ["a", ""]`), []string{"routes[1].scopes[1]"}},
		{"scope with space", rule(`"path_prefix": "/x", "scopes": ["a b"]`), []string{"routes[1].scopes[0]"}},
		{
			"every problem at once",
			`{"routes": [{"host": "A", "method": "get", "path_prefix": "x", "scopes": [""]}, {"path_prefix": "//"}]}`,
			[]string{"routes[0].host", "routes[0].method", "routes[0].path_prefix", "routes[0].scopes[0]", "routes[1].path_prefix"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRoutes([]byte(tt.in))
			if r != nil {
				t.Error("ParseRoutes returned routes with an error")
			}
			wantErrContaining(t, err, tt.want...)
		})
	}
}

func TestRoutesMatch(t *testing.T) {
	r := mustRoutes(t, routesJSON)
	tests := []struct {
		name, host, method, path string
		want                     []string
	}{
		{"tie goes to the first rule", "api.example.com", "GET", "/orders", []string{"orders:read"}},
		{"method-specific rule first", "api.example.com", "POST", "/orders", []string{"orders:write"}},
		{"HEAD gets a GET rule", "api.example.com", "HEAD", "/ordersx", []string{"x"}},
		{"segment below prefix", "api.example.com", "GET", "/orders/1", []string{"orders:read"}},
		{"deep segment below prefix", "api.example.com", "GET", "/orders/1/items/2", []string{"orders:read"}},
		{"prefix is not a segment boundary", "api.example.com", "GET", "/ordersx", []string{"x"}},
		{"longer name than any rule", "api.example.com", "GET", "/ordersxy", []string{}},
		{"below /ordersx", "api.example.com", "GET", "/ordersx/1", []string{"x"}},
		{"trailing slash prefix needs the slash", "api.example.com", "GET", "/orders/export", []string{"orders:read"}},
		{"trailing slash prefix", "api.example.com", "GET", "/orders/export/", []string{"orders:export"}},
		{"below trailing slash prefix", "api.example.com", "GET", "/orders/export/all.csv", []string{"orders:export"}},
		{"orders with trailing slash", "api.example.com", "GET", "/orders/", []string{"orders:read"}},
		{"host and method rule", "api.example.com", "DELETE", "/orders/1", []string{"orders:delete"}},
		{"host and method rule, port", "api.example.com:443", "DELETE", "/orders/1", []string{"orders:delete"}},
		{"host rule, upper-case host", "API.Example.COM", "DELETE", "/orders/1", []string{"orders:delete"}},
		{"host and method rule, other host", "www.example.com", "DELETE", "/orders/1", []string{"orders:read"}},
		{"longest prefix beats host", "admin.example.com", "GET", "/orders", []string{"orders:read"}},
		{"host rule on tie with any-host rule", "admin.example.com", "GET", "/settings", []string{"admin"}},
		{"host rule with port and case", "ADMIN.Example.com:8443", "GET", "/settings", []string{"admin"}},
		{"other host falls to any-host", "user.example.com", "GET", "/settings", []string{}},
		{"wildcard host", "a.internal.example.com", "GET", "/metrics", []string{"metrics"}},
		{"wildcard host deep", "a.b.internal.example.com:9090", "GET", "/metrics/x", []string{"metrics"}},
		{"wildcard excludes bare domain", "internal.example.com", "GET", "/metrics", []string{}},
		{"wildcard excludes glued", "xinternal.example.com", "GET", "/metrics", []string{}},
		{"wildcard host, not a segment", "a.internal.example.com", "GET", "/metricsx", []string{}},
		{"IPv6 literal", "[::1]:8080", "GET", "/", []string{}},
		{"custom upper-case method", "api.example.com", "PURGE", "/orders", []string{"orders:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := r.Match(tt.host, tt.method, tt.path)
			if reason != Allowed || !slices.Equal(got, tt.want) {
				t.Errorf("Match(%q, %q, %q) = %q, %v; want %q, allowed", tt.host, tt.method, tt.path, got, reason, tt.want)
			}
		})
	}
}

// TestRoutesMatchRefuses: with rules naming hosts and methods, a host or
// method a router could read differently is refused, never matched after
// cutting at a colon or by guessing the case.
func TestRoutesMatchRefuses(t *testing.T) {
	r := mustRoutes(t, routesJSON)
	for _, tt := range []struct {
		host, method string
		want         Reason
	}{
		{"admin.example.com.", "GET", InvalidHost},
		{"admin.example.com:1.api.example.com", "GET", InvalidHost},
		{"api.example.com:abc", "GET", InvalidHost},
		{"api.example.com:", "GET", InvalidHost},
		{"api.example.com:99999", "GET", InvalidHost},
		{"user@admin.example.com", "GET", InvalidHost},
		{"", "GET", InvalidHost},
		{"api.example.com", "post", InvalidMethod},
		{"api.example.com", "Post", InvalidMethod},
		{"api.example.com", "", InvalidMethod},
		{"api.example.com", "GET /", InvalidMethod},
	} {
		if got, reason := r.Match(tt.host, tt.method, "/orders"); reason != tt.want || got != nil {
			t.Errorf("Match(%q, %q) = %q, %v; want %v", tt.host, tt.method, got, reason, tt.want)
		}
	}
	// Without host or method rules, neither is read.
	lax := mustRoutes(t, `{"routes": [{"path_prefix": "/orders", "scopes": ["a"]}]}`)
	if got, reason := lax.Match("x:y:z", "get", "/orders"); reason != Allowed || !slices.Equal(got, []string{"a"}) {
		t.Errorf("path-only rules: Match = %q, %v; want [a], allowed", got, reason)
	}
}

func TestRoutesNoMatch(t *testing.T) {
	r := mustRoutes(t, `{"routes": [
	  {"host": "api.example.com", "path_prefix": "/orders", "scopes": ["a"]},
	  {"method": "GET", "path_prefix": "/public/", "scopes": []},
	  {"method": "POST", "path_prefix": "/submit", "scopes": ["w"]}
	]}`)
	for _, tt := range []struct{ host, method, path string }{
		{"api.example.com", "GET", "/"},
		{"api.example.com", "GET", "/ordersx"},
		{"api.example.com", "GET", "/order"},
		{"other.example.com", "GET", "/orders"},
		{"api.example.com.evil", "GET", "/orders"},
		{"x", "POST", "/public/x"},
		{"x", "GET", "/public"},
		{"x", "GET", ""},
		{"x", "GET", "orders"},
		{"x", "HEAD", "/submit"}, // only a GET rule covers HEAD
		{"x", "GET", "/submit"},
	} {
		if i, reason := r.rule(tt.host, tt.method, tt.path); i >= 0 || reason != Allowed {
			t.Errorf("rule(%q, %q, %q) = %d, %v; want no match", tt.host, tt.method, tt.path, i, reason)
		}
	}
	var empty Routes
	if i, _ := empty.rule("x", "GET", "/"); i >= 0 {
		t.Error("empty Routes matched")
	}
}

func TestCanonicalPathAllow(t *testing.T) {
	for _, p := range []string{
		"/", "/orders", "/orders/", "/orders/1", "/a/b/c", "/..a", "/a..", "/...", "/.well-known/x", "/a/b.c",
		"/a.", "/.a", "/a%20b", "/%25", "/a:b", "/~user",
		// Escapes of reserved and other characters stay as Envoy leaves
		// them, in either case of hex digit: ':' '?' ')' 'é' and a tab.
		"/a%3ab", "/a%3Ab", "/a%3f", "/a%3F", "/a%29", "/caf%C3%A9", "/caf%c3%a9", "/a%AF%af%Fa%fA", "/a%09",
		"/a%20%3A%20b",
	} {
		if !CanonicalPath(p) {
			t.Errorf("CanonicalPath(%q) = false, want true", p)
		}
	}
}

func TestCanonicalPathDeny(t *testing.T) {
	for _, p := range []string{
		"", "orders", "./orders", "../x", "*", "http://x/", "\\", "\\a",
		"//", "//orders", "/a//b", "/orders//", "///",
		"/.", "/./", "/a/.", "/a/./b", "/..", "/../", "/../a", "/a/..", "/a/../b", "/a/b/..",
		"/%2F", "/%2f", "/a%2Fb", "/%2e", "/%2E", "/%2e%2e/admin", "/a/%2E%2e", "/a.%2e", "/%5C", "/a%5cb",
		"/a\\b", "/a\\..\\b", "/a/\\",
		// path parameters: "/admin;x/users" is "/admin/users" to many servers
		"/a;b", "/admin;x/users", "/admin;",
		// Envoy's normalize_path decodes percent-encoded unreserved
		// characters, so they never appear in a normalised path, and a
		// backend that decodes them sees /admin.
		"/%61dmin", "/adm%69n", "/%41", "/a%2Db", "/a%5Fb", "/%7Euser", "/v%31",
		"/%7A", "/%5A", "/%5a", "/%30", "/%39", "/%20%61dmin", "/a%20%2F",
		// Not an escape: truncated, or not hex.
		"/a%", "/a%4", "/a%4/", "/a%g1", "/a%1g", "/a%zz", "/a%%41",
	} {
		if CanonicalPath(p) {
			t.Errorf("CanonicalPath(%q) = true, want false", p)
		}
	}
}

func TestCanonicalPathBlocksDodges(t *testing.T) {
	r := mustRoutes(t, `{"routes": [{"path_prefix": "/admin", "scopes": ["admin"]}, {"path_prefix": "/", "scopes": []}]}`)
	for _, p := range []string{"/public/../admin", "//admin", "/./admin", "/%2e/admin", "/admin%2F..%2Fx", "/%61dmin"} {
		if scopes, _ := r.Match("", "GET", p); len(scopes) == 0 && CanonicalPath(p) {
			t.Errorf("%q dodges the /admin rule and CanonicalPath accepts it", p)
		}
	}
}

func BenchmarkRoutesMatch(b *testing.B) {
	r := mustRoutes(b, routesJSON)
	b.ReportAllocs()
	for b.Loop() {
		if scopes, _ := r.Match("api.example.com:443", "GET", "/orders/export/all.csv"); len(scopes) == 0 {
			b.Fatal("no match")
		}
	}
}
