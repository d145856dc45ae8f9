package vault

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// TestEventsLease: one holder at a time; the holder renews; another takes
// over once the lease expired or was released; a lost check-and-set race
// is "not held", not an error.
func TestEventsLease(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	const ttl = 30 * time.Second
	acquire := func(holder string, at time.Time) bool {
		t.Helper()
		held, err := f.store.AcquireEventsLease(ctx, holder, at, ttl)
		check(t, err)
		return held
	}
	if !acquire("a", now) {
		t.Fatal("a: the free lease was not taken")
	}
	if acquire("b", now.Add(time.Second)) {
		t.Fatal("b took a's lease before it expired")
	}
	if !acquire("a", now.Add(10*time.Second)) {
		t.Fatal("a could not renew its lease")
	}
	if acquire("b", now.Add(35*time.Second)) { // renewed at +10s: until +40s
		t.Fatal("b took a's renewed lease before it expired")
	}
	if !acquire("b", now.Add(41*time.Second)) {
		t.Fatal("b could not take the expired lease")
	}
	if acquire("a", now.Add(42*time.Second)) {
		t.Fatal("a took back b's lease")
	}
	check(t, f.store.ReleaseEventsLease(ctx, "a")) // not a's: left alone
	if acquire("a", now.Add(43*time.Second)) {
		t.Fatal("a's release of b's lease freed it")
	}
	check(t, f.store.ReleaseEventsLease(ctx, "b"))
	if !acquire("a", now.Add(44*time.Second)) {
		t.Fatal("the released lease was not free")
	}

	// Two replicas racing for the free lease: exactly one wins.
	check(t, f.store.ReleaseEventsLease(ctx, "a"))
	wins := make(chan bool, 8)
	for i := range 8 {
		go func() {
			held, err := f.store.AcquireEventsLease(ctx, string(rune('p'+i)), now.Add(50*time.Second), ttl)
			wins <- held && err == nil
		}()
	}
	n := 0
	for range 8 {
		if <-wins {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("8 replicas raced for the free lease: %d won, want 1", n)
	}
}

// TestEventsLeaseArgs: a lease needs a holder and a positive ttl (a lease
// of 0 would be free the moment it is taken); refused before any request,
// so the lease stays free.
func TestEventsLeaseArgs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	for _, tt := range []struct {
		holder string
		ttl    time.Duration
	}{{"", time.Minute}, {"a", 0}, {"a", -time.Second}} {
		if held, err := f.store.AcquireEventsLease(ctx, tt.holder, now, tt.ttl); held || err == nil {
			t.Errorf("AcquireEventsLease(%q, ttl %s) = %v, %v; want false and an error", tt.holder, tt.ttl, held, err)
		}
	}
	if held, err := f.store.AcquireEventsLease(ctx, "b", now, time.Minute); !held || err != nil {
		t.Errorf("after the refusals, a valid acquire = %v, %v; want the lease free", held, err)
	}
}

// TestEventsState: the state round-trips and is written with check-and-set.
func TestEventsState(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	data, version, err := f.store.EventsState(ctx)
	if err != nil || data != nil || version != 0 {
		t.Fatalf("no state yet: %s %d %v", data, version, err)
	}
	v1, err := f.store.SaveEventsState(ctx, json.RawMessage(`{"journal_version":3}`), 0)
	check(t, err)
	if _, err := f.store.SaveEventsState(ctx, json.RawMessage(`{"journal_version":4}`), 0); !errors.Is(err, policy.ErrConflict) {
		t.Fatalf("stale save: %v, want ErrConflict", err)
	}
	v2, err := f.store.SaveEventsState(ctx, json.RawMessage(`{"journal_version":5}`), v1)
	check(t, err)
	data, version, err = f.store.EventsState(ctx)
	check(t, err)
	if version != v2 || string(data) != `{"journal_version":5}` {
		t.Fatalf("read back %s at %d, want journal_version 5 at %d", data, version, v2)
	}
	if _, err := f.store.SaveEventsState(ctx, json.RawMessage(`not json`), v2); err == nil {
		t.Fatal("junk saved")
	}
}

// TestEventsOperationLabels pins the new operation labels.
func TestEventsOperationLabels(t *testing.T) {
	if OpEventsLock != "events_lock" || OpEventsState != "events_state" {
		t.Errorf("labels %q %q", OpEventsLock, OpEventsState)
	}
}
