package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestRecordValidateAllow(t *testing.T) {
	headers32 := make(map[string]string)
	for i := range maxHeaders {
		headers32[fmt.Sprintf("x-h%d", i)] = "v"
	}
	metadata64 := make(map[string]string)
	for i := range 64 {
		metadata64[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name   string
		mutate func(*Record)
	}{
		{"minimal", nil},
		{"revoked", func(r *Record) { r.Status = StatusRevoked }},
		{"hmac hash", func(r *Record) { r.Hash = "hmac-sha256:v3:" + hex64 }},
		{"upper-case hex", func(r *Record) { r.Hash = "sha256:" + hex64Upper }},
		{"tenant of 128 bytes", func(r *Record) { r.Tenant = strings.Repeat("t", 128) }},
		{"tenant with space and punctuation", func(r *Record) { r.Tenant = "Acme Corp (EU) #1" }},
		{"name of 256 bytes", func(r *Record) { r.Name = strings.Repeat("n", 256) }},
		{"name with UTF-8", func(r *Record) { r.Name = "Zürich ключ 鍵" }},
		{"not_before only", func(r *Record) { r.NotBefore = "2026-01-01T00:00:00Z" }},
		{"expires_at only", func(r *Record) { r.ExpiresAt = "2026-01-01T00:00:00Z" }},
		{"offsets and fractions", func(r *Record) {
			r.NotBefore = "2026-01-01T00:00:00.5+02:00"
			r.ExpiresAt = "2026-01-01T00:00:00.6+02:00"
		}},
		{"created and updated", func(r *Record) { r.CreatedAt, r.UpdatedAt = "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z" }},
		{"rotated_to id", func(r *Record) { r.RotatedTo = "AbCdEf012345" }},
		{"scope alphabet edges", func(r *Record) { r.Scopes = []string{"AZ:az09", "Z", "A", "z"} }},
		{"scope punctuation", func(r *Record) { r.Scopes = []string{"a:b.c_d/e*f-g", "*", strings.Repeat("s", 128)} }},
		{"256 scopes", func(r *Record) {
			for i := range maxScopes {
				r.Scopes = append(r.Scopes, fmt.Sprint("s", i))
			}
		}},
		{"cidrs", func(r *Record) {
			r.AllowedCIDRs = []string{"10.0.0.0/8", "0.0.0.0/0", "::/0", "2001:db8::/32", "192.0.2.7/32", "2001:db8::1/128"}
		}},
		{"single addresses", func(r *Record) { r.AllowedCIDRs = []string{"192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1"} }},
		{"hosts", func(r *Record) {
			r.AllowedHosts = []string{"api.example.com", "*.example.com", "localhost", "10.0.0.1", "2001:db8::1", "under_score.example", "xn--bcher-kva.example"}
		}},
		{"referrers", func(r *Record) {
			r.AllowedReferrers = []string{"https://app.example.com", "http://localhost:3000", "https://*.example.com", "https://[2001:db8::1]:8443", "https://10.0.0.1"}
		}},
		{"headers", func(r *Record) {
			r.Headers = map[string]string{"x-plan": "gold", "x-tab": "a\tb", "x-empty": "", "x-max": strings.Repeat("v", maxHeaderValueLen), "x-printable": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}
		}},
		{"32 headers", func(r *Record) { r.Headers = headers32 }},
		{"header name of 128", func(r *Record) { r.Headers = map[string]string{strings.Repeat("x", 128): "v"} }},
		{"header names at the token alphabet's edges", func(r *Record) {
			r.Headers = map[string]string{"a-z_0.9": "v", "!x": "v", "x~|`^": "v", "#$%&'*+": "v"}
		}},
		{"metadata", func(r *Record) { r.Metadata = map[string]string{"ticket": "OPS-1", "free form": "any\nthing \x00"} }},
		{"64 metadata entries", func(r *Record) { r.Metadata = metadata64 }},
		{"metadata key of 128", func(r *Record) { r.Metadata = map[string]string{strings.Repeat("k", 128): "v"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := baseRecord()
			if tt.mutate != nil {
				tt.mutate(r)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if r.c == nil {
				t.Fatal("Validate succeeded but did not mark the record usable")
			}
		})
	}
}

// TestRecordValidateDeny checks every validation rule: each case breaks one
// thing, and the error must name the field.
func TestRecordValidateDeny(t *testing.T) {
	headers33 := make(map[string]string)
	for i := range maxHeaders + 1 {
		headers33[fmt.Sprintf("x-h%d", i)] = "v"
	}
	metadata65 := make(map[string]string)
	for i := range 65 {
		metadata65[fmt.Sprint("k", i)] = "v"
	}
	hdr := func(name, value string) func(*Record) {
		return func(r *Record) { r.Headers = map[string]string{name: value} }
	}
	cidr := func(s string) func(*Record) { return func(r *Record) { r.AllowedCIDRs = []string{"10.0.0.0/8", s} } }
	host := func(s string) func(*Record) { return func(r *Record) { r.AllowedHosts = []string{s} } }
	ref := func(s string) func(*Record) { return func(r *Record) { r.AllowedReferrers = []string{s} } }

	tests := []struct {
		name   string
		mutate func(*Record)
		want   string // the field the error must name
	}{
		{"missing hash", func(r *Record) { r.Hash = "" }, `"hash"`},
		{"bad hash alg", func(r *Record) { r.Hash = "md5:" + hex64 }, `"hash"`},
		{"bad hash hex", func(r *Record) { r.Hash = "sha256:" + strings.Repeat("g", 64) }, `"hash"`},
		{"missing tenant", func(r *Record) { r.Tenant = "" }, `"tenant"`},
		{"tenant too long", func(r *Record) { r.Tenant = strings.Repeat("t", 129) }, `"tenant"`},
		{"tenant with CRLF", func(r *Record) { r.Tenant = "acme\r\nx-keygate-tenant: evil" }, `"tenant"`},
		{"tenant with NUL", func(r *Record) { r.Tenant = "acme\x00" }, `"tenant"`},
		{"tenant not ASCII", func(r *Record) { r.Tenant = "acmé" }, `"tenant"`},
		{"tenant with DEL", func(r *Record) { r.Tenant = "acme\x7f" }, `"tenant"`},
		{"name too long", func(r *Record) { r.Name = strings.Repeat("n", 257) }, `"name"`},
		{"name with LF", func(r *Record) { r.Name = "a\nb" }, `"name"`},
		{"owner with ESC", func(r *Record) { r.Owner = "\x1b[31m" }, `"owner"`},
		{"owner too long", func(r *Record) { r.Owner = strings.Repeat("o", 257) }, `"owner"`},
		{"missing status", func(r *Record) { r.Status = "" }, `"status"`},
		{"upper-case status", func(r *Record) { r.Status = "Active" }, `"status"`},
		{"unknown status", func(r *Record) { r.Status = "disabled" }, `"status"`},
		{"status with space", func(r *Record) { r.Status = "active " }, `"status"`},
		{"not_before words", func(r *Record) { r.NotBefore = "yesterday" }, `"not_before"`},
		{"not_before date only", func(r *Record) { r.NotBefore = "2026-01-01" }, `"not_before"`},
		{"not_before no zone", func(r *Record) { r.NotBefore = "2026-01-01T00:00:00" }, `"not_before"`},
		{"expires_at month 13", func(r *Record) { r.ExpiresAt = "2026-13-01T00:00:00Z" }, `"expires_at"`},
		{"expires_at unix seconds", func(r *Record) { r.ExpiresAt = "1767225600" }, `"expires_at"`},
		{"expires_at RFC 1123", func(r *Record) { r.ExpiresAt = "Thu, 01 Jan 2026 00:00:00 GMT" }, `"expires_at"`},
		// The zero instant reads as "no bound" inside policy: an expires_at
		// there made a key that never expires (found by FuzzParseRecord's
		// exact lifetime oracle).
		{"expires_at the zero instant", func(r *Record) { r.ExpiresAt = "0001-01-01T00:00:00Z" }, `"expires_at"`},
		{"expires_at the zero instant elsewhere", func(r *Record) { r.ExpiresAt = "0001-01-01T01:00:00+01:00" }, `"expires_at"`},
		{"not_before the zero instant", func(r *Record) { r.NotBefore = "0001-01-01T00:00:00Z" }, `"not_before"`},
		{"created_at bad", func(r *Record) { r.CreatedAt = "now" }, `"created_at"`},
		{"updated_at bad", func(r *Record) { r.UpdatedAt = "2026-02-30T00:00:00Z" }, `"updated_at"`},
		{"expires before not_before", func(r *Record) {
			r.NotBefore, r.ExpiresAt = "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"
		}, `"expires_at"`},
		{"expires equal to not_before", func(r *Record) {
			r.NotBefore, r.ExpiresAt = "2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00Z"
		}, `"expires_at"`},
		{"rotated_to short", func(r *Record) { r.RotatedTo = "abc" }, `"rotated_to"`},
		{"rotated_to path", func(r *Record) { r.RotatedTo = "../../admin1" }, `"rotated_to"`},
		{"empty scope", func(r *Record) { r.Scopes = []string{"read", ""} }, `"scopes[1]"`},
		{"scope with space", func(r *Record) { r.Scopes = []string{"read write"} }, `"scopes[0]"`},
		{"scope with comma", func(r *Record) { r.Scopes = []string{"read,write"} }, `"scopes[0]"`},
		{"scope too long", func(r *Record) { r.Scopes = []string{strings.Repeat("s", 129)} }, `"scopes[0]"`},
		{"257 scopes", func(r *Record) { r.Scopes = slices.Repeat([]string{"s"}, maxScopes+1) }, `"scopes"`},
		{"cidr /33", cidr("10.0.0.0/33"), `"allowed_cidrs[1]"`},
		{"cidr /129", cidr("2001:db8::/129"), `"allowed_cidrs[1]"`},
		{"cidr negative", cidr("10.0.0.0/-1"), `"allowed_cidrs[1]"`},
		{"cidr host bits", cidr("10.0.0.1/8"), `"allowed_cidrs[1]"`},
		{"cidr v6 host bits", cidr("2001:db8::1/32"), `"allowed_cidrs[1]"`},
		{"cidr IPv4-mapped", cidr("::ffff:10.0.0.0/104"), `"allowed_cidrs[1]"`},
		{"cidr with zone", cidr("fe80::1%eth0"), `"allowed_cidrs[1]"`},
		{"cidr prefix with zone", cidr("fe80::%eth0/64"), `"allowed_cidrs[1]"`},
		{"cidr words", cidr("office"), `"allowed_cidrs[1]"`},
		{"cidr empty", cidr(""), `"allowed_cidrs[1]"`},
		{"cidr with port", cidr("10.0.0.1:80"), `"allowed_cidrs[1]"`},
		{"cidr leading zeros", cidr("010.0.0.0/8"), `"allowed_cidrs[1]"`},
		{"host upper case", host("API.example.com"), `"allowed_hosts[0]"`},
		{"host with port", host("api.example.com:443"), `"allowed_hosts[0]"`},
		{"host star", host("*"), `"allowed_hosts[0]"`},
		{"host double wildcard", host("*.*.example.com"), `"allowed_hosts[0]"`},
		{"host inner wildcard", host("api.*.example.com"), `"allowed_hosts[0]"`},
		{"host suffix wildcard", host("*example.com"), `"allowed_hosts[0]"`},
		{"host URL", host("https://api.example.com"), `"allowed_hosts[0]"`},
		{"host empty", host(""), `"allowed_hosts[0]"`},
		{"host empty label", host("api..example.com"), `"allowed_hosts[0]"`},
		{"host trailing dot", host("api.example.com."), `"allowed_hosts[0]"`},
		{"host label of 64", host(strings.Repeat("a", 64) + ".com"), `"allowed_hosts[0]"`},
		{"host of 254", host(strings.Repeat("a.", 126) + "ab"), `"allowed_hosts[0]"`},
		{"host with space", host("api example.com"), `"allowed_hosts[0]"`},
		// IP literals: stored as written, so these could never match the
		// lower-cased, unbracketed host Evaluate compares with.
		{"host upper-case IPv6", host("2001:DB8::1"), `"allowed_hosts[0]"`},
		{"host IPv6 with zone", host("fe80::1%eth0"), `"allowed_hosts[0]"`},
		{"host bracketed IPv4", host("[192.0.2.1]"), `"allowed_hosts[0]"`},
		{"host half bracket", host("[2001:db8::1"), `"allowed_hosts[0]"`},
		{"referrer without scheme", ref("app.example.com"), `"allowed_referrers[0]"`},
		{"referrer ftp", ref("ftp://app.example.com"), `"allowed_referrers[0]"`},
		{"referrer upper-case scheme", ref("HTTPS://app.example.com"), `"allowed_referrers[0]"`},
		{"referrer trailing slash", ref("https://app.example.com/"), `"allowed_referrers[0]"`},
		{"referrer path", ref("https://app.example.com/login"), `"allowed_referrers[0]"`},
		{"referrer query", ref("https://app.example.com?x=1"), `"allowed_referrers[0]"`},
		{"referrer fragment", ref("https://app.example.com#x"), `"allowed_referrers[0]"`},
		{"referrer userinfo", ref("https://user@app.example.com"), `"allowed_referrers[0]"`},
		{"referrer upper-case host", ref("https://APP.example.com"), `"allowed_referrers[0]"`},
		{"referrer empty host", ref("https://"), `"allowed_referrers[0]"`},
		{"referrer null", ref("null"), `"allowed_referrers[0]"`},
		{"referrer star", ref("https://*"), `"allowed_referrers[0]"`},
		{"referrer port not numeric", ref("https://app.example.com:abc"), `"allowed_referrers[0]"`},
		{"referrer port out of range", ref("https://app.example.com:99999"), `"allowed_referrers[0]"`},
		{"referrer port 0", ref("https://app.example.com:0"), `"allowed_referrers[0]": "https://app.example.com:0": port "0"`},
		{"referrer port 65536", ref("https://app.example.com:65536"), `"allowed_referrers[0]": "https://app.example.com:65536": port "65536"`},
		{"referrer port without host", ref("https://:8080"), `"allowed_referrers[0]": "https://:8080": host "" is not`},
		{"header :path", hdr(":path", "/admin"), `"headers.:path"`},
		{"header :authority", hdr(":authority", "evil"), `"headers.:authority"`},
		{"header host", hdr("host", "evil.example.com"), `"headers.host"`},
		{"header x-envoy-foo", hdr("x-envoy-foo", "1"), `"headers.x-envoy-foo"`},
		{"header x-envoy-original-path", hdr("x-envoy-original-path", "/"), `"headers.x-envoy-original-path"`},
		{"header x-keygate-tenant", hdr("x-keygate-tenant", "other"), `"headers.x-keygate-tenant"`},
		{"header x-keygate-key-id", hdr("x-keygate-key-id", "x"), `"headers.x-keygate-key-id"`},
		{"header authorization", hdr("authorization", "Bearer x"), `"headers.authorization"`},
		{"header proxy-authorization", hdr("proxy-authorization", "x"), `"headers.proxy-authorization"`},
		{"header x-api-key", hdr("x-api-key", "x"), `"headers.x-api-key"`},
		{"header cookie", hdr("cookie", "a=b"), `"headers.cookie"`},
		{"header transfer-encoding", hdr("transfer-encoding", "chunked"), `"headers.transfer-encoding"`},
		{"header content-length", hdr("content-length", "0"), `"headers.content-length"`},
		{"header connection", hdr("connection", "close"), `"headers.connection"`},
		{"header upper case", hdr("X-Plan", "gold"), `"headers.X-Plan"`},
		{"header upper-case reserved", hdr("X-Keygate-Tenant", "x"), `"headers.X-Keygate-Tenant"`},
		{"header with space", hdr("x plan", "gold"), `"headers.x plan"`},
		{"header with colon", hdr("x-plan:", "gold"), `"headers.x-plan:"`},
		{"header empty name", hdr("", "gold"), `"headers."`},
		{"header name of 129", hdr(strings.Repeat("x", 129), "v"), `"headers.xxx`},
		{"header value CRLF", hdr("x-plan", "gold\r\nx-keygate-tenant: evil"), `"headers.x-plan"`},
		{"header value LF", hdr("x-plan", "gold\n"), `"headers.x-plan"`},
		{"header value CR", hdr("x-plan", "gold\r"), `"headers.x-plan"`},
		{"header value NUL", hdr("x-plan", "gold\x00"), `"headers.x-plan"`},
		{"header value DEL", hdr("x-plan", "gold\x7f"), `"headers.x-plan"`},
		{"header value UTF-8", hdr("x-plan", "göld"), `"headers.x-plan"`},
		{"header value oversize", hdr("x-plan", strings.Repeat("v", maxHeaderValueLen+1)), `"headers.x-plan"`},
		{"33 headers", func(r *Record) { r.Headers = headers33 }, `"headers"`},
		{"metadata empty key", func(r *Record) { r.Metadata = map[string]string{"": "v"} }, `"metadata"`},
		{"metadata key of 129", func(r *Record) { r.Metadata = map[string]string{strings.Repeat("k", 129): "v"} }, `"metadata"`},
		{"65 metadata entries", func(r *Record) { r.Metadata = metadata65 }, `"metadata"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := baseRecord()
			tt.mutate(r)
			err := r.Validate()
			wantErrContaining(t, err, "record field "+tt.want)
			if r.c != nil {
				t.Error("Validate failed but left the record usable")
			}
		})
	}
}

// TestRecordValidateDenyViaJSON runs bad values through ParseRecord, the
// path a Vault record takes.
func TestRecordValidateDenyViaJSON(t *testing.T) {
	base := `"hash":"` + testHash + `","tenant":"t","status":"active"`
	tests := []struct {
		name, field, want string
	}{
		{"cidr /33", `"allowed_cidrs":["10.0.0.0/33"]`, `"allowed_cidrs[0]"`},
		{"IPv4-mapped cidr", `"allowed_cidrs":["::ffff:10.0.0.0/104"]`, `"allowed_cidrs[0]"`},
		{"CRLF in header value", `"headers":{"x-a":"v\r\nx-keygate-tenant: evil"}`, `"headers.x-a"`},
		{"NUL in header value", `"headers":{"x-a":"v\u0000"}`, `"headers.x-a"`},
		{"unparsable date", `"expires_at":"2026-01-01 00:00:00"`, `"expires_at"`},
		{"reserved header", `"headers":{"x-envoy-upstream-rq-timeout-ms":"1"}`, `"headers.x-envoy-upstream-rq-timeout-ms"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRecord([]byte(`{` + base + `,` + tt.field + `}`))
			wantErrContaining(t, err, tt.want)
		})
	}
}

func TestRecordValidateReportsEveryProblem(t *testing.T) {
	r := &Record{
		Hash:             "md5:abc",
		Tenant:           "",
		Status:           "paused",
		NotBefore:        "2026-02-01T00:00:00Z",
		ExpiresAt:        "2026-01-01T00:00:00Z",
		Scopes:           []string{"ok", "not ok"},
		AllowedCIDRs:     []string{"10.0.0.0/8", "10.0.0.0/33"},
		AllowedReferrers: []string{"app.example.com"},
		AllowedHosts:     []string{"API.example.com"},
		Headers:          map[string]string{"host": "x", "x-ok": "a\r\nb"},
		RotatedTo:        "nope",
	}
	err := r.Validate()
	want := []string{
		`"hash"`, `"tenant"`, `"status"`, `"expires_at"`, `"scopes[1]"`, `"allowed_cidrs[1]"`,
		`"allowed_referrers[0]"`, `"allowed_hosts[0]"`, `"headers.host"`, `"headers.x-ok"`, `"rotated_to"`,
	}
	wantErrContaining(t, err, want...)
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != len(want) {
		t.Errorf("want %d joined errors, got %v", len(want), err)
	}
	for _, ok := range []string{`"allowed_cidrs[0]"`, `"scopes[0]"`, `"name"`} {
		if strings.Contains(err.Error(), ok) {
			t.Errorf("error mentions valid field %s: %v", ok, err)
		}
	}
	// The same through ParseRecord: one error, every field.
	_, err = ParseRecord(mustMarshal(t, r))
	wantErrContaining(t, err, want...)
}

// TestValidateFailureLeavesRecordUnusable: Evaluate must deny a record whose
// latest Validate failed, even if an earlier Validate succeeded. Otherwise
// the compiled state of the old policy is used: here a record that was
// unrestricted and is then given an (invalid) CIDR list would still admit
// every source address.
func TestValidateFailureLeavesRecordUnusable(t *testing.T) {
	r := mustRecord(t, nil)
	r.AllowedCIDRs = []string{"10.0.0.0/33"}
	if err := r.Validate(); err == nil {
		t.Fatal("Validate accepted /33")
	}
	req := &Request{Now: testNow, SourceIP: mustAddr("192.0.2.1")}
	if got := evaluate(r, req); got != InvalidRecord {
		t.Errorf("Evaluate after a failed Validate = %v, want %v", got, InvalidRecord)
	}
}

func TestReservedHeader(t *testing.T) {
	for _, name := range []string{":path", ":method", "host", "x-envoy-foo", "x-keygate-tenant", "x-keygate-", "authorization",
		"proxy-authorization", "x-api-key", "cookie", "connection", "keep-alive", "proxy-connection", "te", "trailer",
		"transfer-encoding", "upgrade", "content-length"} {
		if ReservedHeader(name) == "" {
			t.Errorf("ReservedHeader(%q) = \"\", want a reason", name)
		}
	}
	for _, name := range []string{"x-plan", "x-tenant", "x-envoy", "x-keygate", "hostname", "x-api-keys", "cookies", "accept"} {
		if why := ReservedHeader(name); why != "" {
			t.Errorf("ReservedHeader(%q) = %q, want \"\"", name, why)
		}
	}
}

// TestIsHeaderName: lower-case RFC 9110 tokens, every tchar included, and
// nothing else (upper case, separators, controls, non-ASCII, empty).
func TestIsHeaderName(t *testing.T) {
	for _, name := range []string{"a", "z", "0", "9", "x-tenant-zone", "a-z0-9", "!", "!#$%&'*+-.^_`|~", "x!"} {
		if !IsHeaderName(name) {
			t.Errorf("IsHeaderName(%q) = false, want true", name)
		}
	}
	for _, name := range []string{"", "A", "Z", "X-Plan", "x plan", "x:y", "x\"y", "(x)", "x/y", "x@y", "x\x00", "x\x7f", "{", "é", "x,y"} {
		if IsHeaderName(name) {
			t.Errorf("IsHeaderName(%q) = true, want false", name)
		}
	}
}
