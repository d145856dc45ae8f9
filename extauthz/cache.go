package extauthz

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/keygate/keygate/policy"
)

// Store is the one thing the Check server needs from a key store: the record
// for a key id. It returns policy.ErrKeyNotFound for an unknown id, an error
// wrapping policy.ErrInvalidRecord for a record that cannot be used, and any
// other error when it could not answer (which is never cached).
type Store interface {
	Lookup(ctx context.Context, keyID string) (*policy.Record, error)
}

// Source says where a decision's record came from.
type Source uint8

// Sources.
const (
	SourceNone     Source = iota // no lookup (bad input)
	SourceHit                    // fresh cache entry
	SourceNegative               // cached not-found
	SourceMiss                   // read from the store
	SourceStale                  // expired entry served because the store failed
)

// entry is an immutable cache value, except for nextTry and noted.
type entry struct {
	keyID   string
	pol     *policy.Compiled // the record's decision-ready part; nil when invalid
	invalid error            // why the record cannot be used
	allow   *allowParts      // prebuilt response parts for the record
	fetched time.Time
	maxAge  time.Duration // its key's max age past fetched (see fresh.go); 0: MaxRecordAge off
	gen     uint64        // the cache generation its read began at (see cache.expired)
	// warmed: read by Warm, not for a Check, and not re-read since; such
	// an entry is left out of RecentKeys until a Check's refresh replaces
	// it, so a warm-up never passes on ids nobody uses any more.
	warmed bool
	// nextTry (unix nanos) throttles store reads for an expired entry
	// whose refresh failed: until then it is served stale without a read.
	nextTry atomic.Int64
	// noted is the usage period in which this key's use was last noted.
	noted atomic.Uint32
}

// staleRetry is how long an entry served stale waits before the store is
// tried again for it.
const staleRetry = time.Second

// cache holds found records and not-found ids in separate LRUs, each entry
// with its own expiry against the injected clock.
type cache struct {
	cfg     *Config
	store   Store
	log     *slog.Logger
	build   func(keyID string, rec *policy.Record) (*allowParts, error)
	found   *lru.Cache[string, *entry]
	missing *lru.Cache[string, time.Time] // value: expiry
	flight  singleflight.Group
	limit   *rate.Limiter // nil: unlimited
	// warnEvery keeps store-failure warnings to one a second: during an
	// outage every miss fails, and the log must not become the outage.
	warnEvery rate.Sometimes

	// gen counts Evict, Purge, PurgeUnknown and ExpireAll calls. A read
	// that started before one may have fetched what was just evicted, so
	// it must not write its result.
	mu  sync.Mutex
	gen uint64
	// expired is the generation of the last expireAll: entries read at an
	// older generation are not fresh (re-read on next use) but stay known
	// and usable stale.
	expired atomic.Uint64
	// feed is the change feed's health (see fresh.go).
	feed feed

	// Records dropped since start, by cause (see CacheStats).
	evictedSize, evictedSweep, evictedExplicit atomic.Uint64
}

// CacheStats is a snapshot of the cache, for metrics and the admin port.
// The eviction counts are found records dropped since start, by cause.
// Not counted: ExpireAll, which drops nothing (records are re-read on
// their next use), and a record replaced by an unknown id when its re-read
// finds the key gone.
type CacheStats struct {
	Records int // found records cached
	Unknown int // not-found ids cached

	// SizeEvictions are records dropped to make room: the cache held
	// Config.CacheSize records, and the least recently used one gave way.
	// A steady rate means the cache is smaller than the keys in use, and
	// each of them costs store reads.
	SizeEvictions uint64
	// SweepEvictions are records Sweep dropped: past StaleTTL after they
	// stopped being fresh, their next use would have read the store anyway.
	SweepEvictions uint64
	// ExplicitEvictions are records dropped by Evict (the change journal,
	// the file store's watch, the admin endpoint) or Purge.
	ExplicitEvictions uint64
	// Evictions is the sum of the three.
	Evictions uint64
	// ChangeFeed: a change feed is healthy (Server.ChangeFeed), so records
	// are re-read when changed or at Config.MaxRecordAge, not every
	// FoundTTL.
	ChangeFeed bool
}

// CacheStats returns the cache's current sizes and eviction counts.
func (s *Server) CacheStats() CacheStats {
	c := s.cache
	st := CacheStats{Records: c.found.Len(), Unknown: c.missing.Len(),
		SizeEvictions: c.evictedSize.Load(), SweepEvictions: c.evictedSweep.Load(), ExplicitEvictions: c.evictedExplicit.Load(),
		ChangeFeed: c.feed.healthy(s.cfg.Now())}
	st.Evictions = st.SizeEvictions + st.SweepEvictions + st.ExplicitEvictions
	return st
}

