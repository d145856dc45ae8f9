package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keygate/keygate/policy"
)

// usageReader is a store that knows when keys were last used (Vault).
type usageReader interface {
	LastUsed(ctx context.Context, keyID string) (time.Time, bool, error)
}

// listed is one key as list and audit see it.
type listed struct {
	ID       string         `json:"id"`
	Record   *policy.Record `json:"record,omitempty"`
	LastUsed string         `json:"last_used,omitempty"` // RFC 3339; absent if never recorded
	Error    string         `json:"error,omitempty"`     // the record could not be read
	// UsageError: the record was read, but not when it was last used.
	UsageError string `json:"usage_error,omitempty"`

	lastUsed time.Time
}

// readParallel bounds the reads list and audit have in flight.
const readParallel = 8

// readKeys reads every key's record (and its last use, if the store keeps
// it), a few at a time, in the store's order. Deleted
// keys (which Vault still lists) are left out; a key that cannot be read is
// a row with its error.
func readKeys(ctx context.Context, k *keysCtx) ([]listed, error) {
	ids, err := k.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	usage := usageOf(k)
	rows := make([]listed, len(ids))
	gone := make([]bool, len(ids))
	sem := make(chan struct{}, readParallel)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rows[i], gone[i] = readKey(ctx, k, usage, id)
		}()
	}
	wg.Wait()
	out := rows[:0]
	for i, r := range rows {
		if !gone[i] {
			out = append(out, r)
		}
	}
	return out, nil
}

// readKey reads one key; gone reports a deleted key.
func readKey(ctx context.Context, k *keysCtx, usage usageReader, id string) (row listed, gone bool) {
	rec, _, err := k.store.Get(ctx, id)
	if errors.Is(err, policy.ErrKeyNotFound) {
		return listed{}, true
	}
	row = listed{ID: id, Record: rec}
	if err != nil {
		row.Error = err.Error()
		return row, false
	}
	if usage != nil {
		at, ok, err := usage.LastUsed(ctx, id)
		switch {
		case err != nil:
			row.UsageError = err.Error()
		case ok:
			row.lastUsed, row.LastUsed = at, at.Format(time.RFC3339)
		}
	}
	return row, false
}

// errNoUsage explains why a usage filter cannot work on this store.
var errNoUsage = errors.New("the file store does not record when keys are used (Vault does, written by `keygate serve --usage-interval`)")

// usageOf returns the store's usage reader, or nil.
func usageOf(k *keysCtx) usageReader {
	u, _ := k.store.(*openedStore).keyStore.(usageReader)
	return u
}
