package filestore

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

const idC = "9QmZrT5xKp2W"

// threeKeys holds three active keys.
var threeKeys = "pepper: {current: 1, versions: {1: " + pepper1 + "}}\nkeys:\n" +
	rec(idA, "hash: "+hashA+", tenant: a, status: active") +
	rec(idB, "hash: "+hashB+", tenant: b, status: active") +
	rec(idC, "hash: "+hashA+", tenant: c, status: active") +
	"versions: {" + idB + ": 3}\n"

// edit returns threeKeys with each old string replaced by its new one.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	out := threeKeys
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(out, pairs[i]) {
			t.Fatalf("edit: %q not in the file", pairs[i])
		}
		out = strings.Replace(out, pairs[i], pairs[i+1], 1)
	}
	return out
}

// lookupStatus is what Lookup says about id: its tenant and status, or the
// error.
func lookupStatus(s *Store, id string) (tenant, status string, err error) {
	r, err := s.Lookup(context.Background(), id)
	if err != nil {
		return "", "", err
	}
	return r.Tenant, r.Status, nil
}

func wantInvalid(t *testing.T, what string, err error, id, field string) {
	t.Helper()
	if !errors.Is(err, policy.ErrInvalidRecord) || !strings.Contains(err.Error(), "key "+id+":") ||
		!strings.Contains(err.Error(), `record field "`+field+`"`) {
		t.Errorf("%s: got %v, want ErrInvalidRecord naming %s and field %q", what, err, id, field)
	}
}

func TestOpenWithInvalidRecords(t *testing.T) {
	ctx := context.Background()
	logs := &logBuffer{}
	path := newFile(t, edit(t, "tenant: b, status: active", "tenant: b, status: actve", idB+":", "short: {tenant: x}\n  "+idB+":"))
	s, err := Open(path, logs.logger())
	if err != nil {
		t.Fatalf("Open: %v, want the file served with its invalid record denied", err)
	}
	if tenant, status, err := lookupStatus(s, idA); err != nil || tenant != "a" || status != policy.StatusActive {
		t.Errorf("Lookup(%s) = %s, %s, %v; want the valid record", idA, tenant, status, err)
	}
	_, err = s.Lookup(ctx, idB)
	wantInvalid(t, "Lookup(B)", err, idB, "status")
	if _, err := s.Lookup(ctx, "short"); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("Lookup(bad id) = %v, want ErrKeyNotFound", err)
	}
	rec, v, err := s.Get(ctx, idB)
	wantInvalid(t, "Get(B)", err, idB, "status")
	if rec != nil || v != 3 {
		t.Errorf("Get(B) = %+v at version %d; want no record at version 3", rec, v)
	}
	if ids, err := s.List(ctx); err != nil || !slices.Equal(ids, []string{idA, idB, idC}) {
		t.Errorf("List = %v, %v; want every valid id, the invalid record's included", ids, err)
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR", "denied=[" + idB + "]", `record field \"status\"`, "keys.short: not a key id"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not contain %q:\n%s", want, log)
		}
	}
}

// TestWatchRevokeAndBreak is the edit a revocation must survive: key A
// revoked and key B broken in one write. A must be revoked at once, B
// denied as invalid, and C served as before.
func TestWatchRevokeAndBreak(t *testing.T) {
	tests := []struct {
		name   string
		breakB []string // edit that breaks B
		field  string   // the field B's error names
	}{
		{"bad status", []string{"tenant: b, status: active", "tenant: b, status: actve"}, "status"},
		{"wrong type", []string{"tenant: b,", "tenant: b, scopes: read,"}, "scopes"},
		{"unknown field", []string{"tenant: b,", "tenant: b, tennant: b,"}, "tennant"},
		{"pepper version missing", []string{"hmac-sha256:v1:", "hmac-sha256:v2:"}, "hash"},
		{"hash truncated", []string{hashB, hashB[:40]}, "hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			path := newFile(t, threeKeys)
			s, err := Open(path, logs.logger())
			if err != nil {
				t.Fatal(err)
			}
			startWatch(t, s)
			revoke := []string{"tenant: a, status: active", "tenant: a, status: revoked"}
			writeTestFile(t, path, edit(t, append(revoke, tt.breakB...)...))
			eventually(t, "A to be revoked", func() bool {
				_, status, _ := lookupStatus(s, idA)
				return status == policy.StatusRevoked
			})
			_, err = s.Lookup(context.Background(), idB)
			wantInvalid(t, "Lookup(B)", err, idB, tt.field)
			if tenant, status, err := lookupStatus(s, idC); err != nil || tenant != "c" || status != policy.StatusActive {
				t.Errorf("Lookup(C) = %s, %s, %v; want it unchanged", tenant, status, err)
			}
			checkProblemLog(t, logs, tt.field)

			writeTestFile(t, path, edit(t, revoke...)) // B fixed
			eventually(t, "B to be served again", found(s, idB))
			if n := countLines(logs.String(), "key file has invalid entries"); n != 1 {
				t.Errorf("a valid file logged problems:\n%s", logs)
			}
		})
	}
}

