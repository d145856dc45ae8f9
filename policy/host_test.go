package policy

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/refpolicy"
)

func TestParseHostAccepts(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"api.example.com", "api.example.com"},
		{"API.Example.COM", "api.example.com"},
		{"api.example.com:443", "api.example.com"},
		{"api.example.com:1", "api.example.com"},
		{"api.example.com:65535", "api.example.com"},
		{"localhost", "localhost"},
		{"my_host-1.example", "my_host-1.example"},
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:8080", "192.0.2.1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:DB8:0:0::1]:443", "2001:db8::1"},
		{"[::ffff:192.0.2.1]", "::ffff:192.0.2.1"},
		{"3com.example", "3com.example"},
		{"example.3com", "example.3com"},
		{"example.1e3", "example.1e3"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
		{strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 126) + "a"}, // 253, the longest name
		// Letters at the ends of the ranges, and names whose only upper-case
		// letter is 'A' or 'Z' or that have nothing but upper-case letters.
		{"zulu.example.com", "zulu.example.com"},
		{"Zulu.example.com", "zulu.example.com"},
		{"Alpha.example.com", "alpha.example.com"},
		{"LOCALHOST", "localhost"},
		{"LOCALHOST:8080", "localhost"},
		{"example.0g", "example.0g"}, // "0g" is not a number: not hex without 0x
		{"example.x1f", "example.x1f"},
	} {
		got, ok := ParseHost(tt.in)
		if !ok || got != tt.want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestParseHostRefuses(t *testing.T) {
	for _, in := range []string{
		"", ":443", "api.example.com:", "api.example.com:abc", "api.example.com:1.admin.example.com",
		"api.example.com:0", "api.example.com:65536", "api.example.com:99999", "api.example.com:0443",
		"api.example.com:+443", "api.example.com:-1", "api.example.com: 443", "api.example.com:443:443",
		"api.example.com.", "api.example.com.:443", ".api.example.com", "api..example.com", ".",
		"user@api.example.com", "user:pass@api.example.com", "api.example.com@evil.com",
		"api example.com", " api.example.com", "api.example.com ", "api.example.com\t",
		"api%2eexample.com", "api.example.com/x", "api.example.com?x", "api.example.com#x", "api.example.com\\x",
		"ap\x00i.example.com", "api.example.com\r\n", "äpi.example.com", "*.example.com",
		"2001:db8::1", "[2001:db8::1", "2001:db8::1]", "[2001:db8::1]x", "[2001:db8::1]:", "[2001:db8::1]:abc",
		"[fe80::1%25eth0]", "[fe80::1%eth0]", "[192.0.2.1]", "[]", "[v1.x]",
		"127.1", "0x7f.0.0.1", "192.0.2.01", "192.0.2.1.5", "1.2.3.0x4", "example.0x", "256.0.0.1",
		strings.Repeat("a", 64) + ".example", strings.Repeat("a.", 127) + "ab", strings.Repeat("a.", 126) + "ab",
		"example.0X1F", "example.0x1f", "example.0X", "example.99", // numeric last labels that are not IPv4
	} {
		if got, ok := ParseHost(in); ok {
			t.Errorf("ParseHost(%q) = %q, true; want refused", in, got)
		}
	}
}

// hostSeeds are FuzzParseHost's seeds.
var hostSeeds = []string{
	"api.example.com", "API.example.com:443", "[::1]:80", "[fe80::1%25x]", "a:b:c", "127.1", "0x7f.1",
	"api.example.com:1.admin.example.com", "a.", "u@h", "h:0443", "1.2.3.4", "[::ffff:1.2.3.4]",
}

// FuzzParseHost: ParseHost reads exactly what README's "Host" rules
// (refpolicy.Host) say; whatever it accepts, Go's own host:port splitting
// reads the same host, the port (if any) is 1-65535, and the result is a
// lower-case name of host characters or a canonical IP literal.
func FuzzParseHost(f *testing.F) {
	for _, s := range hostSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) { hostDecision(t, in) })
}

// hostDecision checks FuzzParseHost's properties on in; its class is
// "valid" or invalid_host.
func hostDecision(t *testing.T, in string) string {
	host, ok := ParseHost(in)
	if want, wantOK := refpolicy.Host(in); host != want || ok != wantOK {
		t.Fatalf("ParseHost(%q) = %q, %v; README says %q, %v", in, host, ok, want, wantOK)
	}
	if !ok {
		return InvalidHost.String()
	}
	gotHost, port := in, ""
	if h, p, err := net.SplitHostPort(in); err == nil {
		gotHost, port = h, p
	} else if strings.HasPrefix(in, "[") {
		gotHost = strings.Trim(in, "[]")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			t.Fatalf("ParseHost(%q) accepted port %q", in, port)
		}
	}
	if a, err := netip.ParseAddr(gotHost); err == nil {
		if a.String() != host || a.Zone() != "" {
			t.Fatalf("ParseHost(%q) = %q; the address is %v", in, host, a)
		}
		return "valid"
	}
	if host != strings.ToLower(gotHost) || strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789.-_") != "" ||
		strings.HasSuffix(host, ".") || strings.Contains(host, "..") {
		t.Fatalf("ParseHost(%q) = %q, which is not a plain host name", in, host)
	}
	return "valid"
}
