package vault

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/keygate/keygate/policy"
)

// Hot keys: the ids of the keys the replicas served recently, from which a
// starting replica loads its cache before it reports SERVING (so a rolling
// deploy does not turn valid keys into 503s while --store-read-rate caps a
// cold cache's misses).
//
// They live in HotSlots fixed KV v2 entries, <mount>/<base>/hot/<n>, each
// {"seen": {"<id>": <unix seconds>}}. An id's slot is fixed by a hash of the
// id, so every replica merges what it served into the same slot with
// check-and-set and no replica's ids overwrite another's. Nothing grows
// without bound: the number of entries is fixed, each holds at most
// HotSlotMax ids (the most recent; ids not reported within the window the
// writer gives are dropped), and KV v2 keeps a bounded number of versions.
//
// Why not the key-use entries (usage/<id>)? Finding the recent ones means
// listing usage/ — every key id ever used, which the server must never be
// able to enumerate — and one read per key; and last_used is only as fresh
// as --usage-interval (1h). The slots cost the server HotSlots reads and a
// few writes a minute, and grant it nothing on keys/.
//
// Only key ids are written (checked with policy.ValidID: a raw key is not
// one), which are public by design (logs, headers, Vault request paths). A
// leaked server token can read which ids were used recently, or fill the
// slots with ids: a starting replica then reads those (bounded by
// HotSlotMax per slot and its warm-up deadline) and caches them as unknown.
// It can never make a key work.

// Bounds of the hot-key slots.
const (
	// HotSlots is how many entries hold the hot keys: hot/0 ... hot/31.
	HotSlots = 32
	// HotSlotMax is the most ids one slot keeps (~110 KB of JSON), so the
	// slots hold at most 131,072 ids.
	HotSlotMax = 4096
	// hotMaxBody bounds one slot's read response.
	hotMaxBody = 512 << 10
	// hotReaders is how many slots HotKeys reads at once.
	hotReaders = 4
	// hotCASAttempts bounds the read-merge-write rounds per slot when other
	// replicas write the slot at the same moment.
	hotCASAttempts = 3
	// hotFuture is how far ahead of the writer's clock a time may be
	// (clock skew between replicas); later times are dropped as junk.
	hotFuture = time.Minute
)

// hotSlot is the data of one slot entry.
type hotSlot struct {
	Seen map[string]int64 `json:"seen"`
}

func (s *Store) hotPath(n int) string {
	return s.kvMount + "/data/" + s.base + "/hot/" + strconv.Itoa(n)
}

// HotSlot is the slot that holds keyID.
func HotSlot(keyID string) int {
	h := fnv.New32a()
	h.Write([]byte(keyID))
	return int(h.Sum32() % HotSlots)
}

// errHotSlot: a slot's data is not {"seen": {id: seconds}}.
var errHotSlot = errors.New(`not {"seen": {"<key id>": <unix seconds>}}`)

// readHot reads slot n: its ids and times, without entries that are not a
// key id of this slot or not a plausible time (junk: dirty is then true),
// and its KV version (0: never written). A slot whose data does not parse
// is returned empty and dirty, with its version and an error wrapping
// errHotSlot.
func (s *Store) readHot(ctx context.Context, op Operation, n int) (seen map[string]int64, version int, dirty bool, err error) {
	e, err := s.read(ctx, op, "", s.hotPath(n), nil, hotMaxBody)
	if err != nil {
		return nil, 0, false, err
	}
	seen = map[string]int64{}
	if !e.found {
		return seen, e.version, false, nil
	}
	var slot hotSlot
	if err := json.Unmarshal(e.data, &slot); err != nil {
		return seen, e.version, true, fmt.Errorf("vault: hot-key slot %d: %w: %w", n, errHotSlot, err)
	}
	for id, at := range slot.Seen {
		if policy.ValidID(id) && at > 0 && HotSlot(id) == n {
			seen[id] = at
		}
	}
	return seen, e.version, len(seen) < len(slot.Seen), nil
}