func newCache(cfg *Config, store Store, log *slog.Logger, build func(string, *policy.Record) (*allowParts, error)) (*cache, error) {
	c := &cache{cfg: cfg, store: store, log: log, build: build, warnEvery: rate.Sometimes{Interval: time.Second},
		feed: feed{start: cfg.Now(), seed: maphash.MakeSeed()}}
	// No eviction callback: golang-lru calls it for Remove and Purge too,
	// so each cause is counted where it happens instead.
	found, err := lru.New[string, *entry](cfg.CacheSize)
	if err != nil {
		return nil, err
	}
	missing, err := lru.New[string, time.Time](cfg.NegativeCacheSize)
	if err != nil {
		return nil, err
	}
	c.found, c.missing = found, missing
	if cfg.StoreReadRate >= 0 {
		c.limit = rate.NewLimiter(rate.Limit(cfg.StoreReadRate), cfg.StoreReadBurst)
	}
	return c, nil
}

// peekAt answers from the cache alone, at a time the caller already read.
// read is true when the store must be read (fetch); e is then the expired
// entry, if keyID has one.
func (c *cache) peekAt(keyID string, now time.Time) (e *entry, source Source, reason policy.Reason, read bool) {
	e, ok := c.found.Get(keyID)
	if ok && c.fresh(e, now) {
		return e, SourceHit, e.reason(), false
	}
	if exp, ok := c.missing.Get(keyID); ok && now.Before(exp) {
		return nil, SourceNegative, policy.UnknownKey, false
	}
	if ok && c.usableStale(e, now) && now.UnixNano() < e.nextTry.Load() {
		return e, SourceStale, e.reason(), false
	}
	return e, SourceMiss, policy.StoreUnavailable, true
}

func (e *entry) reason() policy.Reason {
	if e.pol == nil {
		return policy.InvalidRecord
	}
	return policy.Allowed
}

// usableStale: e may be served while the store fails, for StaleTTL past
// the moment it stopped being known current.
func (c *cache) usableStale(e *entry, now time.Time) bool {
	return c.cfg.StaleTTL > 0 && now.Before(c.knownUntil(e).Add(c.cfg.StaleTTL))
}

type fetchResult struct {
	e      *entry
	source Source
	reason policy.Reason
}

// fetch reads keyID from the store once for all concurrent callers. The read
// runs detached from the first caller's context, with its own timeout, so a
// cancelled caller does not fail the others.
func (c *cache) fetch(ctx context.Context, keyID string) (*entry, Source, policy.Reason) {
	keyID = strings.Clone(keyID) // never retain the raw key's memory
	ch := c.flight.DoChan(keyID, func() (res any, _ error) {
		// singleflight re-panics in a new goroutine, which no caller
		// could recover: deny instead of crashing the process.
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("panic in store lookup", "key_id", keyID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				res = fetchResult{nil, SourceMiss, policy.InternalError}
			}
		}()
		return c.load(context.WithoutCancel(ctx), keyID), nil
	})
	select {
	case res := <-ch:
		r := res.Val.(fetchResult)
		return r.e, r.source, r.reason
	case <-ctx.Done():
		return nil, SourceMiss, policy.StoreUnavailable
	}
}

func (c *cache) load(ctx context.Context, keyID string) fetchResult {
	// singleflight joins only reads in progress: a caller that missed
	// while another read was running, and reached fetch after it ended,
	// starts a new flight. What that read cached answers it (eviction and
	// ExpireAll make entries unusable here, so they still cause a read).
	now := c.cfg.Now()
	if e, ok := c.found.Peek(keyID); ok && c.fresh(e, now) {
		return fetchResult{e, SourceHit, e.reason()}
	}
	if exp, ok := c.missing.Peek(keyID); ok && now.Before(exp) {
		return fetchResult{nil, SourceNegative, policy.UnknownKey}
	}
	// Only ids not cached count against the read rate: refreshes of cached
	// ids are bounded by CacheSize/FoundTTL already, and must never be
	// refused, or a flood of unknown ids would keep a revoked key alive
	// on its stale entry.
	if _, cached := c.found.Peek(keyID); !cached && c.limit != nil && !c.limit.AllowN(now, 1) {
		return c.failed(keyID, errStoreReadRate)
	}
	return c.read(ctx, keyID, false)
}

