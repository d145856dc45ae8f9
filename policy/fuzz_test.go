package policy

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var keySeeds = []string{
	fixedKey,
	makeKey("kg", strings.Repeat("0", 44)),
	makeKey("kg", strings.Repeat("z", 44)),
	makeKey("abcdefghij", strings.Repeat("Aa", 22)),
	makeKey("sk", strings.Repeat("1", 44)),
	"",
	" ",
	"kg_",
	"Bearer " + fixedKey,
	fixedKey + "\n",
	fixedKey + "\r\n",
	fixedKey[:len(fixedKey)-1],
	fixedKey[:len(fixedKey)-1] + "A",
	fixedKey[:10] + "\x00" + fixedKey[11:],
	fixedKey[:10] + "\xff" + fixedKey[11:],
	fixedKey[:10] + "-" + fixedKey[11:],
	fixedKey[:10] + "_" + fixedKey[11:],
	"xx_" + fixedKey[3:],
	strings.Repeat("A", 8<<10),
}

func FuzzParseKey(f *testing.F) {
	for _, s := range keySeeds {
		f.Add(s)
	}
	formats := []Format{mustFormat(f, "kg"), mustFormat(f, "abcdefghij"), mustFormat(f, "sk")}
	var find, full []*regexp.Regexp
	for _, kf := range formats {
		find = append(find, regexp.MustCompile(pattern(kf)))
		full = append(full, regexp.MustCompile(`^(?:`+pattern(kf)+`)$`))
	}
	f.Fuzz(func(t *testing.T, s string) {
		accepted := 0
		for i, kf := range formats {
			id, err := kf.Parse(s)
			id2, err2 := kf.Parse(s)
			if id != id2 || err != err2 {
				t.Fatalf("%s: Parse not deterministic: %q, %v then %q, %v", kf.Prefix(), id, err, id2, err2)
			}
			if err != nil {
				if id != "" {
					t.Fatalf("%s: Parse returned id %q with error %v", kf.Prefix(), id, err)
				}
				switch err {
				case ErrKeyPrefix, ErrKeyLength, ErrKeyAlphabet, ErrKeyChecksum:
				default:
					t.Fatalf("%s: Parse returned a non-sentinel error %v", kf.Prefix(), err)
				}
				if full[i].MatchString(s) && err != ErrKeyChecksum {
					t.Fatalf("%s: %q has the key's shape but Parse says %v", kf.Prefix(), s, err)
				}
				continue
			}
			accepted++
			if len(s) != kf.Len() {
				t.Fatalf("%s: accepted %d bytes, want %d", kf.Prefix(), len(s), kf.Len())
			}
			if !full[i].MatchString(s) {
				t.Fatalf("%s: accepted %q, which Pattern does not match", kf.Prefix(), s)
			}
			if got := find[i].FindString("key: " + s + "."); got != s {
				t.Fatalf("%s: Pattern finds %q in text around the key", kf.Prefix(), got)
			}
			if !ValidID(id) || id != s[len(kf.Prefix())+1:len(kf.Prefix())+1+IDLen] {
				t.Fatalf("%s: bad id %q for %q", kf.Prefix(), id, s)
			}
		}
		if accepted > 1 {
			t.Fatalf("%q accepted by %d formats", s, accepted)
		}
	})
}

// keyLike finds substrings shaped like keys of the default format.
var keyLike = func() *regexp.Regexp {
	f, err := NewFormat(DefaultPrefix)
	if err != nil {
		panic(err)
	}
	return regexp.MustCompile(pattern(f))
}()

