package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/policy"
)

// Key use is kept apart from the records, at <mount>/<base>/usage/<id>, as
// {"last_used": RFC 3339}: the server may write it (keygate-server.hcl grants
// create/update there and nothing else that writes), so a leaked server
// token can at worst make a key look used, never change what it allows.
// Each replica writes a key's entry at most once per --usage-interval, so
// last_used is accurate to within that interval.

// usageRecord is the data of a usage entry.
type usageRecord struct {
	LastUsed string `json:"last_used"`
}

func (s *Store) usagePath(keyID string) string {
	return s.kvMount + "/data/" + s.base + "/usage/" + keyID
}

// RecordUsage writes that keyID was last used at at. It does not read
// first: replicas racing may move last_used back by at most one interval.
func (s *Store) RecordUsage(ctx context.Context, keyID string, at time.Time) error {
	if !policy.ValidID(keyID) {
		return fmt.Errorf("vault: %s: %w", OpRecordUsage, ErrInvalidID)
	}
	body := map[string]any{"data": usageRecord{LastUsed: at.UTC().Format(time.RFC3339)}}
	return s.write(ctx, OpRecordUsage, keyID, s.usagePath(keyID), body)
}

// LastUsed returns when keyID was last used, and false if keygate never
// recorded a use (or the entry is deleted). An entry that does not parse
// is an error naming the key.
func (s *Store) LastUsed(ctx context.Context, keyID string) (time.Time, bool, error) {
	if !policy.ValidID(keyID) {
		return time.Time{}, false, fmt.Errorf("vault: %s: %w", OpLastUsed, ErrInvalidID)
	}
	e, err := s.read(ctx, OpLastUsed, keyID, s.usagePath(keyID), nil, maxBody)
	if err != nil || !e.found {
		return time.Time{}, false, err
	}
	var u usageRecord
	if err := json.Unmarshal(e.data, &u); err != nil {
		return time.Time{}, false, fmt.Errorf("vault: usage of key %s: not {\"last_used\": time}: %w", keyID, err)
	}
	t, err := time.Parse(time.RFC3339, u.LastUsed)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("vault: usage of key %s: last_used %q is not an RFC 3339 time", keyID, u.LastUsed)
	}
	return t, true, nil
}

// Delete deletes keyID's record and its usage entry: Lookup then reports
// policy.ErrKeyNotFound, and Vault keeps the versions (see RestoreHint;
// `vault kv metadata delete` erases them, which keygate never does).
// Deleting a key that has no live record is policy.ErrKeyNotFound.
//
// The record is first overwritten, with check-and-set on the version just
// read, by a deletion marker, and the marker is soft-deleted: a soft delete
// alone leaves KV v2's version where it was, so an Update from a read made
// before the Delete would pass its check-and-set and bring the key back. A
// change written between the read and the marker is policy.ErrConflict.
func (s *Store) Delete(ctx context.Context, keyID string) error {
	if s.plugin() {
		return s.deletePluginKey(ctx, keyID)
	}
	_, version, err := s.Get(ctx, keyID)
	if err != nil && !errors.Is(err, policy.ErrInvalidRecord) {
		return err // not found, or Vault failed; an invalid record may be deleted
	}
	marker := map[string]any{deletedMarker: time.Now().UTC().Format(time.RFC3339)}
	if err := s.casWrite(ctx, OpDelete, keyID, s.keyPath(keyID), marker, version, policy.ErrConflict); err != nil {
		return err
	}
	if err := s.softDelete(ctx, OpDelete, keyID, s.keyPath(keyID)); err != nil {
		return err
	}
	// The usage entry may not exist; deleting it is then a no-op.
	if err := s.softDelete(ctx, OpDeleteUsage, keyID, s.usagePath(keyID)); err != nil {
		return fmt.Errorf("key %s is deleted, but %w: %w", keyID, ErrUsageKept, err)
	}
	return nil
}

// deletedMarker is the one field of the version Delete writes (and then
// soft-deletes) over a key's record. Undeleted by hand, it reads as an
// invalid record, which denies.
const deletedMarker = "keygate_deleted_at"

// ErrUsageKept: Delete deleted the record but not its usage entry.
var ErrUsageKept = errors.New("its usage entry is not")
