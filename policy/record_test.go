package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRecordFull(t *testing.T) {
	r, err := ParseRecord([]byte(fullRecordJSON))
	if err != nil {
		t.Fatalf("ParseRecord: %v", err)
	}
	want := Record{
		Hash:             "hmac-sha256:v2:0d5b3c6a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0",
		Name:             "CI deploy key",
		Tenant:           "acme",
		Owner:            "team-payments",
		Status:           StatusActive,
		NotBefore:        "2026-01-01T00:00:00Z",
		ExpiresAt:        "2027-01-01T00:00:00+01:00",
		Scopes:           []string{"orders:read", "orders:write", "reports/*"},
		AllowedCIDRs:     []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"},
		AllowedReferrers: []string{"https://app.example.com", "https://*.example.org:8443"},
		AllowedHosts:     []string{"api.example.com", "*.example.net"},
		Headers:          map[string]string{"x-tenant-plan": "gold", "x-team": "payments\tteam"},
		Metadata:         map[string]string{"ticket": "OPS-1", "note": `<rotated> & "moved"`},
		CreatedAt:        "2025-12-01T10:00:00Z",
		UpdatedAt:        "2025-12-02T10:00:00.123456789Z",
		RotatedTo:        "AbCdEf012345",
	}
	if got, want := exported(r), exported(&want); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseRecord =\n%+v\nwant\n%+v", got, want)
	}
	if d := r.Digest(); d.Alg != AlgHMACSHA256 || d.PepperVersion != 2 || d.String() != want.Hash {
		t.Errorf("Digest() = %+v", d)
	}
	if got, want := r.ExpiresAtTime(), time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("ExpiresAtTime() = %v, want %v", got, want)
	}
	if r.c == nil || len(r.c.cidrs) != 3 || len(r.c.referrers) != 2 || len(r.c.hosts) != 2 {
		t.Errorf("compiled part incomplete: %+v", r.c)
	}
}

func TestParseRecordMinimal(t *testing.T) {
	r, err := ParseRecord([]byte(`{"hash":"` + testHash + `","tenant":"t","status":"revoked"}`))
	if err != nil {
		t.Fatalf("ParseRecord: %v", err)
	}
	if r.Status != StatusRevoked || !r.ExpiresAtTime().IsZero() {
		t.Errorf("got %+v", r)
	}
}

