package extauthz

import (
	"hash/maphash"
	"sync/atomic"
	"time"
)

// A cached record is fresh (served without a store read) while it is known
// to be current:
//
//   - within FoundTTL of its read, always;
//   - past that, until its max age (MaxRecordAge, spread ±10% per key) while
//     a change feed is healthy (ChangeFeed): the feed evicts a record that
//     changes, so one it has not evicted is current. Not for a record read
//     before the last ExpireAll: the feed may have missed its change.
//
// Past freshness a record is re-read on its next use and, if the store
// fails, served stale for StaleTTL past the moment it stopped being known
// current (see knownUntil).

// feed is the change feed's health, as the cache reads it on every Check.
type feed struct {
	// start anchors until: durations from it keep the monotonic clock's
	// reading when Config.Now is time.Now, so a wall clock step cannot
	// extend the feed's health.
	start time.Time
	// until is when the feed stops being healthy, as nanoseconds since
	// start; 0 (start itself): never healthy.
	until atomic.Int64
	// seed spreads max ages per key, differently on every replica.
	seed maphash.Seed
}

// healthy reports whether the feed vouches for records at now.
func (f *feed) healthy(now time.Time) bool { return int64(now.Sub(f.start)) < f.until.Load() }

// end is when the feed stops (or stopped) being healthy.
func (f *feed) end() time.Time { return f.start.Add(time.Duration(f.until.Load())) }

// maxAge is Config.MaxRecordAge for keyID, spread over ±10% by a hash of
// the id under this server's seed: records read together are refreshed
// apart, here and on other replicas. 0 when MaxRecordAge is 0 (off).
func (c *cache) maxAge(keyID string) time.Duration {
	spread := c.cfg.MaxRecordAge / 5
	if spread <= 0 {
		return max(c.cfg.MaxRecordAge, 0)
	}
	return c.cfg.MaxRecordAge - spread/2 + time.Duration(maphash.String(c.feed.seed, keyID)%uint64(spread))
}

// fresh reports whether e may be served without a store read at now. The
// hot path: a time comparison, then (past FoundTTL) two atomic loads.
func (c *cache) fresh(e *entry, now time.Time) bool {
	if e.gen < c.expired.Load() {
		return false
	}
	return now.Before(e.fetched.Add(c.cfg.FoundTTL)) || now.Before(e.fetched.Add(e.maxAge)) && c.feed.healthy(now)
}

// knownUntil is when e stops (or stopped) being known current: FoundTTL
// after its read or, for a record read since the last ExpireAll, its max
// age or the end of the feed's health, whichever came first, if later.
// Stale-if-error and the sweep count from it.
func (c *cache) knownUntil(e *entry) time.Time {
	t := e.fetched.Add(c.cfg.FoundTTL)
	if e.maxAge == 0 || e.gen < c.expired.Load() {
		return t
	}
	u := e.fetched.Add(e.maxAge)
	if end := c.feed.end(); end.Before(u) {
		u = end
	}
	if u.After(t) {
		return u
	}
	return t
}

// ChangeFeed tells the cache that a change feed (the Vault change journal,
// the file store's reload reports) has evicted every record changed up to
// now and is trusted to keep doing so until healthyUntil. Until then a
// cached record is re-read only when evicted, after ExpireAll, or at
// Config.MaxRecordAge (spread ±10% per key) rather than every FoundTTL.
// Past healthyUntil without a newer call, records read more than FoundTTL
// ago are re-read on their next use (served stale if that read fails).
// Call it after applying what the feed reported; a time not after now says
// the feed is not healthy.
func (s *Server) ChangeFeed(healthyUntil time.Time) {
	f := &s.cache.feed
	f.until.Store(int64(healthyUntil.Sub(f.start)))
}
