package filestore

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/keygate/keygate/policy"
)

// A deleted key's id is never reused, also after a reopen, and an update
// from before the delete cannot bring the record back.
func TestDeletedIDNeverReused(t *testing.T) {
	ctx := context.Background()
	s, path := openFile(t, validFile)
	if err := s.Delete(ctx, idA); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*Store{"same": s, "reopened": reopened} {
		if err := st.Create(ctx, idA, newRecord("again")); !errors.Is(err, policy.ErrKeyExists) {
			t.Errorf("%s store: Create of a deleted id: %v, want ErrKeyExists", name, err)
		}
		if err := st.Update(ctx, idA, newRecord("again"), 1); !errors.Is(err, policy.ErrKeyNotFound) {
			t.Errorf("%s store: Update from before the delete: %v, want ErrKeyNotFound", name, err)
		}
		if _, _, err := st.Get(ctx, idA); !errors.Is(err, policy.ErrKeyNotFound) {
			t.Errorf("%s store: Get: %v, want ErrKeyNotFound", name, err)
		}
		if ids, err := st.List(ctx); err != nil || slices.Contains(ids, idA) {
			t.Errorf("%s store: List = %v, %v; want no deleted id", name, ids, err)
		}
	}
	// A versions entry without a record (a key deleted by hand) reserves
	// its id too.
	hand, _ := openFile(t, "keys: {}\nversions: {"+idB+": 3}\n")
	if err := hand.Create(ctx, idB, newRecord("x")); !errors.Is(err, policy.ErrKeyExists) {
		t.Errorf("Create of a hand-deleted id: %v, want ErrKeyExists", err)
	}
	if err := hand.Create(ctx, idA, newRecord("x")); err != nil {
		t.Errorf("Create of a fresh id beside it: %v", err)
	}
}
