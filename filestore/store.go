package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/keygate/keygate/policy"
)

// Store serves key records from a file. It is safe for concurrent use.
type Store struct {
	path   string
	asJSON bool // write JSON, not YAML
	logger *slog.Logger

	snap atomic.Pointer[snapshot]
	// installing is a mutex that a waiter can give up on: held by a writer
	// for its whole write and by Watch while it reloads, so snapshots are
	// installed in the order their files were written.
	installing chan struct{}
	rename     func(oldpath, newpath string) error // os.Rename; tests inject failures
	onChange   atomic.Pointer[func(Change)]        // see OnChange
}

// snapshot is what Lookup serves; never modified once stored.
type snapshot struct {
	st  *state
	sum [sha256.Size]byte // of the file content it came from
}

// Open loads the key file at path; a missing file is an error (wrapping
// fs.ErrNotExist), and so is one that fails at the document level. Invalid
// records do not stop it: they are logged, and Lookup denies just those
// keys. logger receives reload and error events; nil discards.
func Open(path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		path:       path,
		asJSON:     isJSONPath(path),
		logger:     logger,
		installing: make(chan struct{}, 1),
		rename:     os.Rename,
	}
	st, c, err := load(path)
	if err != nil {
		return nil, err
	}
	if c.mode.Perm()&0o077 != 0 {
		logger.Warn("key file is accessible to group or others; want mode 0600", "path", path, "mode", c.mode.Perm().String())
	}
	s.snap.Store(&snapshot{st: st, sum: c.sum})
	s.logProblems(st)
	return s, nil
}

// OpenOrCreate is Open, but first creates an empty key file (mode 0600) if
// none exists, for a CLI's first "keys create".
func OpenOrCreate(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := create(ctx, path); err != nil {
			return nil, err
		}
	}
	return Open(path, logger)
}

// create writes an empty key file unless another process got there first.
func create(ctx context.Context, path string) error {
	unlock, err := lockFile(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // created meanwhile, or an error Open will report
	}
	data, err := encode(&state{}, isJSONPath(path))
	if err != nil {
		return err
	}
	return writeFile(path, data, os.Rename)
}

// Lookup returns the record for keyID from memory, an error wrapping
// policy.ErrInvalidRecord (naming the fields) if the file's record for it
// is invalid, or policy.ErrKeyNotFound. The record is shared: callers must
// not modify it.
func (s *Store) Lookup(_ context.Context, keyID string) (*policy.Record, error) {
	st := s.snap.Load().st
	if rec, ok := st.records[keyID]; ok {
		return rec, nil
	}
	if err, ok := st.invalid[keyID]; ok {
		return nil, err
	}
	return nil, policy.ErrKeyNotFound
}

// Get reads the record for id and its version from the file (not the
// in-memory snapshot). The record is the caller's to modify. An invalid
// record is an error wrapping policy.ErrInvalidRecord, naming the fields,
// with its version.
func (s *Store) Get(_ context.Context, id string) (*policy.Record, int, error) {
	st, _, err := load(s.path)
	if err != nil {
		return nil, 0, err
	}
	if err, ok := st.invalid[id]; ok {
		return nil, st.version(id), err
	}
	rec, ok := st.records[id]
	if !ok {
		return nil, 0, fmt.Errorf("key %s: %w", id, policy.ErrKeyNotFound)
	}
	return rec, st.version(id), nil
}

// Create stores rec at version 1 under a new id; policy.ErrKeyExists if the
// id is taken, or was (a deleted key's id is never reused). rec is
// validated first (errors wrap policy.ErrInvalidRecord).
func (s *Store) Create(ctx context.Context, id string, rec *policy.Record) error {
	return s.put(ctx, id, rec, func(st *state) error {
		if _, ok := st.records[id]; ok {
			return fmt.Errorf("key %s: %w", id, policy.ErrKeyExists)
		}
		if _, ok := st.versions[id]; ok {
			return fmt.Errorf("key %s: %w (a deleted key's id is never reused)", id, policy.ErrKeyExists)
		}
		st.versions[id] = 1
		return nil
	})
}

// Update replaces the record for id if it is still at version (from Get),
// and moves it to version+1; policy.ErrConflict if it is not,
// policy.ErrKeyNotFound if there is no record.
func (s *Store) Update(ctx context.Context, id string, rec *policy.Record, version int) error {
	return s.put(ctx, id, rec, func(st *state) error {
		if _, ok := st.records[id]; !ok {
			return fmt.Errorf("key %s: %w", id, policy.ErrKeyNotFound)
		}
		if cur := st.version(id); cur != version {
			return fmt.Errorf("key %s: at version %d, not %d: %w", id, cur, version, policy.ErrConflict)
		}
		st.versions[id] = version + 1
		return nil
	})
}

