package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// Credentials of another gateway, as a team migrating to keygate has them.
const (
	legacyRaw    = "3f9a1c77e0b24d5e8a61c2f4b9d03e7a" // exported raw
	legacyHashed = "sk_live_4eC39HqLyjWDarjtT1zdp7dc" // only its SHA-256 is exported
)

func writeImportFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "import.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func importFile(t *testing.T) string {
	sum := sha256.Sum256([]byte(legacyHashed))
	return writeImportFile(t, `keys:
  - key: "`+legacyRaw+`"
    tenant: acme
    name: kong consumer acme
    scopes: [orders:read]
  - sha256: "`+hex.EncodeToString(sum[:])+`"
    tenant: globex
    expires_at: "2099-01-01T00:00:00Z"
`)
}

// TestKeysImport: keys imported from raw keys and from SHA-256 hashes are
// allowed by a server with --imported-keys, found by hash in the real Vault;
// a bad file writes nothing; re-running is safe; the journal makes a server
// that had cached "unknown" see the import at once; rotate moves a key to
// keygate's format.
func TestKeysImport(t *testing.T) {
	ring := keyring{keys: []string{legacyRaw, legacyHashed}}
	env := vaultEnv(t)
	s := serve(t, env, ring.all, "--imported-keys", "--not-found-ttl", "1m")
	if o := s.decide(t, legacyRaw, checkFlags{}); o.status != 401 || o.reason != "unknown_key" {
		t.Fatalf("before the import: %v, want 401 unknown_key (now cached for 1m)", o)
	}

	checkImportRejects(t, env)
	path := importFile(t)
	if out := mustCLI(t, env, "keys", "import", path, "--dry-run"); strings.Count(out, "checked") != 2 {
		t.Errorf("dry run:\n%s", out)
	}
	if out := mustCLI(t, env, "keys", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("dry run wrote keys: %s", out)
	}
	var rows []importedRow
	if err := jsonUnmarshal(mustCLI(t, env, "keys", "import", path, "--json"), &rows); err != nil || len(rows) != 2 ||
		rows[0].Result != "imported" || rows[1].Result != "imported" {
		t.Fatalf("import: %v %+v", err, rows)
	}
	if err := jsonUnmarshal(mustCLI(t, env, "keys", "import", path, "--json"), &rows); err != nil ||
		rows[0].Result != "exists" || rows[1].Result != "exists" {
		t.Errorf("import again: %v %+v, want both exists", err, rows)
	}
	rawID, _ := policy.ImportedKeyID(legacyRaw)
	hashedID, _ := policy.ImportedKeyID(legacyHashed)
	if rows[0].ID != rawID || rows[1].ID != hashedID {
		t.Errorf("ids %s %s, want %s %s", rows[0].ID, rows[1].ID, rawID, hashedID)
	}

	took := eventually(t, 5*time.Second, "imported key allowed (journal evicts the cached unknown)", func() bool {
		return s.decide(t, legacyRaw, checkFlags{}).status == 200
	})
	t.Logf("imported key allowed %s after the import, with --not-found-ttl 1m", took.Round(10*time.Millisecond))
	read := checkFlags{context: []string{"keygate.scopes=orders:read"}}
	if o := s.decide(t, legacyRaw, read); o.status != 200 || o.headers["x-keygate-key-id"] != rawID || o.headers["x-keygate-tenant"] != "acme" {
		t.Errorf("raw-imported key: %v %v", o, o.headers)
	}
	if o := s.decide(t, legacyHashed, checkFlags{}); o.status != 200 || o.headers["x-keygate-tenant"] != "globex" {
		t.Errorf("hash-imported key: %v", o)
	}
	if o := s.decide(t, legacyHashed, read); o.status != 403 {
		t.Errorf("hash-imported key without the scope: %v, want 403", o)
	}
	plain := serve(t, env, ring.all)
	if o := plain.decide(t, legacyRaw, checkFlags{}); o.status != 401 || o.reason != "malformed_key" {
		t.Errorf("server without --imported-keys: %v, want 401 malformed_key", o)
	}
	if out := mustCLI(t, env, "keys", "audit"); !strings.Contains(out, "imported") {
		t.Errorf("audit does not flag imported keys:\n%s", out)
	}

	nk := ring.add(createFromRotate(t, env, rawID, "--grace", "1h"))
	for name, key := range map[string]string{"old imported": legacyRaw, "new keygate": nk.Key} {
		if o := s.decide(t, key, read); o.status != 200 {
			t.Errorf("%s key after rotate: %v", name, o)
		}
	}
	if out := mustCLI(t, env, "keys", "show", nk.ID); strings.Contains(out, `"imported"`) {
		t.Errorf("the rotated-to key is marked imported:\n%s", out)
	}
	checkImportRerun(t, env, path, rawID, hashedID)
}

