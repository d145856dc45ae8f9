package keyadmin_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
)

// journal gives the file store a change journal (which it does not keep:
// its servers watch the file); fail makes every append fail, a fault.
type journal struct {
	keyadmin.Store
	entries []string
	fail    bool
}

func (j *journal) AppendJournal(_ context.Context, op string, ids ...string) error {
	if j.fail {
		return errInjected
	}
	j.entries = append(j.entries, strings.TrimSpace(op+" "+strings.Join(ids, " ")))
	return nil
}

// Every change to an existing key is journaled, with the changed id; an
// import that created keys is one entry naming none; issuing is not
// journaled. A journal that fails is a warning: the change is written.
func TestJournal(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprint("fail=", fail), func(t *testing.T) {
			f := newFixture(t)
			j := &journal{Store: f.store, fail: fail}
			svc := f.service(t, keyadmin.Config{}, j)
			ctx := context.Background()
			if !svc.Caps().Journal || svc.Caps().Usage || svc.Caps().Restore || svc.Caps().PepperRotation {
				t.Fatalf("Caps = %+v, want the journal only", svc.Caps())
			}
			k, err := svc.Issue(ctx, keyadmin.Fields{Tenant: ptr("acme")})
			if err != nil {
				t.Fatal(err)
			}
			var warnings []error
			note := func(ws []error, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				warnings = append(warnings, ws...)
			}
			m, err := svc.Modify(ctx, k.ID, keyadmin.Fields{Name: ptr("n")})
			note(m.Warnings, err)
			r, err := svc.Rotate(ctx, k.ID, time.Hour)
			note(r.Warnings, err)
			rv, err := svc.Revoke(ctx, r.ID, "")
			note(rv.Warnings, err)
			d, err := svc.Delete(ctx, r.ID, false)
			note(d.Warnings, err)
			entries, err := svc.ParseImport([]byte(importYAML))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := svc.Import(ctx, entries, false)
			note(rep.Warnings, err)
			rep, err = svc.Import(ctx, entries, false) // nothing new: no entry
			note(rep.Warnings, err)

			want := []string{"update " + k.ID, "rotate " + k.ID, "revoke " + r.ID, "delete " + r.ID, "new-keys"}
			ops := []string{"update", "rotate", "revoke", "delete", "new-keys"}
			if fail {
				var got []string
				for _, w := range warnings {
					var je *keyadmin.JournalError
					if !errors.As(w, &je) || !errors.Is(w, errInjected) {
						t.Fatalf("warning %v, want a *JournalError", w)
					}
					got = append(got, je.Op)
				}
				if !slices.Equal(got, ops) {
					t.Errorf("journal warnings for %v, want %v", got, ops)
				}
				if _, err := svc.Get(ctx, k.ID); err != nil {
					t.Errorf("changes not written when the journal failed: %v", err)
				}
				return
			}
			if len(warnings) != 0 || !slices.Equal(j.entries, want) {
				t.Errorf("journal %q (warnings %v), want %q", j.entries, warnings, want)
			}
			for _, e := range j.entries {
				if strings.Contains(e, r.RawKey) || strings.Contains(e, k.RawKey) || strings.Contains(e, "legacy-") {
					t.Error("a journal entry holds a raw key")
				}
			}
		})
	}
}