// HotKeys returns the ids the slots record as served at or after since,
// most recently served first. It reads every slot, a few at a time; a slot
// that cannot be read (or parsed) is left out and named in the error, which
// comes with the ids of the others.
func (s *Store) HotKeys(ctx context.Context, since time.Time) ([]string, error) {
	var (
		mu    sync.Mutex
		all   = map[string]int64{}
		errs  []error
		slots = make(chan int)
		wg    sync.WaitGroup
	)
	for range hotReaders {
		wg.Go(func() {
			for n := range slots {
				seen, _, _, err := s.readHot(ctx, OpHotKeys, n)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for id, at := range seen {
					if at >= since.Unix() {
						all[id] = at
					}
				}
				mu.Unlock()
			}
		})
	}
	for n := range HotSlots {
		slots <- n
	}
	close(slots)
	wg.Wait()
	return newestFirst(all, len(all)), errors.Join(errs...)
}

// newestFirst returns at most limit ids of seen, most recent first (ties
// by id, so the order is stable).
func newestFirst(seen map[string]int64, limit int) []string {
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(seen[b], seen[a]), cmp.Compare(a, b))
	})
	return ids[:min(limit, len(ids))]
}

// RecordHotKeys merges ids, served by this replica up to now, into their
// slots: each id's time is set to now unless the slot already has it within
// the last keep/3 (so a key in steady use costs a write per slot about every
// keep/3, not every call), ids not served within keep are dropped, and a
// slot keeps its HotSlotMax most recent ids. A slot is read and written back
// with check-and-set (retried when another replica wrote it meanwhile); one
// with nothing to change is not written. Ids that are not key ids are
// ignored. It returns how many slots it wrote; a slot other replicas kept
// winning is skipped (and named in the error), and the first slot Vault
// fails on ends the call (Vault is down: the next call retries).
func (s *Store) RecordHotKeys(ctx context.Context, ids []string, now time.Time, keep time.Duration) (int, error) {
	bySlot := map[int][]string{}
	for _, id := range ids {
		if policy.ValidID(id) {
			n := HotSlot(id)
			bySlot[n] = append(bySlot[n], id)
		}
	}
	written := 0
	var errs []error
	// From a random slot on, so that calls cut short (Vault slow, the
	// caller's deadline) do not keep leaving the same slots unwritten.
	slots := slices.Sorted(maps.Keys(bySlot))
	first := rand.IntN(len(slots) + 1)
	for _, n := range append(slots[first:], slots[:first]...) {
		ok, err := s.recordHotSlot(ctx, n, bySlot[n], now, keep)
		if ok {
			written++
		}
		if err != nil {
			if errs = append(errs, err); !errors.Is(err, policy.ErrConflict) {
				break
			}
		}
	}
	return written, errors.Join(errs...)
}

// recordHotSlot is RecordHotKeys for one slot: whether it wrote it.
func (s *Store) recordHotSlot(ctx context.Context, n int, ids []string, now time.Time, keep time.Duration) (bool, error) {
	for range hotCASAttempts {
		seen, version, dirty, err := s.readHot(ctx, OpRecordHotKeys, n)
		if err != nil && !errors.Is(err, errHotSlot) { // junk, or a slot that does not parse, is rewritten
			return false, err
		}
		if !mergeHot(seen, ids, now, keep) && !dirty {
			return false, nil
		}
		err = s.casWrite(ctx, OpRecordHotKeys, "", s.hotPath(n), hotSlot{Seen: seen}, version, policy.ErrConflict)
		if !errors.Is(err, policy.ErrConflict) {
			return err == nil, err
		}
	}
	return false, fmt.Errorf("vault: %s: slot %d: other replicas wrote it first %d times in a row: %w", OpRecordHotKeys, n, hotCASAttempts, policy.ErrConflict)
}

// mergeHot adds ids served at now to seen and applies the slot's bounds
// (see RecordHotKeys). It reports whether seen changed.
func mergeHot(seen map[string]int64, ids []string, now time.Time, keep time.Duration) bool {
	oldest, fresh, latest := now.Add(-keep).Unix(), now.Add(-keep/3).Unix(), now.Add(hotFuture).Unix()
	changed := false
	for id, at := range seen {
		if at < oldest || at > latest {
			delete(seen, id)
			changed = true
		}
	}
	for _, id := range ids {
		if at, ok := seen[id]; !ok || at < fresh {
			seen[id] = now.Unix()
			changed = true
		}
	}
	if len(seen) > HotSlotMax {
		for _, id := range newestFirst(seen, len(seen))[HotSlotMax:] {
			delete(seen, id)
		}
		changed = true
	}
	return changed
}
