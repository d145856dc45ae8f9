package policy

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
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
	kp := newKeyParsers(f)
	f.Fuzz(func(t *testing.T, s string) { kp.decide(t, s) })
}

// keyParsers are the formats FuzzParseKey parses with, and each one's
// Pattern as a find and a whole-string regular expression.
type keyParsers struct {
	formats    []Format
	find, full []*regexp.Regexp
}

func newKeyParsers(t testing.TB) *keyParsers {
	kp := &keyParsers{formats: []Format{mustFormat(t, "kg"), mustFormat(t, "abcdefghij"), mustFormat(t, "sk")}}
	for _, kf := range kp.formats {
		kp.find = append(kp.find, regexp.MustCompile(pattern(kf)))
		kp.full = append(kp.full, regexp.MustCompile(`^(?:`+pattern(kf)+`)$`))
	}
	return kp
}

// decide checks FuzzParseKey's properties on s; its class is "accepted"
// (by one format) or the first format's error.
func (kp *keyParsers) decide(t *testing.T, s string) string {
	class := ""
	accepted := 0
	for i, kf := range kp.formats {
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
			if kp.full[i].MatchString(s) && err != ErrKeyChecksum {
				t.Fatalf("%s: %q has the key's shape but Parse says %v", kf.Prefix(), s, err)
			}
			if i == 0 {
				class = "rejected:" + strings.ReplaceAll(err.Error(), " ", "_")
			}
			continue
		}
		accepted++
		if len(s) != kf.Len() {
			t.Fatalf("%s: accepted %d bytes, want %d", kf.Prefix(), len(s), kf.Len())
		}
		if !kp.full[i].MatchString(s) {
			t.Fatalf("%s: accepted %q, which Pattern does not match", kf.Prefix(), s)
		}
		if got := kp.find[i].FindString("key: " + s + "."); got != s {
			t.Fatalf("%s: Pattern finds %q in text around the key", kf.Prefix(), got)
		}
		if !ValidID(id) || id != s[len(kf.Prefix())+1:len(kf.Prefix())+1+IDLen] {
			t.Fatalf("%s: bad id %q for %q", kf.Prefix(), id, s)
		}
	}
	if accepted > 1 {
		t.Fatalf("%q accepted by %d formats", s, accepted)
	}
	if accepted == 1 {
		return "accepted"
	}
	return class
}

// keyLike finds substrings shaped like keys of the default format.
var keyLike = func() *regexp.Regexp {
	f, err := NewFormat(DefaultPrefix)
	if err != nil {
		panic(err)
	}
	return regexp.MustCompile(pattern(f))
}()

