package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// legacyKey is a credential of another gateway (Kong-style, 32 hex chars).
const legacyKey = "3f9a1c77e0b24d5e8a61c2f4b9d03e7a"

func TestImportedKeyID(t *testing.T) {
	sum := sha256.Sum256([]byte(legacyKey))
	id, err := ImportedKeyID(legacyKey)
	if err != nil || id != ImportedID(sum) || !ValidID(id) {
		t.Fatalf("ImportedKeyID = %q, %v; want the valid id %q", id, err, ImportedID(sum))
	}
	if other, _ := ImportedKeyID(legacyKey + "x"); other == id {
		t.Errorf("two keys share id %s", id)
	}
	for name, good := range map[string]string{
		"shortest":            legacyKey[:MinImportedKeyLen],
		"longest":             strings.Repeat("a", MaxImportedKeyLen),
		"visible ASCII edges": "!~" + legacyKey,
	} {
		if id, err := ImportedKeyID(good); err != nil || id != ImportedID(sha256.Sum256([]byte(good))) {
			t.Errorf("%s: ImportedKeyID = %q, %v; want the id of its SHA-256", name, id, err)
		}
	}
	for name, bad := range map[string]string{
		"short":         legacyKey[:19],
		"long":          strings.Repeat("a", MaxImportedKeyLen+1),
		"space":         legacyKey[:10] + " " + legacyKey[11:],
		"comma":         legacyKey[:10] + "," + legacyKey[11:],
		"control":       legacyKey[:10] + "\x01" + legacyKey[11:],
		"DEL":           legacyKey[:10] + "\x7f" + legacyKey[11:],
		"non-ASCII":     legacyKey[:10] + "é" + legacyKey[12:],
		"trailing CRLF": legacyKey + "\r\n",
	} {
		if id, err := ImportedKeyID(bad); err == nil {
			t.Errorf("%s: id %q, want ErrImportedKey", name, id)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ImportedKeyID(legacyKey) }); n > 1 {
		t.Errorf("ImportedKeyID allocates %.0f times, want at most 1 (the id)", n)
	}
}

func TestImportedRecordNeedsSHA256(t *testing.T) {
	r := &Record{Hash: "hmac-sha256:v1:" + hex64, Tenant: "acme", Status: StatusActive, Imported: true}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), `"imported"`) {
		t.Errorf("imported hmac record: %v, want an error naming imported", err)
	}
}

func TestParseImport(t *testing.T) {
	f, _ := NewFormat("kg")
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	sum := sha256.Sum256([]byte("another-legacy-key-0001"))
	doc := `{"keys": [
		{"key": "` + legacyKey + `", "tenant": "acme", "scopes": ["orders:read"], "name": "from kong"},
		{"sha256": "` + strings.ToUpper(hex.EncodeToString(sum[:])) + `", "tenant": "globex", "status": "revoked"}
	]}`
	got, err := ParseImport([]byte(doc), f, now)
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := ImportedKeyID(legacyKey)
	if len(got) != 2 || got[0].ID != wantID || got[1].ID != ImportedID(sum) {
		t.Fatalf("entries %+v", got)
	}
	r := got[0].Record
	h, _ := NewHasher(AlgSHA256, Peppers{})
	if ok, _ := h.Verify(legacyKey, r.Digest()); !ok || !r.Imported || r.Status != StatusActive ||
		r.CreatedAt != "2026-11-29T12:00:00Z" || r.Tenant != "acme" || r.Compiled() == nil {
		t.Errorf("record %+v", r)
	}
	if got[1].Record.Status != StatusRevoked || got[1].Record.Hash != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("hash entry record %+v", got[1].Record)
	}
}

func TestParseImportErrors(t *testing.T) {
	f, _ := NewFormat("kg")
	now := time.Now()
	k := func(extra string) string { return `{"key": "` + legacyKey + `", "tenant": "acme"` + extra + `}` }
	tests := []struct {
		name, doc string
		want      []string // every one must appear
	}{
		{"not JSON", `{"keys": [`, []string{"import file"}},
		{"no keys", `{}`, []string{`"keys": required`}},
		{"unknown top field", `{"keys": [], "extra": 1}`, []string{"extra"}},
		{"neither key nor hash", `{"keys": [{"tenant": "acme"}]}`, []string{"keys[0]", "exactly one"}},
		{"both", `{"keys": [{"key": "` + legacyKey + `", "sha256": "00", "tenant": "a"}]}`, []string{"keys[0]", "exactly one"}},
		{"short key", `{"keys": [{"key": "short", "tenant": "a"}]}`, []string{"keys[0]", `"key"`, "20-512"}},
		{"key not a string", `{"keys": [{"key": 12, "tenant": "a"}]}`, []string{`"key": want a string`}},
		{"keygate key", `{"keys": [{"key": "kg_` + strings.Repeat("a", 50) + `", "tenant": "a"}]}`, []string{"need no import"}},
		{"bad hash", `{"keys": [{"sha256": "xyz", "tenant": "a"}]}`, []string{`"sha256": want 64 hex digits`}},
		{"keygate's field", `{"keys": [` + k(`, "hash": "sha256:00"`) + `]}`, []string{`"hash": set by keygate`}},
		{"unknown record field", `{"keys": [` + k(`, "scopez": ["a"]`) + `]}`, []string{"keys[0]", "scopez"}},
		{"bad record", `{"keys": [` + k(`, "allowed_cidrs": ["10.0.0.0/33"]`) + `]}`, []string{"keys[0]", "allowed_cidrs[0]"}},
		{"field twice", `{"keys": [{"key": "` + legacyKey + `", "key": "` + legacyKey + `x", "tenant": "a"}]}`, []string{"appears twice"}},
		{"duplicate key", `{"keys": [` + k("") + `, ` + k("") + `]}`, []string{"keys[1]: the same key as keys[0]"}},
		{"key pasted into other fields", `{"keys": [` + k(`, "scopes": ["`+legacyKey+`"], "headers": {"`+legacyKey+`": "x"}, "`+legacyKey+`": 1`) + `]}`, []string{"keys[0]", "[key]"}},
		{"every problem", `{"keys": [{"tenant": "a"}, ` + k(`, "status": "paused"`) + `]}`, []string{"keys[0]", "keys[1]", "status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseImport([]byte(tt.doc), f, now)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), legacyKey) || strings.Contains(err.Error(), "kg_aaaa") {
				t.Errorf("error echoes a raw key: %v", err)
			}
		})
	}
}

