package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/keygate/keygate/extauthz"
)

// JournalEntry is one change a store's journal reports.
type JournalEntry struct {
	Version int      // the journal version that recorded it
	Op      string   // what the CLI did: "revoke", "update", ... or JournalOpNewKeys
	IDs     []string // the key ids it changed
}

// JournalOpNewKeys is a journal entry that names no ids: keys were added
// (keys import), so replicas forget the ids they cached as unknown. One
// entry for any number of keys keeps a large import from pushing replicas
// past the versions the store keeps (which would drop their whole caches).
const JournalOpNewKeys = "new-keys"

// Journal is a store's change journal (Vault): the entries after version
// after, the latest version, and whether the entries are complete (false:
// versions were pruned, or the journal went back).
type Journal interface {
	JournalSince(ctx context.Context, after int) (entries []JournalEntry, latest int, complete bool, err error)
}

// feedPolls is how many polls the change journal stays trusted after a
// successful read began: one failed read does not make every cached record
// due at once, and a journal that stopped being read hands back to
// --found-ttl within feedPolls × --journal-poll.
const feedPolls = 3

// watchJournal polls the change journal every interval and evicts the key
// ids changed since the last poll, so CLI changes reach this replica within
// one poll rather than one --found-ttl. When it cannot know what changed
// (the first successful read: Checks may have cached keys before it, and a
// change journaled since then is not in what it returns; versions pruned,
// too far behind), it expires the whole cache: every record cached before
// the read returned is re-read on its next use. After each successful read
// it tells srv the journal is a healthy change feed (extauthz ChangeFeed),
// so cached records are re-read only when changed or at --max-record-age.
func watchJournal(ctx context.Context, log *slog.Logger, j Journal, srv *extauthz.Server, every time.Duration, ob *observability) {
	t := time.NewTicker(every)
	defer t.Stop()
	ob.journalWatched(time.Now())
	last := -1 // no successful poll yet
	for {
		start := time.Now() // changes journaled after it are left to the next read
		entries, latest, complete, err := j.JournalSince(ctx, last)
		switch {
		case err != nil:
			log.Warn("cannot read the change journal; changes take effect within --found-ttl", "err", err)
		case !complete:
			srv.ExpireAll()
			srv.ChangeFeed(start.Add(feedPolls * every))
			ob.journalPurged()
			ob.journalRead(time.Now())
			why := "fell behind the change journal (versions pruned or too many at once)"
			if latest < last {
				why = "the change journal went back (Vault restored or restarted empty)"
			}
			log.Warn(why+": expired the whole cache (every cached key is re-read on its next use)",
				"from_version", last, "to_version", latest)
			last = latest
		default:
			if last < 0 {
				srv.ExpireAll() // what Checks cached before this first read
				log.Debug("change journal read first; keys cached before it are re-read on their next use", "version", latest)
			}
			ob.journalRead(time.Now())
			applyJournal(log, srv, entries)
			srv.ChangeFeed(start.Add(feedPolls * every))
			last = latest
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// applyJournal evicts the ids the entries name.
func applyJournal(log *slog.Logger, srv *extauthz.Server, entries []JournalEntry) {
	for _, e := range entries {
		if e.Op == JournalOpNewKeys {
			srv.PurgeUnknown() // however many keys: no need to name them
		}
		for _, id := range e.IDs {
			srv.Evict(id)
		}
		log.Debug("journal", "version", e.Version, "op", e.Op, "keys", len(e.IDs))
	}
}
