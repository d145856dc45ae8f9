package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/policy"
)

// Coordination of `keygate events` replicas (docs/events.md). Two KV v2
// entries, both written with check-and-set like the journal and the hot-key
// slots, under the KV mount (KVMount with the plugin):
//
//	<base>/events/lock   {"holder": "<replica>", "until": RFC 3339}: the sender's lease
//	<base>/events/state  what the sender has delivered (opaque to this package)
//
// Exactly one replica holds the lease: it takes the entry when it is free or
// expired (by its own clock: keep clocks within a fraction of the lease TTL),
// renews it before it expires, and gives it up on shutdown. A check-and-set
// write that loses to another replica means someone else holds it. Only the
// holder writes the state, also with check-and-set, so a former holder that
// has not yet noticed its loss cannot overwrite what the new one wrote.
// Neither entry holds a secret.

// Operations of the events coordination (labels of the Vault metrics).
const (
	OpEventsLock  Operation = "events_lock"  // AcquireEventsLease, ReleaseEventsLease: reads and check-and-set writes of events/lock
	OpEventsState Operation = "events_state" // EventsState, SaveEventsState
)

// eventsLease is the data of the lock entry.
type eventsLease struct {
	Holder string `json:"holder"`
	Until  string `json:"until"`
}

// eventsMaxBody bounds a read of the lock or the state.
const eventsMaxBody = 8 << 20

func (s *Store) eventsPath(name string) string {
	return s.kvMount + "/data/" + s.base + "/events/" + name
}

// AcquireEventsLease takes or renews the events lease for holder until
// now+ttl. It reports false, without error, when another holder's lease
// has not expired at now, or another replica wrote the entry first.
func (s *Store) AcquireEventsLease(ctx context.Context, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if holder == "" || ttl <= 0 {
		return false, fmt.Errorf("vault: %s: holder and a positive ttl are required", OpEventsLock)
	}
	cur, version, err := s.readLease(ctx)
	if err != nil {
		return false, err
	}
	if cur.Holder != "" && cur.Holder != holder {
		until, err := time.Parse(time.RFC3339Nano, cur.Until)
		if err == nil && now.Before(until) {
			return false, nil
		}
	}
	next := eventsLease{Holder: holder, Until: now.Add(ttl).UTC().Format(time.RFC3339Nano)}
	err = s.casWrite(ctx, OpEventsLock, "", s.eventsPath("lock"), next, version, policy.ErrConflict)
	if errors.Is(err, policy.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// ReleaseEventsLease ends holder's lease at once (so another replica takes
// over without waiting for it to expire); a lease holder no longer has is
// left alone.
func (s *Store) ReleaseEventsLease(ctx context.Context, holder string) error {
	cur, version, err := s.readLease(ctx)
	if err != nil || cur.Holder != holder {
		return err
	}
	gone := eventsLease{Holder: holder, Until: time.Unix(0, 0).UTC().Format(time.RFC3339Nano)}
	err = s.casWrite(ctx, OpEventsLock, "", s.eventsPath("lock"), gone, version, policy.ErrConflict)
	if errors.Is(err, policy.ErrConflict) {
		return nil // someone else wrote it: it is not ours any more
	}
	return err
}

// readLease reads the lock entry: its lease (zero if none, or if it does
// not parse: it is then taken over) and its KV version (0: never written).
func (s *Store) readLease(ctx context.Context) (eventsLease, int, error) {
	e, err := s.read(ctx, OpEventsLock, "", s.eventsPath("lock"), nil, eventsMaxBody)
	if err != nil {
		return eventsLease{}, 0, err
	}
	var l eventsLease
	if e.found {
		_ = json.Unmarshal(e.data, &l) // junk is a free lease
	}
	return l, e.version, nil
}

// EventsState returns the events state entry's data (nil if there is none)
// and its KV version for SaveEventsState (0: never written).
func (s *Store) EventsState(ctx context.Context) (json.RawMessage, int, error) {
	e, err := s.read(ctx, OpEventsState, "", s.eventsPath("state"), nil, eventsMaxBody)
	if err != nil {
		return nil, 0, err
	}
	if !e.found {
		return nil, e.version, nil
	}
	return e.data, e.version, nil
}

// SaveEventsState writes the state if the entry is still at version (from
// EventsState or the last save); otherwise policy.ErrConflict. It returns
// the new version.
func (s *Store) SaveEventsState(ctx context.Context, data json.RawMessage, version int) (int, error) {
	if !json.Valid(data) {
		return version, fmt.Errorf("vault: %s: the state is not JSON", OpEventsState)
	}
	if err := s.casWrite(ctx, OpEventsState, "", s.eventsPath("state"), data, version, policy.ErrConflict); err != nil {
		return version, err
	}
	return version + 1, nil
}