// TestParseImportRedactsGivenKeys: whatever a file gives as a raw key (4
// characters or more, even one that is not a valid key) is cut from every
// error, also where another field's error quotes it with %q (escaping its
// quotes and backslashes).
func TestParseImportRedactsGivenKeys(t *testing.T) {
	f, _ := NewFormat("kg")
	quoted := `legacy"key\with-quote-0123`
	tests := []struct {
		name    string
		entries []map[string]any
		want    string // in the error
		mustNot string // never in the error
	}{
		{"key quoted by another field", []map[string]any{{"key": quoted, "tenant": "a", "status": quoted}},
			`"status": "[key]" is not`, "legacy"},
		{"a 4-character key another entry echoes", []map[string]any{
			{"key": "abcd", "tenant": "a"},
			{"key": legacyKey, "tenant": "a", "status": "abcd"},
		}, `keys[1]: record field "status": "[key]" is not`, "abcd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseImport(mustJSON(t, map[string]any{"keys": tt.entries}), f, time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), tt.mustNot) {
				t.Errorf("error %v; want one with %q and without %q", err, tt.want, tt.mustNot)
			}
		})
	}
	// Shorter strings are left alone: redacting "abc" would mangle messages.
	_, err := ParseImport(mustJSON(t, map[string]any{"keys": []map[string]any{{"key": "abc", "tenant": "a"}}}), f, time.Now())
	if err == nil || strings.Contains(err.Error(), "[key]") {
		t.Errorf("error %v; want one without [key]", err)
	}
}

// TestParseImportKeyLimit: a file of MaxImportKeys entries is read (here
// every entry is then refused on its own), one more is refused as a whole.
// It takes about half a second (ten times that with -race), so -short
// skips it; `make mutate` runs -short.
func TestParseImportKeyLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: parses 100,000 entries")
	}
	f, _ := NewFormat("kg")
	doc := func(n int) []byte { return []byte(`{"keys": [{}` + strings.Repeat(`, {}`, n-1) + `]}`) }
	_, err := ParseImport(doc(MaxImportKeys), f, time.Now())
	if err == nil || strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), fmt.Sprintf("keys[%d]: want exactly one", MaxImportKeys-1)) {
		t.Errorf("%d entries: want each entry refused, not the file; got %.200v", MaxImportKeys, err)
	}
	_, err = ParseImport(doc(MaxImportKeys+1), f, time.Now())
	if want := fmt.Sprintf("import file: %d keys, limit %d per file", MaxImportKeys+1, MaxImportKeys); err == nil || err.Error() != want {
		t.Errorf("%d entries: got %.200v, want %q", MaxImportKeys+1, err, want)
	}
}

func FuzzParseImport(f *testing.F) {
	format, _ := NewFormat("kg")
	f.Add([]byte(`{"keys": [{"key": "` + legacyKey + `", "tenant": "acme", "scopes": ["a"]}]}`))
	f.Add([]byte(`{"keys": [{"sha256": "` + hex64 + `", "tenant": "t", "status": "revoked"}]}`))
	f.Add([]byte(`{"keys": [{"key": "kg_` + strings.Repeat("b", 50) + `", "tenant": "a"}, {"key": 1}]}`))
	f.Add([]byte(`{"keys": [{"key": "` + legacyKey + `", "key": "x", "hash": "y"}]}`))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseImport(data, format, now)
		if err != nil {
			// Never echo a value given as a key.
			var doc struct{ Keys []struct{ Key string } }
			if json.Unmarshal(data, &doc) == nil {
				for _, e := range doc.Keys {
					if len(e.Key) >= MinImportedKeyLen && strings.Contains(err.Error(), e.Key) {
						t.Fatalf("error echoes a key: %v", err)
					}
				}
			}
			return
		}
		for _, e := range entries {
			r := e.Record
			if !r.Imported || r.Compiled() == nil || r.Digest().Alg != AlgSHA256 || ImportedID(r.Digest().Sum) != e.ID {
				t.Fatalf("entry %s: record %+v not an imported sha256 record under its id", e.ID, r)
			}
			if _, err := ParseRecord(mustJSON(t, r)); err != nil {
				t.Fatalf("entry %s does not round-trip: %v", e.ID, err)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