// TestParseRecordJSONErrors covers decoding failures: each error names the
// field (or says what is wrong with the document).
func TestParseRecordJSONErrors(t *testing.T) {
	valid := `"hash":"` + testHash + `","tenant":"t","status":"active"`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"unknown field", `{` + valid + `,"bogus":1}`, []string{`"bogus"`, "unknown field"}},
		{"misspelt field", `{` + valid + `,"expires":"2026-01-01T00:00:00Z"}`, []string{`"expires"`, "unknown field"}},
		{"scopes as string", `{` + valid + `,"scopes":"read write"}`, []string{`"scopes"`, "string", "array"}},
		{"scope as number", `{` + valid + `,"scopes":[1]}`, []string{`"scopes"`, "number"}},
		{"scopes as object", `{` + valid + `,"scopes":{"a":"b"}}`, []string{`"scopes"`, "object"}},
		{"headers as string", `{` + valid + `,"headers":"x-a: 1"}`, []string{`"headers"`, "string"}},
		{"headers as array", `{` + valid + `,"headers":["x-a"]}`, []string{`"headers"`, "array"}},
		{"header value number", `{` + valid + `,"headers":{"x-a":1}}`, []string{`"headers`, "number"}},
		{"header value object", `{` + valid + `,"headers":{"x-a":{"b":"c"}}}`, []string{`"headers`, "object"}},
		{"metadata value bool", `{` + valid + `,"metadata":{"a":true}}`, []string{`"metadata`, "bool"}},
		{"expires_at as number", `{` + valid + `,"expires_at":1767225600}`, []string{`"expires_at"`, "number"}},
		{"not_before as bool", `{` + valid + `,"not_before":false}`, []string{`"not_before"`, "bool"}},
		{"tenant as object", `{"hash":"` + testHash + `","tenant":{"a":1},"status":"active"}`, []string{`"tenant"`, "object"}},
		{"metadata value nested object", `{` + valid + `,"metadata":{"a":{"b":{"c":1}}}}`, []string{`"metadata`, "object"}},
		{"status as bool", `{"hash":"` + testHash + `","tenant":"t","status":true}`, []string{`"status"`, "bool"}},
		{"hash as number", `{"hash":1,"tenant":"t","status":"active"}`, []string{`"hash"`, "number"}},
		{"hash null", `{"hash":null,"tenant":"t","status":"active"}`, []string{`"hash"`, "required"}},
		{"tenant null", `{"hash":"` + testHash + `","tenant":null,"status":"active"}`, []string{`"tenant"`, "required"}},
		{"record null", `null`, []string{`"hash"`, `"tenant"`, `"status"`}},
		{"allowed_cidrs as string", `{` + valid + `,"allowed_cidrs":"10.0.0.0/8"}`, []string{`"allowed_cidrs"`}},
		{"top-level array", `[]`, []string{"object"}},
		{"top-level string", `"kg_x"`, []string{"object"}},
		{"empty input", ``, []string{"record"}},
		{"whitespace only", " \n\t", []string{"record"}},
		{"not JSON", `hash=sha256:x`, []string{"record"}},
		{"truncated", `{` + valid, []string{"record"}},
		{"trailing object", `{` + valid + `} {}`, []string{"trailing data"}},
		{"trailing garbage", `{` + valid + `}x`, []string{"record"}},
		{"trailing brace", `{` + valid + `}}`, []string{"record"}},
		{"two records", `{` + valid + `}{` + valid + `}`, []string{"trailing data"}},
		{"1 MB record", `{` + valid + `,"name":"` + strings.Repeat("a", 1<<20) + `"}`, []string{"limit"}},
		{"just over MaxRecordSize", `{` + valid + `}` + strings.Repeat(" ", MaxRecordSize), []string{"limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord([]byte(tt.in))
			if r != nil {
				t.Errorf("ParseRecord returned a record with an error")
			}
			wantErrContaining(t, err, tt.want...)
		})
	}
}

func TestParseRecordSizeBoundary(t *testing.T) {
	doc := `{"hash":"` + testHash + `","tenant":"t","status":"active"}`
	padded := doc + strings.Repeat(" ", MaxRecordSize-len(doc))
	if _, err := ParseRecord([]byte(padded)); err != nil {
		t.Errorf("record of exactly MaxRecordSize bytes: %v", err)
	}
}

// TestRecordEncodedSizeLimit: Validate refuses a record whose JSON
// encoding (as a store writes it) is over MaxRecordSize, and accepts one of
// exactly MaxRecordSize bytes, also when the cheap bound is far over.
func TestRecordEncodedSizeLimit(t *testing.T) {
	r := baseRecord()
	r.Metadata = map[string]string{"pad": ""}
	pad := MaxRecordSize - len(mustMarshal(t, r))
	r.Metadata["pad"] = strings.Repeat("v", pad)
	if n := len(mustMarshal(t, r)); n != MaxRecordSize {
		t.Fatalf("test record encodes to %d bytes, want %d", n, MaxRecordSize)
	}
	if r.encodedSizeBound() <= MaxRecordSize {
		t.Fatalf("test record's bound %d does not reach the exact check", r.encodedSizeBound())
	}
	if err := r.Validate(); err != nil {
		t.Errorf("record of exactly MaxRecordSize encoded bytes: %v", err)
	}
	r.Metadata["pad"] += "v"
	wantErrContaining(t, r.Validate(), `record field "record": encodes to 65537 bytes, limit 65536`)
	// Under the cheap bound but over the limit only once escaped.
	r.Metadata["pad"] = strings.Repeat("<", MaxRecordSize/6)
	wantErrContaining(t, r.Validate(), `record field "record": encodes to`)
}

