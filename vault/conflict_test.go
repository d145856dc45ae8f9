package vault

import (
	"context"
	"errors"
	"testing"

	"github.com/keygate/keygate/policy"
)

// TestCASMismatchNamesKey: a write that lost its check-and-set says which
// key and operation (the CLI prints it, and bulk changes need to know
// which key to retry), and wraps the error keyadmin acts on.
func TestCASMismatchNamesKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	check(t, f.store.Create(ctx, id, rec))
	check(t, f.store.Update(ctx, id, rec, 1)) // now version 2
	tests := []struct {
		name  string
		write func() error
		is    error
		want  string
	}{
		{"create of an existing key", func() error { return f.store.Create(ctx, id, rec) }, policy.ErrKeyExists,
			"vault: create " + id + ": " + policy.ErrKeyExists.Error()},
		{"update of a stale version", func() error { return f.store.Update(ctx, id, rec, 1) }, policy.ErrConflict,
			"vault: update " + id + ": " + policy.ErrConflict.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			if !errors.Is(err, tt.is) || err.Error() != tt.want {
				t.Errorf("error %q, want %q wrapping %v", err, tt.want, tt.is)
			}
		})
	}
}
