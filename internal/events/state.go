package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// State is how far the sender got, persisted in the store by the lease
// holder and advanced only once every event it covers was delivered or
// dead-lettered by every webhook: a new holder starts from it and produces
// again (with the same ids) whatever was not settled. It holds key ids,
// never a key.
type State struct {
	// Started is when the first sender began: key.unused events are sent
	// for idle thresholds after it, and auto-disable revokes only keys
	// whose key.unused threshold is after it (so their event was sent).
	Started time.Time `json:"started"`
	// Journal is the last change journal version whose events are settled.
	Journal int `json:"journal_version"`
	// JournalAt is when the read that reached Journal began: a change
	// journaled before it is covered. After a gap (versions pruned before
	// they were read), keys updated since are reported from their records.
	JournalAt time.Time `json:"journal_at,omitzero"`
	// LastList is when new keys were last looked for (keys created after
	// it, less clock skew, are new).
	LastList time.Time `json:"last_list"`
	// LastScan is the end of the last scan's window: time-based events fire
	// for thresholds in (LastScan, now].
	LastScan time.Time `json:"last_scan"`
	// Created are the keys announced as created whose created_at is
	// within createdSkew of LastList (id → created_at), so a new sender,
	// which looks that far back, does not announce them again.
	Created map[string]string `json:"created,omitempty"`
	// Keys (stores without a journal: the file store) is every key as last
	// seen, to tell what changed.
	Keys map[string]keySum `json:"keys,omitempty"`
}

// keySum is what the file store's change detection keeps of a key.
type keySum struct {
	Hash      string `json:"h"` // of the record's JSON
	Status    string `json:"s"`
	RotatedTo string `json:"r,omitempty"`
}

// Coordinator keeps the lease and the state where every replica sees them:
// vault.Store (KV entries <base>/events/lock and <base>/events/state) or
// FileCoordinator (files beside the key file).
type Coordinator interface {
	// AcquireEventsLease takes or renews the lease for holder until
	// now+ttl; false when another holder has it.
	AcquireEventsLease(ctx context.Context, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseEventsLease gives it up, if holder has it.
	ReleaseEventsLease(ctx context.Context, holder string) error
	// EventsState returns the saved state (nil if none) and its version.
	EventsState(ctx context.Context) (json.RawMessage, int, error)
	// SaveEventsState writes the state if it is still at version
	// (otherwise an error wrapping policy.ErrConflict) and returns the new
	// version.
	SaveEventsState(ctx context.Context, data json.RawMessage, version int) (int, error)
}

// errJunkState: the saved state does not parse; it is started afresh.
var errJunkState = errors.New("the saved events state does not parse")

// loadState reads the saved state; ok is false when there is none (or it
// is junk: the error then wraps errJunkState, with its version).
func loadState(ctx context.Context, c Coordinator) (st State, version int, ok bool, err error) {
	data, version, err := c.EventsState(ctx)
	if err != nil || data == nil {
		return State{}, version, false, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, version, false, fmt.Errorf("%w: %w", errJunkState, err)
	}
	return st, version, true, nil
}