// TestRecordEncodedSizeBound: encodedSizeBound must never be under the
// real encoding, or Validate would skip the exact check and pass a record
// a store cannot read back. The records here are the tightest cases: many
// short list items, and every map entry as short as it gets next to every
// other field at its longest, escaped six-fold.
func TestRecordEncodedSizeBound(t *testing.T) {
	tight := func(r *Record) {
		r.Status, r.RevokedReason = StatusRevoked, strings.Repeat("<", 256)
		r.Tenant, r.Name, r.Owner = strings.Repeat("<", 128), strings.Repeat("<", 256), strings.Repeat("&", 256)
		r.Imported = true
		r.RateLimit = &RateLimit{Requests: MaxLimitRequests, Per: "second", Burst: MaxLimitRequests}
		r.GlobalRateLimit = &RateLimit{Requests: MaxLimitRequests, Per: "second"}
		r.Quota = &Quota{Requests: MaxLimitRequests, Per: "minute"}
		r.GlobalQuota = &Quota{Requests: MaxLimitRequests, Per: "minute"}
		r.Headers, r.Metadata = map[string]string{}, map[string]string{}
		for _, c := range "abcdefghijklmnopqrstuvwxyz012345" {
			r.Headers[string(c)] = ""
		}
		for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" {
			r.Metadata[string(c)] = ""
		}
	}
	tests := []struct {
		name   string
		mutate func(*Record)
	}{
		{"minimal", nil},
		{"many one-letter hosts", func(r *Record) { r.AllowedHosts = slices.Repeat([]string{"a"}, 5000) }},
		{"many three-letter hosts", func(r *Record) { r.AllowedHosts = slices.Repeat([]string{"abc"}, 2000) }},
		{"256 one-letter scopes", func(r *Record) { r.Scopes = slices.Repeat([]string{"s"}, maxScopes) }},
		{"shortest map entries, longest everything else", tight},
		{"full record", func(r *Record) {
			if err := json.Unmarshal([]byte(fullRecordJSON), r); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRecord(t, tt.mutate)
			if bound, n := r.encodedSizeBound(), len(mustMarshal(t, r)); bound < n {
				t.Errorf("encodedSizeBound = %d, under the %d bytes json.Marshal writes", bound, n)
			}
		})
	}
}

