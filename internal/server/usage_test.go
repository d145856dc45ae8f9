package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// usageSinkFake records writes and fails the ids (or every write) it is
// told to: fault injection for the write-back loop.
type usageSinkFake struct {
	mu      sync.Mutex
	written map[string]time.Time
	calls   int
	failAll bool
	failIDs map[string]bool
}

func (f *usageSinkFake) RecordUsage(_ context.Context, id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failAll || f.failIDs[id] {
		return errors.New("vault: record usage: HTTP 503")
	}
	f.written[id] = at
	return nil
}

func takeOnce(m map[string]time.Time, dropped uint64) func() (map[string]time.Time, uint64) {
	return func() (map[string]time.Time, uint64) { return m, dropped }
}

func TestUsageRound(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	ids := map[string]time.Time{"AAAAAAAAAAA1": t0, "AAAAAAAAAAA2": t0, "AAAAAAAAAAA3": t0, "AAAAAAAAAAA4": t0}

	// One id fails: it is carried, then written next round with the later use.
	w := &usageSinkFake{written: map[string]time.Time{}, failIDs: map[string]bool{"AAAAAAAAAAA2": true}}
	left := usageRound(ctx, log, w, takeOnce(ids, 0), nil, 0)
	if len(left) != 1 || len(w.written) != 3 {
		t.Fatalf("round 1: %d left, %d written; want 1, 3", len(left), len(w.written))
	}
	w.failIDs = nil
	later := t0.Add(time.Hour)
	left = usageRound(ctx, log, w, takeOnce(map[string]time.Time{"AAAAAAAAAAA2": later}, 0), left, 0)
	if len(left) != 0 || !w.written["AAAAAAAAAAA2"].Equal(later) {
		t.Errorf("round 2: %d left, AAAAAAAAAAA2 at %v; want 0 left, %v", len(left), w.written["AAAAAAAAAAA2"], later)
	}

	// Vault down: the round stops after usageMaxFailures failures in a row
	// (plus the writes already in flight), keeping everything.
	many := map[string]time.Time{}
	for i := range 40 {
		many[fmt.Sprintf("AAAAAAAAA%03d", i)] = t0
	}
	down := &usageSinkFake{written: map[string]time.Time{}, failAll: true}
	left = usageRound(ctx, log, down, takeOnce(many, 0), nil, 0)
	if bound := usageMaxFailures + usageWriters - 1; len(left) != len(many) || down.calls > bound {
		t.Errorf("Vault down: %d left after %d writes; want %d left after at most %d", len(left), down.calls, len(many), bound)
	}

	// Paced: 4 writes spread over 100ms go at usageMinRate (20/s), so the
	// round takes ~150ms; a cancelled context ends it and keeps the rest.
	paced := &usageSinkFake{written: map[string]time.Time{}}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Millisecond)
	defer cancel()
	left = usageRound(cctx, log, paced, takeOnce(ids, 0), nil, 100*time.Millisecond)
	if len(left) == 0 || len(left)+len(paced.written) != len(ids) {
		t.Errorf("paced and cancelled: %d left, %d written; want some left, none lost", len(left), len(paced.written))
	}
}
