package vaultplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/policy"
)

// Storage layout (all under the mount's own, barrier-encrypted storage):
//
//	keys/<id>        keyEntry of a live key
//	deleted/<id>     tombstone of a deleted key: its id is never reused
//	roles/<name>     role
//	journal/head     journalHead
//	journal/v/<V>    journal entry V (the last journalKeep are kept)
const (
	keysPrefix    = "keys/"
	deletedPrefix = "deleted/"
)

// keyEntry is a stored key: the policy record as JSON (exactly what
// policy.ParseRecord reads), its version, and what the engine keeps beside
// the record: the role the key was issued for, and its lease bounds.
type keyEntry struct {
	Record  json.RawMessage `json:"record"`
	Version int             `json:"version"`
	meta
}

// meta is what the engine keeps beside a record.
type meta struct {
	Role  string     `json:"role,omitempty"`
	Lease *leaseInfo `json:"lease,omitempty"`
}

// leaseInfo bounds a key issued with a Vault lease: renewals never take
// it past IssuedAt + MaxTTL, and admin writes never set its expiry later.
type leaseInfo struct {
	IssuedAt time.Time     `json:"issued_at"`
	TTL      time.Duration `json:"ttl"`     // the TTL granted at issue: a renewal's default increment
	MaxTTL   time.Duration `json:"max_ttl"` // effective (the role's, or the mount's)
}

// end is the latest expiry the lease allows.
func (l *leaseInfo) end() time.Time { return l.IssuedAt.Add(l.MaxTTL) }

type tombstone struct {
	Version   int    `json:"version"` // of the last write, the delete included
	DeletedAt string `json:"deleted_at"`
	Role      string `json:"role,omitempty"`
}

// store is keyadmin.Store (and keyadmin.Journal) over one request's
// storage. Writes to one id are serialized by the engine's per-id locks,
// which makes the check-and-set atomic: Vault runs one engine instance
// per mount, and only the active node writes.
type store struct {
	s logical.Storage
	b *Backend
	// create is the meta a Create gives the new key: the role (and lease
	// bounds) for keys issued through a role and for rotations of them.
	create meta
}

func (st *store) lock(keyID string) func() {
	l := locksutil.LockForKey(st.b.locks, keyID)
	l.Lock()
	return l.Unlock
}

// entry reads keyID's live entry; nil if there is none.
func (st *store) entry(ctx context.Context, keyID string) (*keyEntry, error) {
	raw, err := st.s.Get(ctx, keysPrefix+keyID)
	if err != nil || raw == nil {
		return nil, err
	}
	var e keyEntry
	if err := json.Unmarshal(raw.Value, &e); err != nil {
		return nil, fmt.Errorf("key %s: stored entry: %w", keyID, err)
	}
	return &e, nil
}

func (st *store) tombstone(ctx context.Context, keyID string) (*tombstone, error) {
	raw, err := st.s.Get(ctx, deletedPrefix+keyID)
	if err != nil || raw == nil {
		return nil, err
	}
	var t tombstone
	if err := json.Unmarshal(raw.Value, &t); err != nil {
		return nil, fmt.Errorf("key %s: stored tombstone: %w", keyID, err)
	}
	return &t, nil
}

func (st *store) put(ctx context.Context, keyID string, e *keyEntry) error {
	return putJSON(ctx, st.s, keysPrefix+keyID, e)
}

func putJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

// Get implements keyadmin.Store.
func (st *store) Get(ctx context.Context, keyID string) (*policy.Record, int, error) {
	e, err := st.entry(ctx, keyID)
	switch {
	case err != nil:
		return nil, 0, err
	case e == nil:
		return nil, 0, fmt.Errorf("key %s: %w", keyID, policy.ErrKeyNotFound)
	}
	rec, err := policy.ParseRecord(e.Record)
	if err != nil {
		return nil, e.Version, fmt.Errorf("key %s: %w: %w", keyID, policy.ErrInvalidRecord, err)
	}
	return rec, e.Version, nil
}

// Create implements keyadmin.Store: an id in use or ever used is
// policy.ErrKeyExists. The new key gets st.create's role and lease.
func (st *store) Create(ctx context.Context, keyID string, rec *policy.Record) error {
	defer st.lock(keyID)()
	return st.createLocked(ctx, keyID, rec, st.create)
}

func (st *store) createLocked(ctx context.Context, keyID string, rec *policy.Record, m meta) error {
	if taken, err := st.taken(ctx, keyID); err != nil || taken {
		if err == nil {
			err = fmt.Errorf("key %s: %w", keyID, policy.ErrKeyExists)
		}
		return err
	}
	body, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	return st.put(ctx, keyID, &keyEntry{Record: body, Version: 1, meta: m})
}

// taken reports whether keyID is live or was ever deleted.
func (st *store) taken(ctx context.Context, keyID string) (bool, error) {
	e, err := st.entry(ctx, keyID)
	if err != nil || e != nil {
		return e != nil, err
	}
	t, err := st.tombstone(ctx, keyID)
	return t != nil, err
}

// Update implements keyadmin.Store: replaces the record at version,
// keeping the role and lease beside it.
func (st *store) Update(ctx context.Context, keyID string, rec *policy.Record, version int) error {
	defer st.lock(keyID)()
	_, err := st.updateLocked(ctx, keyID, rec, version)
	return err
}

func (st *store) updateLocked(ctx context.Context, keyID string, rec *policy.Record, version int) (*keyEntry, error) {
	e, err := st.entry(ctx, keyID)
	switch {
	case err != nil:
		return nil, err
	case e == nil || e.Version != version:
		return nil, fmt.Errorf("key %s: %w", keyID, policy.ErrConflict)
	}
	if e.Record, err = encodeRecord(rec); err != nil {
		return nil, err
	}
	e.Version++
	return e, st.put(ctx, keyID, e)
}

// Delete implements keyadmin.Store: the tombstone keeps the id.
func (st *store) Delete(ctx context.Context, keyID string) error {
	defer st.lock(keyID)()
	e, err := st.entry(ctx, keyID)
	switch {
	case err != nil:
		return err
	case e == nil:
		return fmt.Errorf("key %s: %w", keyID, policy.ErrKeyNotFound)
	}
	t := tombstone{Version: e.Version + 1, DeletedAt: st.b.clock().Format(time.RFC3339), Role: e.Role}
	if err := putJSON(ctx, st.s, deletedPrefix+keyID, t); err != nil {
		return err
	}
	return st.s.Delete(ctx, keysPrefix+keyID)
}

// List implements keyadmin.Store: live ids, sorted.
func (st *store) List(ctx context.Context) ([]string, error) {
	ids, err := st.s.List(ctx, keysPrefix)
	sort.Strings(ids)
	return ids, err
}

// Peppers implements keyadmin.Store: the engine hashes with SHA-256 only.
func (st *store) Peppers(context.Context) (policy.Peppers, error) { return policy.Peppers{}, nil }

// AppendJournal implements keyadmin.Journal.
func (st *store) AppendJournal(ctx context.Context, op string, ids ...string) error {
	return st.b.appendJournal(ctx, st.s, op, ids...)
}

// encodeRecord is a record as stored: validated, and checked to parse
// again (a store must never hold what keygate cannot read).
func encodeRecord(rec *policy.Record) (json.RawMessage, error) {
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", policy.ErrInvalidRecord, err)
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if _, err := policy.ParseRecord(body); err != nil {
		return nil, fmt.Errorf("%w: %w", policy.ErrInvalidRecord, err)
	}
	return body, nil
}