// TestParseRecordStrictFieldNames: encoding/json matches field names
// case-insensitively and lets a later duplicate win, so a record could say
// "status":"revoked" to one reader and "STATUS":"active" to keygate. A
// strict parser rejects both.
func TestParseRecordStrictFieldNames(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"case-variant field", `{"hash":"` + testHash + `","tenant":"t","Status":"active"}`},
		{"upper-case field", `{"HASH":"` + testHash + `","tenant":"t","status":"active"}`},
		{"case-variant duplicate overrides revoked", `{"hash":"` + testHash + `","tenant":"t","status":"revoked","STATUS":"active"}`},
		{"exact duplicate overrides revoked", `{"hash":"` + testHash + `","tenant":"t","status":"revoked","status":"active"}`},
		{"duplicate hash", `{"hash":"sha256:` + strings.Repeat("0", 64) + `","hash":"` + testHash + `","tenant":"t","status":"active"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := ParseRecord([]byte(tt.in)); err == nil {
				t.Errorf("ParseRecord accepted it with status %q, want an error", r.Status)
			}
		})
	}
}

func TestRecordMarshalRoundTrip(t *testing.T) {
	orig, err := ParseRecord([]byte(fullRecordJSON))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"value": *orig, "pointer": orig} {
		t.Run(name, func(t *testing.T) {
			b := mustMarshal(t, v)
			back, err := ParseRecord(b)
			if err != nil {
				t.Fatalf("ParseRecord(Marshal(r)): %v\n%s", err, b)
			}
			if !recordsEqual(orig, back) {
				t.Errorf("round trip changed the record:\n%+v\n%+v", exported(orig), exported(back))
			}
			if b2 := mustMarshal(t, back); !bytes.Equal(b, b2) {
				t.Errorf("Marshal not stable:\n%s\n%s", b, b2)
			}
		})
	}
	// Only the documented fields are written; the compiled part never is.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(mustMarshal(t, orig), &fields); err != nil {
		t.Fatal(err)
	}
	documented := []string{"hash", "name", "tenant", "owner", "status", "not_before", "expires_at", "scopes",
		"allowed_cidrs", "allowed_referrers", "allowed_hosts", "headers", "metadata", "created_at", "updated_at", "rotated_to"}
	for k := range fields {
		if !slices.Contains(documented, k) {
			t.Errorf("Marshal wrote undocumented field %q", k)
		}
	}
	if len(fields) != len(documented) {
		t.Errorf("Marshal wrote %d fields, want %d", len(fields), len(documented))
	}
	// A minimal record omits every optional field.
	if got := string(mustMarshal(t, mustRecord(t, nil))); got != `{"hash":"`+testHash+`","tenant":"acme","status":"active"}` {
		t.Errorf("minimal record marshals to %s", got)
	}
}

// TestRecordMarshalRoundTripNearSizeLimit: a record ParseRecord accepts must
// still be accepted after Marshal (what the CLI does on update). Marshal
// escapes <, > and & as \u003c etc., so a record under MaxRecordSize can
// come back up to six times larger.
func TestRecordMarshalRoundTripNearSizeLimit(t *testing.T) {
	meta := map[string]string{}
	for i := range 40 {
		meta[fmt.Sprint("k", i)] = strings.Repeat("<&>", 500)
	}
	r := baseRecord()
	r.Metadata = meta
	if err := r.Validate(); err != nil {
		if !strings.Contains(err.Error(), "encodes to") {
			t.Fatalf("Validate: %v", err)
		}
		return // rejected up front: what validates always round-trips
	}
	type wire Record // without Record's MarshalJSON, which escapes
	in := mustMarshalNoEscape(t, wire(*r))
	if len(in) > MaxRecordSize {
		t.Fatalf("test record is %d bytes, over the limit before the round trip", len(in))
	}
	parsed, err := ParseRecord(in)
	if err != nil {
		return // rejecting it up front is a fine fix too
	}
	out := mustMarshal(t, parsed)
	if _, err := ParseRecord(out); err != nil {
		t.Errorf("accepted %d-byte record fails after Marshal (%d bytes): %v", len(in), len(out), err)
	}
}

func mustMarshalNoEscape(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestParseRecordErrorsDoNotContainKey: a raw key pasted into a record by
// mistake (instead of its hash, or instead of the new key's id) must not
// be copied into the error, which ends up in logs.
func TestParseRecordErrorsDoNotContainKey(t *testing.T) {
	rawKey, _ := mustGenerate(t, mustFormat(t, DefaultPrefix))
	base := `"hash":"` + testHash + `","tenant":"t","status":"active"`
	tests := []struct {
		name string
		in   string
	}{
		{"whole input is a key", rawKey},
		{"key as hash", `{"hash":"` + rawKey + `","tenant":"t","status":"active"}`},
		{"sha256 of nothing but the key", `{"hash":"sha256:` + rawKey + `","tenant":"t","status":"active"}`},
		{"key as rotated_to", `{` + base + `,"rotated_to":"` + rawKey + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRecord([]byte(tt.in))
			if err == nil {
				t.Fatal("ParseRecord accepted it")
			}
			if strings.Contains(err.Error(), rawKey) {
				t.Errorf("error contains the raw key: %v", err)
			}
		})
	}
}

func BenchmarkParseRecord(b *testing.B) {
	data := []byte(fullRecordJSON)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRecord(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRevokedReason(t *testing.T) {
	for _, tc := range []struct {
		status, reason, wantErr string
	}{
		{StatusRevoked, "leaked", ""},
		{StatusRevoked, "", ""},
		{StatusActive, "", ""},
		{StatusActive, "leaked", `record field "revoked_reason": only for a revoked key`},
		{StatusRevoked, strings.Repeat("x", 257), `record field "revoked_reason": 257 bytes, limit 256`},
		{StatusRevoked, "line\nbreak", `record field "revoked_reason": contains control characters`},
	} {
		r := Record{Hash: "sha256:" + strings.Repeat("ab", 32), Tenant: "acme", Status: tc.status, RevokedReason: tc.reason}
		err := r.Validate()
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("status %s reason %q: %v", tc.status, tc.reason, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("status %s reason %q: %v, want %q", tc.status, tc.reason, err, tc.wantErr)
		}
	}
}
