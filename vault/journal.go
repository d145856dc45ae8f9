package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"time"

	"github.com/keygate/keygate/policy"
)

// The change journal is one KV v2 entry, <mount>/<base>/journal, whose
// versions are the journal: every CLI write appends a version naming the key
// ids it changed (check-and-set on the latest version, so concurrent writers
// never overwrite each other). Replicas poll the latest version and evict
// the ids of every version they have not seen, so a revocation reaches all
// of them within one poll instead of one found-TTL. It holds no secrets.
//
// KV v2 keeps a bounded number of versions (max_versions, default 10): a
// replica that falls further behind than that, or than maxJournalGap,
// cannot know what changed and must drop its whole cache.

// JournalEntry is one journal version.
type JournalEntry struct {
	Version int      `json:"-"`
	Op      string   `json:"op"`
	IDs     []string `json:"ids"`
	At      string   `json:"at"`
}

// maxJournalGap bounds the versions one poll reads; past it the caller is
// told the journal is incomplete.
const maxJournalGap = 50

func (s *Store) journalPath() string { return s.mount + "/data/" + s.base + "/journal" }

// AppendJournal records that ids changed (op names the CLI command).
func (s *Store) AppendJournal(ctx context.Context, op string, ids ...string) error {
	for _, id := range ids {
		if !policy.ValidID(id) {
			return fmt.Errorf("vault: %s: %w", OpAppendJournal, ErrInvalidID)
		}
	}
	if s.plugin() {
		return s.appendPluginJournal(ctx, op, ids)
	}
	data := JournalEntry{Op: op, IDs: ids, At: time.Now().UTC().Format(time.RFC3339)}
	for attempt := range 10 {
		if attempt > 0 { // another writer appended first: retry after a short random pause
			select {
			case <-ctx.Done():
				return fmt.Errorf("vault: %s: %w", OpAppendJournal, ctx.Err())
			case <-time.After(time.Duration(5+rand.IntN(20)) * time.Millisecond):
			}
		}
		latest, err := s.read(ctx, OpJournal, "", s.journalPath(), nil, maxBody)
		if err != nil {
			return err
		}
		err = s.casWrite(ctx, OpAppendJournal, "", s.journalPath(), data, latest.version, policy.ErrConflict)
		if !errors.Is(err, policy.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("vault: %s: %w", OpAppendJournal, policy.ErrConflict)
}

// JournalSince returns the entries after version after, the latest version,
// and whether the entries are complete. With after < 0 (a replica that just
// started, its cache empty) it returns only the latest version. Incomplete
// means versions were pruned, the journal restarted, or the gap exceeds
// maxJournalGap: the caller must assume any key changed.
func (s *Store) JournalSince(ctx context.Context, after int) ([]JournalEntry, int, bool, error) {
	if s.plugin() {
		return s.pluginJournalSince(ctx, after)
	}
	latest, err := s.read(ctx, OpJournal, "", s.journalPath(), nil, maxBody)
	switch {
	case err != nil:
		return nil, after, false, err
	case after < 0:
		return nil, latest.version, true, nil
	case latest.version <= after:
		return nil, latest.version, latest.version == after, nil
	case latest.version-after > maxJournalGap:
		return nil, latest.version, false, nil
	}
	var out []JournalEntry
	for v := after + 1; v < latest.version; v++ {
		e, err := s.read(ctx, OpJournal, "", s.journalPath(), url.Values{"version": {strconv.Itoa(v)}}, maxBody)
		if err != nil {
			return nil, after, false, err
		}
		if !e.found {
			return nil, latest.version, false, nil // pruned or deleted
		}
		if out, err = appendEntry(out, e.data, v); err != nil {
			return nil, latest.version, false, err
		}
	}
	if !latest.found {
		return out, latest.version, false, nil
	}
	out, err = appendEntry(out, latest.data, latest.version)
	return out, latest.version, err == nil, err
}

func appendEntry(out []JournalEntry, data []byte, version int) ([]JournalEntry, error) {
	var e JournalEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return out, fmt.Errorf("vault: journal version %d: %w", version, err)
	}
	e.Version = version
	return append(out, e), nil
}