// Delete removes the record for id from the file; policy.ErrKeyNotFound
// if there is none. The file keeps no history, but the id stays in the
// versions section (one version on), so it is never reused: as with Vault's
// soft delete, Create refuses it and an Update from before the delete is
// refused.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !policy.ValidID(id) {
		return fmt.Errorf("key id: want %d base62 characters", policy.IDLen)
	}
	return s.modify(ctx, func(st *state) error {
		if _, ok := st.records[id]; !ok {
			return fmt.Errorf("key %s: %w", id, policy.ErrKeyNotFound)
		}
		st.versions[id] = st.version(id) + 1
		delete(st.records, id)
		return nil
	})
}

// GetAll reads every record from the file in one parse (keyadmin's
// BulkReader): the valid records, and the error for each invalid one. Both
// are freshly decoded, the caller's to keep.
func (s *Store) GetAll(context.Context) (map[string]*policy.Record, map[string]error, error) {
	st, _, err := load(s.path)
	if err != nil {
		return nil, nil, err
	}
	return st.records, st.invalid, nil
}

// List returns the key ids in the file, sorted, including those of invalid
// records (Get reports their errors) but not entries whose id is not a key
// id.
func (s *Store) List(context.Context) ([]string, error) {
	st, _, err := load(s.path)
	if err != nil {
		return nil, err
	}
	ids := slices.Collect(maps.Keys(st.records))
	ids = slices.AppendSeq(ids, maps.Keys(st.invalid))
	slices.Sort(ids)
	return ids, nil
}

// Peppers returns the file's HMAC peppers (zero if it has none).
func (s *Store) Peppers(context.Context) (policy.Peppers, error) {
	st, _, err := load(s.path)
	if err != nil {
		return policy.Peppers{}, err
	}
	p := policy.Peppers{Current: st.peppers.Current}
	if st.peppers.Versions != nil {
		p.Versions = make(map[int][]byte, len(st.peppers.Versions))
		for v, b := range st.peppers.Versions {
			p.Versions[v] = bytes.Clone(b)
		}
	}
	return p, nil
}

// put validates rec, then writes it at id if check (run on the file's
// current state, which it may update) allows.
func (s *Store) put(ctx context.Context, id string, rec *policy.Record, check func(*state) error) error {
	if !policy.ValidID(id) {
		return fmt.Errorf("key id %q: want %d base62 characters", id, policy.IDLen)
	}
	if rec == nil {
		return fmt.Errorf("key %s: %w: nil record", id, policy.ErrInvalidRecord)
	}
	r := *rec // Validate fills in the compiled form; leave the caller's alone
	if err := r.Validate(); err != nil {
		return fmt.Errorf("key %s: %w: %w", id, policy.ErrInvalidRecord, err)
	}
	return s.modify(ctx, func(st *state) error {
		if err := checkPepper(&r, st.peppers); err != nil {
			return fmt.Errorf("key %s: %w: %w", id, policy.ErrInvalidRecord, err)
		}
		if err := check(st); err != nil {
			return err
		}
		st.records[id] = &r
		return nil
	})
}

// modify applies change to the file under the in-process and file locks,
// writes the result atomically and installs it as the new snapshot.
func (s *Store) modify(ctx context.Context, change func(*state) error) error {
	select {
	case s.installing <- struct{}{}:
		defer func() { <-s.installing }()
	case <-ctx.Done():
		return fmt.Errorf("wait for this store's other write: %w", context.Cause(ctx))
	}
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	cur, _, err := load(s.path)
	if err != nil {
		return err
	}
	if err := cur.check(); err != nil {
		// Writing would drop or rewrite the hand-edited entries.
		return fmt.Errorf("key file %s: refusing to write until its problems are fixed by hand: %w", s.path, err)
	}
	next := cur.clone()
	if err := change(next); err != nil {
		return err
	}
	data, err := encode(next, s.asJSON)
	if err != nil {
		return err
	}
	// Serve what the file holds, decoded afresh (sharing nothing with the
	// caller), and never write a file that would not load.
	written, err := parseStrict(data)
	if err != nil {
		return fmt.Errorf("refusing to write an invalid key file: %w", err)
	}
	if err := writeFile(s.path, data, s.rename); err != nil {
		return err
	}
	s.install(&snapshot{st: written, sum: sha256.Sum256(data)})
	return nil
}

// logProblems logs st's problems, if any: the ids of the keys denied for
// invalid records and every problem, naming fields but never key material.
func (s *Store) logProblems(st *state) {
	if err := st.check(); err != nil {
		s.logger.Error("key file has invalid entries; keys with invalid records are denied and writes are refused",
			"path", s.path, "keys", len(st.records), "denied", slices.Sorted(maps.Keys(st.invalid)), "error", err)
	}
}

func isJSONPath(path string) bool {
	return strings.EqualFold(filepath.Ext(path), ".json")
}
