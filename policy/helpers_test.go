package policy

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testHash is a syntactically valid digest for records whose hash is not
// the point of the test.
const testHash = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// evaluate is what a server does with a record a store returned: evaluate
// its compiled part, nil (InvalidRecord) unless it validated.
func evaluate(rec *Record, req *Request) Reason { return rec.Compiled().Evaluate(req) }

// pattern is the regular expression README gives secret scanners: keys of f
// as whole words.
func pattern(f Format) string {
	return fmt.Sprintf(`\b%s[0-9A-Za-z]{%d}\b`, regexp.QuoteMeta(f.prefix), bodyLen)
}

// testNow is the clock used by Evaluate tests.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func mustFormat(t testing.TB, prefix string) Format {
	t.Helper()
	f, err := NewFormat(prefix)
	if err != nil {
		t.Fatalf("NewFormat(%q): %v", prefix, err)
	}
	return f
}

func mustGenerate(t testing.TB, f Format) (rawKey, keyID string) {
	t.Helper()
	rawKey, keyID, err := f.Generate()
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return rawKey, keyID
}

// makeKey builds a key with a correct checksum from a prefix and a 44
// character id+secret body, using its own base62 encoder (not the package's)
// so that the checksum layout documented in key.go is checked independently.
func makeKey(prefix, body string) string {
	if len(body) != IDLen+SecretLen {
		panic("makeKey: body must be 44 characters")
	}
	signed := prefix + "_" + body
	sum := uint64(crc32.ChecksumIEEE([]byte(signed)))
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var enc [checksumLen]byte
	for i := len(enc) - 1; i >= 0; i-- {
		enc[i] = digits[sum%62]
		sum /= 62
	}
	return signed + string(enc[:])
}

// fixedKey is a deterministic valid "kg" key (for seeds and tables).
var fixedKey = makeKey("kg", "4VvXJ3tq9aBz"+"Q2w8Ee5Rr7Tt1Yy0Uu6Ii3Oo9Pp4Aa2S")

// baseRecord returns a minimal valid, unvalidated record.
func baseRecord() *Record {
	return &Record{Hash: testHash, Tenant: "acme", Status: StatusActive}
}

// mustRecord returns baseRecord changed by mutate, validated.
func mustRecord(t testing.TB, mutate func(*Record)) *Record {
	t.Helper()
	r := baseRecord()
	if mutate != nil {
		mutate(r)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return r
}

// fullRecordJSON exercises every field of the record.
const fullRecordJSON = `{
  "hash": "hmac-sha256:v2:0d5b3c6a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0",
  "name": "CI deploy key",
  "tenant": "acme",
  "owner": "team-payments",
  "status": "active",
  "not_before": "2026-01-01T00:00:00Z",
  "expires_at": "2027-01-01T00:00:00+01:00",
  "scopes": ["orders:read", "orders:write", "reports/*"],
  "allowed_cidrs": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"],
  "allowed_referrers": ["https://app.example.com", "https://*.example.org:8443"],
  "allowed_hosts": ["api.example.com", "*.example.net"],
  "headers": {"x-tenant-plan": "gold", "x-team": "payments\tteam"},
  "metadata": {"ticket": "OPS-1", "note": "<rotated> & \"moved\""},
  "created_at": "2025-12-01T10:00:00Z",
  "updated_at": "2025-12-02T10:00:00.123456789Z",
  "rotated_to": "AbCdEf012345"
}`

// recordsEqual compares the stored (exported) fields of two records,
// treating nil and empty slices and maps alike, plus the parsed parts
// exposed by accessors.
func recordsEqual(a, b *Record) bool {
	if a.Digest() != b.Digest() || !a.ExpiresAtTime().Equal(b.ExpiresAtTime()) {
		return false
	}
	return reflect.DeepEqual(exported(a), exported(b))
}

func exported(r *Record) Record {
	out := *r
	out.c = nil
	norm := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	normMap := func(m map[string]string) map[string]string {
		if len(m) == 0 {
			return nil
		}
		return m
	}
	out.Scopes = norm(out.Scopes)
	out.AllowedCIDRs = norm(out.AllowedCIDRs)
	out.AllowedReferrers = norm(out.AllowedReferrers)
	out.AllowedHosts = norm(out.AllowedHosts)
	out.Headers = normMap(out.Headers)
	out.Metadata = normMap(out.Metadata)
	return out
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return b
}

// wantErrContaining fails unless err is non-nil and its text contains every
// substring in want.
func wantErrContaining(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}