func FuzzParseRecord(f *testing.F) {
	valid := `"hash":"` + testHash + `","tenant":"t","status":"active"`
	for _, s := range []string{
		fullRecordJSON,
		`{` + valid + `}`,
		`{"hash":"hmac-sha256:v1:` + hex64 + `","tenant":"t","status":"revoked","not_before":"2026-01-01T00:00:00Z","expires_at":"2027-01-01T00:00:00Z"}`,
		`{` + valid + `,"name":"` + fixedKey + `"}`,
		`{` + valid + `,"metadata":{"k":"` + fixedKey + `"}}`,
		`{"hash":"` + fixedKey + `","tenant":"t","status":"active"}`,
		`{` + valid + `,"scopes":"read"}`,
		`{` + valid + `,"headers":{"x-a":1}}`,
		`{` + valid + `,"headers":{"x-a":"v\r\nx-b: c"}}`,
		`{` + valid + `,"headers":{"host":"x",":path":"/","x-envoy-a":"b","X-Up":"c"}}`,
		`{` + valid + `,"allowed_cidrs":["10.0.0.0/33","10.0.0.1/8","::ffff:10.0.0.0/104","fe80::1%eth0","192.0.2.1"]}`,
		`{` + valid + `,"allowed_hosts":["*.example.com","API.example.com","[::1]","2001:DB8::1"]}`,
		`{` + valid + `,"allowed_referrers":["https://app.example.com:443","https://*.example.com","https://[::1]","http://x:abc"]}`,
		`{` + valid + `,"expires_at":"yesterday","not_before":1}`,
		`{` + valid + `,"global_rate_limit":{"requests":100,"per":"minute"},"global_quota":{"requests":10000,"per":"day"}}`,
		`{` + valid + `,"global_rate_limit":{"requests":1,"per":"second","burst":5},"global_quota":{"requests":0,"per":"second"}}`,
		`{` + valid + `,"bogus":true}`,
		`{` + valid + `} {}`,
		`{"Status":"active","HASH":"` + testHash + `","tenant":"t"}`,
		`{` + valid + `,"status":"revoked"}`,
		`{` + valid + `,"name":"\u0000\ud800<&>"}`,
		`null`, `[]`, `{}`, ``, `"x"`, fixedKey,
	} {
		f.Add([]byte(s))
	}
	kg := mustFormat(f, DefaultPrefix)
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseRecord(data)
		if err != nil {
			if rec != nil {
				t.Fatal("ParseRecord returned a record with an error")
			}
			for _, k := range keyLike.FindAllString(string(data), -1) {
				if _, perr := kg.Parse(k); perr == nil && strings.Contains(err.Error(), k) {
					t.Fatalf("error contains a key found in the input: %v", err)
				}
			}
			return
		}
		if rec.c == nil {
			t.Fatal("ParseRecord succeeded but the record is not usable")
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := ParseRecord(b)
		if err != nil {
			t.Fatalf("ParseRecord(Marshal(r)) failed: %v\ninput: %q\nmarshalled: %s", err, data, b)
		}
		if !recordsEqual(rec, back) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", exported(rec), exported(back))
		}
		if b2, _ := json.Marshal(back); !bytes.Equal(b, b2) {
			t.Fatalf("Marshal not stable:\n%s\n%s", b, b2)
		}
		r1 := evaluate(rec, &Request{Now: testNow})
		r2 := evaluate(back, &Request{Now: testNow})
		if r1 != r2 {
			t.Fatalf("Evaluate differs after the round trip: %v, %v", r1, r2)
		}
	})
}

func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{
		routesJSON,
		`{"routes": []}`,
		`{"routes": [{"path_prefix": "/"}]}`,
		`{"routes": [{"host": "*.example.com", "method": "GET", "path_prefix": "/a/", "scopes": ["x"]}]}`,
		`{"routes": [{"host": "API.example.com", "method": "get", "path_prefix": "a//b", "scopes": [""]}]}`,
		`{"routes": [{"path": "/"}]}`,
		`{"routes": {}}`,
		`{"routes": []} x`,
		``, `null`,
	} {
		for _, req := range [][3]string{
			{"api.example.com", "GET", "/orders/1"},
			{"admin.example.com:8443", "POST", "/orders"},
			{"a.internal.example.com", "GET", "/metrics"},
			{"[::1]:80", "", ""},
			{"", "DELETE", "/ordersx"},
		} {
			f.Add([]byte(s), req[0], req[1], req[2])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, host, method, p string) {
		routes, err := ParseRoutes(data)
		if err != nil {
			if routes != nil {
				t.Fatal("ParseRoutes returned routes with an error")
			}
			return
		}
		for i, rule := range routes.Rules {
			if !strings.HasPrefix(rule.PathPrefix, "/") || !CanonicalPath(rule.PathPrefix) {
				t.Fatalf("rule %d: accepted path_prefix %q", i, rule.PathPrefix)
			}
		}
		chosen, reason := routes.rule(host, method, p)
		chosen2, reason2 := routes.rule(host, method, p)
		if chosen != chosen2 || reason != reason2 {
			t.Fatal("Match not deterministic")
		}
		scopes, r := routes.Match(host, method, p)
		if r != reason || (chosen < 0 && scopes != nil) || (chosen >= 0 && !slices.Equal(scopes, routes.Rules[chosen].Scopes)) {
			t.Fatalf("Match = %q, %v; rule = %d, %v", scopes, r, chosen, reason)
		}
		if reason != Allowed {
			if reason == InvalidHost {
				if _, ok := ParseHost(host); ok {
					t.Fatalf("InvalidHost for %q, which ParseHost accepts", host)
				}
			}
			return
		}
		if chosen < 0 {
			for i, rule := range routes.Rules {
				if (rule.Host == "" || rule.Host == "*") && rule.Method == "" && rule.PathPrefix == "/" && strings.HasPrefix(p, "/") {
					t.Fatalf("no match for %q although rule %d matches every path", p, i)
				}
			}
			return
		}
		rule := routes.Rules[chosen]
		if !strings.HasPrefix(p, rule.PathPrefix) || !methodMatches(rule.Method, method) {
			t.Fatalf("Match chose rule %d (%+v) for %s %q", chosen, rule, method, p)
		}
		for i, other := range routes.Rules {
			anyHost := other.Host == "" || other.Host == "*"
			if anyHost && methodMatches(other.Method, method) && pathHasPrefix(p, other.PathPrefix) &&
				len(other.PathPrefix) > len(rule.PathPrefix) {
				t.Fatalf("Match chose rule %d over the longer rule %d", chosen, i)
			}
		}
	})
}