// read reads keyID from the store and caches what it found, unless an
// eviction happened meanwhile; warmed marks an entry read by Warm.
func (c *cache) read(ctx context.Context, keyID string, warmed bool) fetchResult {
	gen := c.generation()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LookupTimeout)
	defer cancel()
	rec, err := c.store.Lookup(ctx, keyID)
	if err == nil && rec.Compiled() == nil {
		err = fmt.Errorf("%w: the store returned no validated record", policy.ErrInvalidRecord)
	}
	now := c.cfg.Now()
	switch {
	case err == nil:
		// Keep only what decisions need: the full record (labels,
		// metadata, source strings) would double each entry's size.
		e := &entry{keyID: keyID, pol: rec.Compiled(), fetched: now, maxAge: c.maxAge(keyID), gen: gen, warmed: warmed}
		if e.allow, err = c.build(keyID, rec); err != nil {
			e.pol, e.invalid = nil, err
			c.log.Warn("key record cannot be served", "key_id", keyID, "err", err)
		}
		c.fill(gen, func() { c.add(keyID, e); c.missing.Remove(keyID) })
		return fetchResult{e, SourceMiss, e.reason()}
	case errors.Is(err, policy.ErrKeyNotFound):
		c.fill(gen, func() { c.found.Remove(keyID); c.missing.Add(keyID, now.Add(c.cfg.NotFoundTTL)) })
		return fetchResult{nil, SourceMiss, policy.UnknownKey}
	case errors.Is(err, policy.ErrInvalidRecord):
		c.log.Warn("invalid key record", "key_id", keyID, "err", err)
		e := &entry{keyID: keyID, invalid: err, fetched: now, maxAge: c.maxAge(keyID), gen: gen}
		c.fill(gen, func() { c.add(keyID, e) })
		return fetchResult{e, SourceMiss, policy.InvalidRecord}
	}
	return c.failed(keyID, err)
}

func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// add caches a found record, counting the record it pushed out, if any.
func (c *cache) add(keyID string, e *entry) {
	if c.found.Add(keyID, e) {
		c.evictedSize.Add(1)
	}
}

// fill writes a read's result unless an eviction happened since it began.
func (c *cache) fill(gen uint64, write func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		write()
	}
}

var errStoreReadRate = errors.New("store read rate exceeded")

// failed handles a store that could not answer: serve the last good entry
// if it is within the stale window, else deny 503. Nothing is cached.
func (c *cache) failed(keyID string, err error) fetchResult {
	now := c.cfg.Now()
	e, ok := c.found.Peek(keyID)
	stale := ok && c.usableStale(e, now)
	c.warnEvery.Do(func() {
		c.log.Warn("store unavailable (at most one such line a second)", "key_id", keyID, "serving_stale", stale, "err", err)
	})
	if stale {
		e.nextTry.Store(now.Add(staleRetry).UnixNano())
		return fetchResult{e, SourceStale, e.reason()}
	}
	return fetchResult{nil, SourceMiss, policy.StoreUnavailable}
}

// evict drops keyID from both caches; a read in flight will not re-add
// what it fetched, and later callers start a fresh read.
func (c *cache) evict(keyID string) {
	c.mu.Lock()
	c.gen++
	if c.found.Remove(keyID) {
		c.evictedExplicit.Add(1)
	}
	c.missing.Remove(keyID)
	c.mu.Unlock()
	c.flight.Forget(keyID)
}

// known reports whether keyID is cached as a usable record (of any age).
func (c *cache) known(keyID string) bool {
	e, ok := c.found.Peek(keyID)
	return ok && e.pol != nil
}

// sweep drops what can no longer be served without a store read, fresh or
// stale: records past the stale window after they stopped being known
// current (see knownUntil; the next Check would re-read them anyway), and
// unknown ids past their expiry. Without it, entries of revoked, expired
// and rotated-out keys would stay until the LRUs are full, so memory would
// follow the cache sizes rather than the keys in use. A record the change
// feed keeps fresh stays: sweeping it would make its next use a miss, held
// to StoreReadRate.
func (c *cache) sweep(now time.Time) (records, unknown int) {
	stale := max(c.cfg.StaleTTL, 0)
	for _, id := range c.found.Keys() {
		if e, ok := c.found.Peek(id); ok && !now.Before(c.knownUntil(e).Add(stale)) && c.found.Remove(id) {
			records++
		}
	}
	c.evictedSweep.Add(uint64(records))
	for _, id := range c.missing.Keys() {
		if exp, ok := c.missing.Peek(id); ok && !now.Before(exp) {
			c.missing.Remove(id)
			unknown++
		}
	}
	return records, unknown
}

// purgeMissing drops every cached not-found id (keys were added).
func (c *cache) purgeMissing() {
	c.mu.Lock()
	c.gen++
	c.missing.Purge()
	c.mu.Unlock()
}

// expireAll makes every cached record stale and forgets the unknown ids.
// A record is re-read on its next use, but stays cached until then: a
// known id (its refresh is not held to StoreReadRate), served stale if the
// store fails within FoundTTL+StaleTTL of its read. A read in flight does
// not write its result (it may predate the change that made the caller
// expire everything).
func (c *cache) expireAll() {
	c.mu.Lock()
	c.gen++
	c.expired.Store(c.gen)
	c.missing.Purge()
	c.mu.Unlock()
}

// purge drops everything. Records are removed one by one to count exactly
// those dropped here, not ones a concurrent sweep took.
func (c *cache) purge() {
	c.mu.Lock()
	c.gen++
	for _, id := range c.found.Keys() {
		if c.found.Remove(id) {
			c.evictedExplicit.Add(1)
		}
	}
	c.missing.Purge()
	c.mu.Unlock()
}
