package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/keygate/keygate/extauthz"
)

// sweepEvery is how often the server drops cache entries that can never
// be served again (extauthz.Server.Sweep), so memory follows the keys in
// use.
const sweepEvery = time.Minute

// sweepCache runs srv.Sweep every sweepEvery until ctx ends.
func sweepCache(ctx context.Context, log *slog.Logger, srv *extauthz.Server) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if r, u := srv.Sweep(); r+u > 0 {
				log.Debug("cache sweep", "records", r, "unknown_ids", u)
			}
		}
	}
}

// StoreChange is what one reload of a store changed (the file store).
type StoreChange struct {
	// IDs are the key ids whose records may read differently now.
	IDs []string
	// Peppers: the store's HMAC peppers changed.
	Peppers bool
}

// evictChanges makes a store that reports its changes (Deps.OnChange)
// apply them to srv's cache at once, rather than within FoundTTL: changed
// ids are evicted, and a pepper change fires the returned channel (for
// keepPeppers; nil for a store without reports). More ids than the store
// read burst expire the whole cache instead: evicted ids are no longer
// known, so re-reading many at once would be refused by StoreReadRate,
// while expired records are re-read unlimited.
//
// Such a store (the file store) is a change feed that is always healthy:
// Lookup answers from the snapshot the store last installed, and each
// install reports every id whose answer it changed, so a record not
// evicted is what a re-read would return. Re-reading it every FoundTTL
// would only rebuild its response parts; it is re-read at MaxRecordAge.
func evictChanges(onChange func(func(StoreChange)), srv *extauthz.Server, burst int, log *slog.Logger) <-chan struct{} {
	if onChange == nil {
		return nil
	}
	srv.ChangeFeed(time.Now().AddDate(100, 0, 0))
	peppers := make(chan struct{}, 1)
	onChange(func(c StoreChange) {
		if len(c.IDs) > burst {
			srv.ExpireAll()
		} else {
			for _, id := range c.IDs {
				srv.Evict(id)
			}
		}
		if c.Peppers {
			select {
			case peppers <- struct{}{}:
			default: // a reload is already due
			}
		}
		log.Debug("key store changed: cache updated", "keys", len(c.IDs), "expired_all", len(c.IDs) > burst, "peppers", c.Peppers)
	})
	return peppers
}
