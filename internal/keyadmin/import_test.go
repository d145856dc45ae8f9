package keyadmin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

const (
	legacyRaw    = "legacy-7c1e9b0d4a2f48e6b3d5c8a1f0e2d4b6"
	legacyHashed = "669ea57322eb4b1a754f96f78d487f4d2a9f26cf0b024a16bbd7674a547c3c35"
	importYAML   = "keys:\n  - key: \"" + legacyRaw + "\"\n    tenant: acme\n    scopes: [orders:read]\n" +
		"  - sha256: \"" + legacyHashed + "\"\n    tenant: globex\n    name: billing\n"
)

// Re-running an import never overwrites: each key is imported once, then
// exists, differs (changed since) or deleted (ids are never reused).
func TestImportOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		before func(t *testing.T, f *fixture, ids []string)
		dryRun bool
		want   []keyadmin.ImportOutcome
	}{
		{"new", nil, false, []keyadmin.ImportOutcome{keyadmin.OutcomeImported, keyadmin.OutcomeImported}},
		{"dry run", nil, true, []keyadmin.ImportOutcome{keyadmin.OutcomeChecked, keyadmin.OutcomeChecked}},
		{"again", importNow, false, []keyadmin.ImportOutcome{keyadmin.OutcomeExists, keyadmin.OutcomeExists}},
		{"again, dry run", importNow, true, []keyadmin.ImportOutcome{keyadmin.OutcomeChecked, keyadmin.OutcomeChecked}},
		{"changed since", func(t *testing.T, f *fixture, ids []string) {
			importNow(t, f, ids)
			if _, err := f.svc.Modify(context.Background(), ids[1], keyadmin.Fields{Name: ptr("payments")}); err != nil {
				t.Fatal(err)
			}
		}, false, []keyadmin.ImportOutcome{keyadmin.OutcomeExists, keyadmin.OutcomeDiffers}},
		{"only times changed", func(t *testing.T, f *fixture, ids []string) {
			importNow(t, f, ids)
			if _, err := f.svc.Modify(context.Background(), ids[0], keyadmin.Fields{}); err != nil { // updated_at moves
				t.Fatal(err)
			}
		}, false, []keyadmin.ImportOutcome{keyadmin.OutcomeExists, keyadmin.OutcomeExists}},
		{"deleted since", func(t *testing.T, f *fixture, ids []string) {
			importNow(t, f, ids)
			if _, err := f.svc.Delete(context.Background(), ids[0], true); err != nil {
				t.Fatal(err)
			}
		}, false, []keyadmin.ImportOutcome{keyadmin.OutcomeDeleted, keyadmin.OutcomeExists}},
		{"one new, one there", func(t *testing.T, f *fixture, ids []string) {
			entries := parseImport(t, f)
			if _, err := f.svc.Import(context.Background(), entries[1:], false); err != nil {
				t.Fatal(err)
			}
		}, false, []keyadmin.ImportOutcome{keyadmin.OutcomeImported, keyadmin.OutcomeExists}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			entries := parseImport(t, f)
			ids := []string{entries[0].ID, entries[1].ID}
			if tt.before != nil {
				tt.before(t, f, ids)
			}
			listed, _ := f.store.List(context.Background())
			rep, err := f.svc.Import(context.Background(), entries, tt.dryRun)
			if err != nil || len(rep.Rows) != len(tt.want) {
				t.Fatalf("Import = %+v, %v", rep, err)
			}
			for i, r := range rep.Rows {
				if r.ID != ids[i] || r.Outcome != tt.want[i] || r.Tenant != entries[i].Record.Tenant {
					t.Errorf("row %d = %+v, want %s %s", i, r, ids[i], tt.want[i])
				}
			}
			if after, _ := f.store.List(context.Background()); tt.dryRun && len(after) != len(listed) {
				t.Errorf("a dry run wrote keys: %v, was %v", after, listed)
			}
		})
	}
}

func parseImport(t *testing.T, f *fixture) []policy.ImportEntry {
	t.Helper()
	entries, err := f.svc.ParseImport([]byte(importYAML))
	if err != nil || len(entries) != 2 {
		t.Fatalf("ParseImport: %d entries, %v", len(entries), err)
	}
	return entries
}

func importNow(t *testing.T, f *fixture, _ []string) {
	t.Helper()
	if _, err := f.svc.Import(context.Background(), parseImport(t, f), false); err != nil {
		t.Fatal(err)
	}
}

// An id holding a different key stops the import there: the report says
// what was done, the error how to finish.
func TestImportIDTaken(t *testing.T) {
	f := newFixture(t)
	entries := parseImport(t, f)
	other := *entries[1].Record
	other.Hash = "sha256:" + strings.Repeat("1", 64)
	if err := f.store.Create(context.Background(), entries[1].ID, &other); err != nil {
		t.Fatal(err)
	}
	rep, err := f.svc.Import(context.Background(), entries, false)
	if !errors.Is(err, keyadmin.ErrIDTaken) || len(rep.Rows) != 1 || rep.Rows[0].Outcome != keyadmin.OutcomeImported ||
		!strings.Contains(err.Error(), "1 of 2 keys done; run the same import again to finish") {
		t.Fatalf("Import = %+v, %v; want one imported, then ErrIDTaken", rep, err)
	}
}

// A file with problems names them all and quotes no key; nothing parses
// into entries.
func TestParseImportErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"not YAML", "keys:\n  - key: \"" + legacyRaw + "\n    tenant: [\n", []string{"import file: not valid YAML or JSON near line"}},
		{"fields", "keys:\n  - key: \"" + legacyRaw + "\"\n    tenant: acme\n    scopez: [a]\n  - sha256: \"" + legacyHashed + "\"\n",
			[]string{"nothing imported", "keys[0]", "scopez", "keys[1]", `"tenant": required`}},
		{"keygate key", "keys:\n  - key: \"kg_" + strings.Repeat("A", 50) + "\"\n    tenant: acme\n", []string{"keys[0]"}},
		{"too big", strings.Repeat("#", keyadmin.MaxImportFile+1), []string{"over"}},
	}
	for _, tt := range tests {
		entries, err := f.svc.ParseImport([]byte(tt.data))
		if entries != nil || !errors.Is(err, keyadmin.ErrInvalidInput) {
			t.Errorf("%s: %d entries, %v; want ErrInvalidInput", tt.name, len(entries), err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q: %s", tt.name, w, policy.Redact(err.Error()))
			}
		}
		if strings.Contains(err.Error(), legacyRaw) || strings.Contains(err.Error(), "AAAAAAAAAA") {
			t.Errorf("%s: the error quotes a key", tt.name)
		}
	}
}