func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{
		"/", "/orders/1", "/orders/", "//", "/a/./b", "/a/../b", "/%2e%2e/", "/a%2Fb", "/a\\b", "/%5c", "",
		"orders", "/..a", "/a%20b", "/%252e", "/%", "/%zz", "/a/b/..", "/\x00", "/é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !CanonicalPath(p) {
			return
		}
		if p == "" || p[0] != '/' || strings.Contains(p, "//") || strings.ContainsRune(p, '\\') {
			t.Fatalf("accepted %q", p)
		}
		if c := path.Clean(p); c != p && c+"/" != p {
			t.Fatalf("accepted %q, which cleans to %q", p, c)
		}
		// Decoding once must not create separators or dot segments.
		dec, err := url.PathUnescape(p)
		if err != nil {
			return
		}
		if strings.Count(dec, "/") != strings.Count(p, "/") || strings.ContainsRune(dec, '\\') {
			t.Fatalf("accepted %q, which decodes to %q", p, dec)
		}
		if c := path.Clean(dec); c != dec && c+"/" != dec {
			t.Fatalf("accepted %q, which decodes to %q and cleans to %q", p, dec, c)
		}
	})
}

func FuzzEvaluate(f *testing.F) {
	f.Add("api.example.com:443", "https://x.example.org", "", "orders:read", "10.1.2.3", int64(0))
	f.Add("API.EXAMPLE.COM", "null", "https://a.example.org/x", "orders:read orders:write", "::ffff:10.0.0.1", int64(3600))
	f.Add("sub.example.net", "", "https://app.example.com:443/", "\torders:write\t", "2001:db8::1", int64(-1))
	f.Add("example.net", "http://app.example.com", "", "admin", "fe80::1%eth0", int64(1<<40))
	f.Add("[2001:db8::1]", "https://user@app.example.com", "%zz", "", "", int64(0))
	f.Add("", "", "", "", "1.2.3.4:abc", int64(0))

	rec := mustRecord(f, everything)
	unvalidated := *rec
	unvalidated.c = nil
	v4, v6 := netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")

	f.Fuzz(func(t *testing.T, host, origin, referer, scopeList, ip string, offset int64) {
		src, _ := netip.ParseAddr(ip)
		req := &Request{
			Now:       notBeforeTime.Add(time.Duration(offset) * time.Second),
			ScopeList: scopeList, SourceIP: src, Host: host, Origin: origin, Referer: referer,
		}
		got := evaluate(rec, req)
		if again := evaluate(rec, req); again != got {
			t.Fatalf("Evaluate not deterministic: %v then %v", got, again)
		}
		if r := evaluate(&unvalidated, req); r != InvalidRecord {
			t.Fatalf("unvalidated record: %v", r)
		}
		if got.HTTPStatus() == 200 != (got == Allowed) {
			t.Fatalf("reason %v has status %d", got, got.HTTPStatus())
		}
		if got != Allowed {
			return
		}
		if req.Now.Before(notBeforeTime) || !req.Now.Before(expiresAtTime) {
			t.Fatalf("allowed at %v, outside the key's lifetime", req.Now)
		}
		if a := src.Unmap().WithZone(""); !v4.Contains(a) && !v6.Contains(a) {
			t.Fatalf("allowed source %q", ip)
		}
		if !strings.Contains(strings.ToLower(host), "example.") {
			t.Fatalf("allowed host %q", host)
		}
		used := origin
		if used == "" || used == "null" {
			used = referer
		}
		if u, err := url.Parse(used); err != nil || u.User != nil || !strings.Contains(strings.ToLower(u.Host), "example.") {
			t.Fatalf("allowed origin %q / referer %q", origin, referer)
		}
		for _, s := range strings.Fields(scopeList) {
			if !slices.Contains(rec.Scopes, s) {
				t.Fatalf("allowed scope list %q without scope %q", scopeList, s)
			}
		}
	})
}
