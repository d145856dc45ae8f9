package vault

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// TestObserver: every request reaches the observer with a closed-set
// operation and class, against the real dev server.
func TestObserver(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	seen := map[string]int{}
	f.store.SetObserver(func(op, class string, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if took < 0 {
			t.Errorf("%s: negative duration", op)
		}
		seen[op+" "+class]++
	})
	ctx := context.Background()
	id, rec := newRecord(t)
	if _, err := f.store.Lookup(ctx, id); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Fatal(err)
	}
	if err := f.store.Create(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Create(ctx, id, rec); !errors.Is(err, policy.ErrKeyExists) {
		t.Fatal(err)
	}
	if _, err := f.store.Lookup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordUsage(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"lookup not_found", "create ok", "create client_error" /* the CAS mismatch: HTTP 400 */, "lookup ok", "record_usage ok"} {
		if seen[want] == 0 {
			t.Errorf("observer never saw %q (saw %v)", want, seen)
		}
	}
}
