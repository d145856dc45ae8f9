package extauthz

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// legacy is a credential issued by another gateway, migrated with keys import.
const legacy = "3f9a1c77e0b24d5e8a61c2f4b9d03e7a"

func importedKeys(c *Config) { c.ImportedKeys = true }

// putImported stores an imported record for rawKey under the id derived
// from hashed's SHA-256 (normally rawKey itself).
func (e *env) putImported(rawKey, hashed string, mods ...func(*policy.Record)) string {
	e.t.Helper()
	sum := sha256.Sum256([]byte(hashed))
	rec := &policy.Record{Hash: policy.Digest{Alg: policy.AlgSHA256, Sum: sum}.String(), Tenant: "legacy",
		Status: policy.StatusActive, Scopes: []string{"orders:read"}, Imported: true}
	for _, m := range mods {
		m(rec)
	}
	if err := rec.Validate(); err != nil {
		e.t.Fatal(err)
	}
	id, err := policy.ImportedKeyID(rawKey)
	if err != nil {
		e.t.Fatal(err)
	}
	e.store.set(func(s *fakeStore) { s.recs[id] = rec })
	e.keys = append(e.keys, rawKey, hashed)
	return id
}

func TestImportedKeyAllowed(t *testing.T) {
	for name, req := range map[string]*reqBuilder{
		"x-api-key":      newReq().key(legacy),
		"bearer":         newReq().header("authorization", "Bearer "+legacy),
		"raw header":     newReq().raw("x-api-key", []byte(legacy)),
		"with spaces":    newReq().key("  " + legacy + "\t"),
		"scope in route": newReq().key(legacy).scopes("orders:read"),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, importedKeys)
			id := e.putImported(legacy, legacy)
			resp := e.check(req.build())
			if got := outcome(resp); got != "allowed" {
				t.Fatalf("outcome %s, want allowed", got)
			}
			if h := headerSet(resp); h["x-keygate-key-id"] != id || h["x-keygate-tenant"] != "legacy" {
				t.Errorf("identity headers %v, want key id %s", h, id)
			}
			if !removed(resp)["x-api-key"] && !removed(resp)["authorization"] {
				t.Errorf("credential not removed: %v", resp.GetOkResponse().GetHeadersToRemove())
			}
		})
	}
}

func TestImportedKeyDenied(t *testing.T) {
	other := strings.Repeat("Z", 40)
	tests := []struct {
		name     string
		imported bool
		key      string
		want     string
		reads    int64 // store reads the Check may cause
	}{
		{"imported keys off", false, legacy, "malformed_key", 0},
		{"unknown legacy key", true, other, "unknown_key", 1},
		{"record under its id hashes another key", true, "hash-mismatch-key-0001", "unknown_key", 1},
		{"keygate prefix, bad checksum", true, "kg_" + strings.Repeat("a", 50), "malformed_key", 0},
		{"too short", true, "short-key", "malformed_key", 0},
		{"too long", true, strings.Repeat("a", policy.MaxImportedKeyLen+1), "malformed_key", 0},
		{"control byte", true, legacy[:8] + "\x7f" + legacy[9:], "malformed_key", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *env
			if tt.imported {
				e = newEnv(t, importedKeys)
			} else {
				e = newEnv(t)
			}
			e.putImported(legacy, legacy)
			e.putImported("hash-mismatch-key-0001", "some-other-key-0002")
			e.keys = append(e.keys, tt.key)
			before := e.store.reads.Load()
			if got := outcome(e.check(newReq().key(tt.key).build())); got != tt.want {
				t.Fatalf("outcome %s, want %s", got, tt.want)
			}
			if n := e.store.reads.Load() - before; n != tt.reads {
				t.Errorf("%d store reads, want %d", n, tt.reads)
			}
			e.check(newReq().key(tt.key).build()) // a second try is cached (negative or found)
			if n := e.store.reads.Load() - before; n != tt.reads {
				t.Errorf("after a second Check: %d store reads, want %d", n, tt.reads)
			}
		})
	}
}

// TestKeygateKeysUnchangedWithImports: turning imports on changes nothing
// for keygate's own keys.
func TestKeygateKeysUnchangedWithImports(t *testing.T) {
	e := newEnv(t, importedKeys)
	if got := outcome(e.check(newReq().key(testKey).build())); got != "allowed" {
		t.Errorf("keygate key: %s", got)
	}
	if got := outcome(e.check(newReq().key(wrongSecretKey).build())); got != "unknown_key" {
		t.Errorf("keygate key, wrong secret: %s", got)
	}
}
