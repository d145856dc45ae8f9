package refpolicy

import "testing"

// The oracle's reading of README's own examples.
func TestHostREADMEExamples(t *testing.T) {
	for in, want := range map[string]string{
		"api.example.com": "api.example.com", "API.Example.com:8443": "api.example.com",
		"[2001:DB8:0::1]:443": "2001:db8::1", "192.0.2.1:80": "192.0.2.1",
	} {
		if got, ok := Host(in); !ok || got != want {
			t.Errorf("Host(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"api.example.com:1.admin.example.com", "a.example.com:abc", "a.example.com:99999", "a.example.com:0443",
		"a.example.com:", "a.example.com.", "a..example.com", "user@host", "a b", "a%2eb", "2001:db8::1",
		"[fe80::1%25eth0]", "127.1", "0x7f.1", "a.0x", "[1.2.3.4]", "", ":80",
	} {
		if got, ok := Host(in); ok {
			t.Errorf("Host(%q) = %q, want refused", in, got)
		}
	}
}

func TestHostMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "aexample.com", false},
		{"*.0.0.1", "10.0.0.1", false},
		{"2001:db8::1", "2001:db8::1", true},
		{"::ffff:10.0.0.1", "10.0.0.1", false},
		{"api.example.com", "api.example.com", true},
	} {
		if got := HostMatches(tc.pattern, tc.host); got != tc.want {
			t.Errorf("HostMatches(%q, %q) = %v", tc.pattern, tc.host, got)
		}
	}
}

func TestRoute(t *testing.T) {
	rules := []Rule{
		{Method: "POST", PathPrefix: "/orders", Scopes: []string{"orders:write"}},
		{PathPrefix: "/orders", Scopes: []string{"orders:read"}},
		{Method: "GET", PathPrefix: "/orders", Scopes: []string{"shadowed"}},
		{Host: "*.internal.example.com", PathPrefix: "/metrics/"},
	}
	for _, tc := range []struct {
		host, method, path string
		rule               int
		reason             string
	}{
		{"api.example.com", "HEAD", "/orders/1", 1, Allowed},
		{"api.example.com", "POST", "/orders", 0, Allowed},
		{"api.example.com", "GET", "/ordersx", -1, Allowed},
		{"api.example.com", "GET", "/orders;x", 1, Allowed},
		{"a.internal.example.com:9", "GET", "/metrics/x", 3, Allowed},
		{"a.internal.example.com:9", "get", "/metrics/x", -1, InvalidMethod},
		{"a.internal.example.com:", "GET", "/metrics/x", -1, InvalidHost},
	} {
		rule, reason := Route(rules, tc.host, tc.method, tc.path)
		if rule != tc.rule || reason != tc.reason {
			t.Errorf("Route(%s %s %s) = %d, %s; want %d, %s", tc.method, tc.host, tc.path, rule, reason, tc.rule, tc.reason)
		}
	}
}