// checkProblemLog checks that B's problem was logged once, with its id and
// field and without key material.
func checkProblemLog(t *testing.T, logs *logBuffer, field string) {
	t.Helper()
	eventually(t, "the problems to be logged", func() bool {
		return strings.Contains(logs.String(), "key file has invalid entries")
	})
	time.Sleep(100 * time.Millisecond) // 20 polls, all within racyWindow: each re-reads the file
	log := logs.String()
	if n := countLines(log, "key file has invalid entries"); n != 1 {
		t.Errorf("problems logged %d times, want once:\n%s", n, log)
	}
	for _, want := range []string{"level=ERROR", "denied=[" + idB + "]", "keys." + idB + `: record field \"` + field + `\"`, "invalid=1"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not contain %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{pepper1, hashA[7:], hashB[15:], hashB[15:55]} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains key material %q:\n%s", secret, log)
		}
	}
}

// TestWatchKeepsLastGoodOnDocumentError: when the document itself is
// broken nothing in it is applied, the revocation in the same edit included,
// until it is fixed.
func TestWatchKeepsLastGoodOnDocumentError(t *testing.T) {
	revoke := []string{"tenant: a, status: active", "tenant: a, status: revoked"}
	tests := []struct {
		name  string
		edits []string
		want  string // in the logged error
	}{
		{"yaml syntax error", []string{idC + ": {", idC + ": {{"}, "parse: yaml:"},
		{"yaml indentation", []string{"  " + idC, " " + idC}, "parse: yaml:"},
		{"duplicate id", []string{idC + ":", idA + ":"}, "already set"},
		{"keys misspelled", []string{"keys:", "kees:"}, "keys: required"},
		{"keys not a mapping", []string{"keys:\n", "keys: []\nx:\n"}, "keys: want a mapping"},
		{"bad pepper", []string{"current: 1", "current: 2"}, `pepper field \"current\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			path := newFile(t, threeKeys)
			s, err := Open(path, logs.logger())
			if err != nil {
				t.Fatal(err)
			}
			startWatch(t, s)
			writeTestFile(t, path, edit(t, append(revoke, tt.edits...)...))
			eventually(t, "the broken file to be logged", func() bool { return strings.Contains(logs.String(), "key file invalid") })
			if log := logs.String(); !strings.Contains(log, tt.want) || !strings.Contains(log, "level=ERROR") {
				t.Errorf("log does not contain %q:\n%s", tt.want, log)
			}
			for _, id := range []string{idA, idB, idC} {
				if _, status, err := lookupStatus(s, id); err != nil || status != policy.StatusActive {
					t.Errorf("Lookup(%s) = %s, %v; want the last good record", id, status, err)
				}
			}
			writeTestFile(t, path, edit(t, revoke...))
			eventually(t, "the fixed file to be served", func() bool {
				_, status, _ := lookupStatus(s, idA)
				return status == policy.StatusRevoked
			})
		})
	}
}

// TestWriteRefusesFileWithProblems: a write never drops or rewrites an
// entry it could not load, so Create and Update refuse, naming the problems.
func TestWriteRefusesFileWithProblems(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		edits []string
		want  string
	}{
		{"invalid record", []string{"tenant: b, status: active", "tenant: b, status: actve"}, "keys." + idB + `: record field "status"`},
		{"every record invalid", []string{"status: active", "status: on", "status: active", "status: on", "status: active", "status: on"},
			"keys." + idC + `: record field "status"`},
		{"bad id", []string{idC + ":", "short: {tenant: x}\n  " + idC + ":"}, "keys.short: not a key id"},
		{"unknown top-level field", []string{"keys:", "oops: 1\nkeys:"}, `unknown top-level field "oops"`},
		{"bad version", []string{idB + ": 3", idB + ": 0"}, "versions." + idB + ": 0, must be >= 1"},
		{"yaml syntax error", []string{idC + ": {", idC + ": {{"}, "parse: yaml:"},
	}
	ops := map[string]func(*Store) error{
		"create": func(s *Store) error { return s.Create(ctx, "NewKey000001", newRecord("t")) },
		"update": func(s *Store) error { return s.Update(ctx, idA, newRecord("t"), 1) },
	}
	for _, tt := range tests {
		for op, do := range ops {
			t.Run(tt.name+"/"+op, func(t *testing.T) {
				s, path := openFile(t, threeKeys)
				broken := edit(t, tt.edits...)
				writeTestFile(t, path, broken) // a hand edit after Open
				err := do(s)
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
					t.Fatalf("%s over a file with problems: got %v, want an error naming the path and %q", op, err, tt.want)
				}
				if errors.Is(err, policy.ErrInvalidRecord) { // the caller's record is fine
					t.Errorf("refusal %v wraps ErrInvalidRecord", err)
				}
				if data, _ := os.ReadFile(path); string(data) != broken {
					t.Errorf("file with problems was rewritten:\n%s", data)
				}
				if tenant, _, err := lookupStatus(s, idA); err != nil || tenant != "a" {
					t.Errorf("Lookup(A) after a refused write = %s, %v", tenant, err)
				}
			})
		}
	}
}
