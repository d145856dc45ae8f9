package filestore

import (
	"crypto/sha256"
	"encoding/json"
	"slices"

	"github.com/keygate/keygate/policy"
)

// Change is what a newly installed snapshot changed, as OnChange reports it.
type Change struct {
	// IDs are the key ids whose Lookup answer may differ: entries added,
	// removed or edited, and records that became valid or invalid (an
	// hmac-sha256 record whose pepper version was added to or removed
	// from the file). Sorted. An entry whose decoded content is unchanged
	// is not named, however the file around it was edited.
	IDs []string
	// Peppers reports that the pepper section changed. Records themselves
	// hold no pepper, so beyond the validity changes in IDs a pepper edit
	// affects only verifiers holding the file's peppers: reload them
	// (Peppers).
	Peppers bool
}

// OnChange makes the Store call f after each new snapshot it installs (a
// reload by Watch, or a write through this Store) with what that snapshot
// changed, unless it changed nothing. f is called after the snapshot is
// served, in the installing goroutine, while no other snapshot can be
// installed, so calls come in order; it must return promptly and must not
// write through this Store. nil turns it off.
func (s *Store) OnChange(f func(Change)) {
	if f == nil {
		s.onChange.Store(nil)
		return
	}
	s.onChange.Store(&f)
}

// install serves next from now on, then reports what it changed.
func (s *Store) install(next *snapshot) {
	prev := s.snap.Swap(next)
	f := s.onChange.Load()
	if f == nil {
		return
	}
	if c := diff(prev.st, next.st); len(c.IDs) > 0 || c.Peppers {
		(*f)(c)
	}
}

// diff compares two parsed states. What Lookup answers for an id depends
// only on its entry and on whether that entry loads (for an hmac-sha256
// record, on its pepper version being in the file), so comparing those
// names every id whose answer changed.
func diff(old, cur *state) Change {
	var ids []string
	for id, sum := range cur.sums {
		if was, ok := old.sums[id]; !ok || was != sum || old.valid(id) != cur.valid(id) {
			ids = append(ids, id)
		}
	}
	for id := range old.sums {
		if _, ok := cur.sums[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return Change{IDs: ids, Peppers: old.pepperSum != cur.pepperSum}
}

// valid reports whether id has a record Lookup serves.
func (st *state) valid(id string) bool {
	_, ok := st.records[id]
	return ok
}

// entrySums hashes each entry of the keys section under a valid key id
// (others are never looked up).
func entrySums(entries map[string]json.RawMessage) map[string][sha256.Size]byte {
	sums := make(map[string][sha256.Size]byte, len(entries))
	for id, raw := range entries {
		if policy.ValidID(id) {
			sums[id] = sha256.Sum256(raw)
		}
	}
	return sums
}