// recordSeeds are FuzzParseRecord's seeds; fullRecordJSON and the records
// that allow exampleRequests[0] reach an allow.
var recordSeeds = []string{
	fullRecordJSON,
	`{` + validRecordFields + `}`,
	`{"hash":"hmac-sha256:v1:` + hex64 + `","tenant":"t","status":"revoked","not_before":"2026-01-01T00:00:00Z","expires_at":"2027-01-01T00:00:00Z"}`,
	`{` + validRecordFields + `,"name":"` + fixedKey + `"}`,
	`{` + validRecordFields + `,"metadata":{"k":"` + fixedKey + `"}}`,
	`{"hash":"` + fixedKey + `","tenant":"t","status":"active"}`,
	`{` + validRecordFields + `,"scopes":"read"}`,
	`{` + validRecordFields + `,"headers":{"x-a":1}}`,
	`{` + validRecordFields + `,"headers":{"x-a":"v\r\nx-b: c"}}`,
	`{` + validRecordFields + `,"headers":{"host":"x",":path":"/","x-envoy-a":"b","X-Up":"c"}}`,
	`{` + validRecordFields + `,"allowed_cidrs":["10.0.0.0/33","10.0.0.1/8","::ffff:10.0.0.0/104","fe80::1%eth0","192.0.2.1"]}`,
	`{` + validRecordFields + `,"allowed_hosts":["*.example.com","API.example.com","[::1]","2001:DB8::1"]}`,
	`{` + validRecordFields + `,"allowed_referrers":["https://app.example.com:443","https://*.example.com","https://[::1]","http://x:abc"]}`,
	`{` + validRecordFields + `,"expires_at":"yesterday","not_before":1}`,
	`{` + validRecordFields + `,"global_rate_limit":{"requests":100,"per":"minute"},"global_quota":{"requests":10000,"per":"day"}}`,
	`{` + validRecordFields + `,"global_rate_limit":{"requests":1,"per":"second","burst":5},"global_quota":{"requests":0,"per":"second"}}`,
	`{` + validRecordFields + `,"bogus":true}`,
	`{` + validRecordFields + `} {}`,
	`{"Status":"active","HASH":"` + testHash + `","tenant":"t"}`,
	`{` + validRecordFields + `,"status":"revoked"}`,
	`{` + validRecordFields + `,"name":"\u0000\ud800<&>"}`,
	`null`, `[]`, `{}`, ``, `"x"`, fixedKey,
	`{` + validRecordFields + `,"scopes":["orders:read"]}`,
	`{` + validRecordFields + `,"scopes":["orders:read"],"allowed_hosts":["*.example.com"],"allowed_cidrs":["10.0.0.0/8"],"allowed_referrers":["https://app.example.com"]}`,
	`{` + validRecordFields + `,"scopes":["orders:read"],"not_before":"2026-06-01T12:00:00Z","expires_at":"2026-06-01T12:00:01Z"}`,
}

const validRecordFields = `"hash":"` + testHash + `","tenant":"t","status":"active"`

func FuzzParseRecord(f *testing.F) {
	for _, s := range recordSeeds {
		f.Add([]byte(s))
	}
	kg := mustFormat(f, DefaultPrefix)
	f.Fuzz(func(t *testing.T, data []byte) { recordDecision(t, kg, data) })
}

// recordDecision checks FuzzParseRecord's properties on data; its class is
// the decision on exampleRequests[0] (invalid_key_record if data does not
// parse). Every example request's decision must be refpolicy's.
func recordDecision(t *testing.T, kg Format, data []byte) string {
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
		return InvalidRecord.String()
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
	class := ""
	for i, req := range exampleRequests() {
		got := evaluate(rec, &req)
		if r2 := evaluate(back, &req); r2 != got {
			t.Fatalf("Evaluate differs after the round trip: %v, %v", got, r2)
		}
		checkOracle(t, rec, &req, got)
		if i == 0 {
			class = got.String()
		}
	}
	return class
}

var canonicalPathSeeds = []string{
	"/", "/orders/1", "/orders/", "//", "/a/./b", "/a/../b", "/%2e%2e/", "/a%2Fb", "/a\\b", "/%5c", "",
	"orders", "/..a", "/a%20b", "/%252e", "/%", "/%zz", "/a/b/..", "/\x00", "/é",
}

func FuzzCanonicalPath(f *testing.F) {
	for _, s := range canonicalPathSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) { canonicalPathDecision(t, p) })
}

// canonicalPathDecision checks FuzzCanonicalPath's properties on p; its
// class is "canonical" or non_canonical_path.
func canonicalPathDecision(t *testing.T, p string) string {
	if !CanonicalPath(p) {
		return NonCanonicalPath.String()
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
		return "canonical"
	}
	if strings.Count(dec, "/") != strings.Count(p, "/") || strings.ContainsRune(dec, '\\') {
		t.Fatalf("accepted %q, which decodes to %q", p, dec)
	}
	if c := path.Clean(dec); c != dec && c+"/" != dec {
		t.Fatalf("accepted %q, which decodes to %q and cleans to %q", p, dec, c)
	}
	return "canonical"
}