// checkImportRerun: re-running an import never overwrites: a key changed
// since (rotated) "differs", a deleted one is "deleted" (Vault keeps its
// id), and neither stops the import.
func checkImportRerun(t *testing.T, env envMap, path, changedID, deletedID string) {
	t.Helper()
	mustCLI(t, env, "keys", "delete", deletedID, "--force")
	out, stderr, err := cli(t, env, "keys", "import", path, "--json")
	var rows []importedRow
	if err != nil || jsonUnmarshal(out, &rows) != nil || len(rows) != 2 {
		t.Fatalf("re-run: %v, %s", err, out)
	}
	got := map[string]string{rows[0].ID: rows[0].Result, rows[1].ID: rows[1].Result}
	if got[changedID] != "differs" || got[deletedID] != "deleted" {
		t.Errorf("re-run results %v, want %s differs and %s deleted", got, changedID, deletedID)
	}
	if !strings.Contains(stderr, "keys update "+changedID) || !strings.Contains(stderr, "rollback") {
		t.Errorf("re-run stderr does not say what to do:\n%s", stderr)
	}
}

// checkImportRejects: a file with problems names them all, echoes no key
// and writes nothing.
func checkImportRejects(t *testing.T, env envMap) {
	t.Helper()
	bad := writeImportFile(t, `keys:
  - key: "`+legacyRaw+`"
    tenant: acme
    scopez: [a]
  - key: "`+legacyHashed+`"
  - key: "`+legacyRaw+`"
    tenant: acme
`)
	_, stderr, err := cli(t, env, "keys", "import", bad)
	if err == nil {
		t.Fatal("bad import file accepted")
	}
	for _, want := range []string{"nothing imported", "keys[0]", "scopez", "keys[1]", `"tenant": required`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, redact(err.Error()))
		}
	}
	for _, k := range []string{legacyRaw, legacyHashed} {
		if strings.Contains(err.Error()+stderr, k) {
			t.Errorf("import error echoes a raw key")
		}
	}
	notYAML := writeImportFile(t, "keys:\n  - key: \""+legacyRaw+"\n    tenant: [\n")
	if _, _, err := cli(t, env, "keys", "import", notYAML); err == nil || strings.Contains(err.Error(), legacyRaw) {
		t.Errorf("broken YAML: %v", err)
	}
	if out := mustCLI(t, env, "keys", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("a rejected import wrote keys: %s", out)
	}
}

// TestKeysImportStdin: "-" reads the file from stdin, so raw keys need not
// be written to disk.
func TestKeysImportStdin(t *testing.T) {
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	data, err := os.ReadFile(importFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	args := []string{"keys", "import", "-", "--json"}
	if err := run(context.Background(), args, env.get, strings.NewReader(string(data)), &stdout, &stderr); err != nil {
		t.Fatalf("import from stdin: %v", err)
	}
	var rows []importedRow
	if err := jsonUnmarshal(stdout.String(), &rows); err != nil || len(rows) != 2 || rows[0].Result != "imported" {
		t.Errorf("rows %+v, %v", rows, err)
	}
	if strings.Contains(stdout.String()+stderr.String(), legacyRaw) {
		t.Error("import output contains a raw key")
	}
}
