package extauthz

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/keygate/keygate/policy"
)

// WarmResult says what Warm did with one key id.
type WarmResult uint8

// Warm results.
const (
	// WarmLoaded: a usable record was read and cached.
	WarmLoaded WarmResult = iota
	// WarmCached: the id was cached already (a Check read it first); no read.
	WarmCached
	// WarmUnknown: the store has no usable record for the id (not found or
	// invalid), cached as a Check's read would have cached it; also an id
	// that is not a key id, without a read.
	WarmUnknown
	// WarmFailed: the store could not answer, or ctx ended; nothing was
	// cached.
	WarmFailed
)

// String is the result's name, for logs.
func (r WarmResult) String() string {
	switch r {
	case WarmLoaded:
		return "loaded"
	case WarmCached:
		return "cached"
	case WarmUnknown:
		return "unknown"
	}
	return "failed"
}

// Warm reads keyID's record into the cache before any Check asks for it (a
// new replica's warm-up), as a cache miss would: one read shared with any
// concurrent Check of the same id, LookupTimeout, nothing cached if an
// eviction happens meanwhile, transient errors never cached. The entry is
// an ordinary one, fetched now. Unlike a miss on the Check path, which is
// denied when StoreReadRate is spent, Warm waits for its share of the rate
// (or for ctx to end): a warm-up spends the same budget as misses do, so it
// never makes a replica read the store faster than StoreReadRate. An id
// already cached is not read again. The error is non-nil exactly for
// WarmFailed.
func (s *Server) Warm(ctx context.Context, keyID string) (WarmResult, error) {
	return s.cache.warm(ctx, keyID)
}

func (c *cache) warm(ctx context.Context, keyID string) (WarmResult, error) {
	if err := ctx.Err(); err != nil { // the read itself would run detached
		return WarmFailed, err
	}
	if !policy.ValidID(keyID) {
		return WarmUnknown, nil
	}
	if _, ok := c.found.Peek(keyID); ok {
		return WarmCached, nil
	}
	if err := c.waitRead(ctx); err != nil {
		return WarmFailed, err
	}
	ch := c.flight.DoChan(keyID, func() (res any, _ error) {
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("panic in store lookup", "key_id", keyID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				res = fetchResult{nil, SourceMiss, policy.InternalError}
			}
		}()
		return c.read(context.WithoutCancel(ctx), keyID, true), nil
	})
	var r fetchResult
	select {
	case res := <-ch:
		r = res.Val.(fetchResult)
	case <-ctx.Done():
		return WarmFailed, ctx.Err()
	}
	switch {
	case r.source == SourceMiss && r.reason == policy.Allowed:
		return WarmLoaded, nil
	case r.reason == policy.UnknownKey || r.reason == policy.InvalidRecord:
		return WarmUnknown, nil
	}
	return WarmFailed, fmt.Errorf("key %s: %w", keyID, errWarmRead)
}

// errWarmRead: the store did not answer a warm-up read (see the log).
var errWarmRead = errors.New("the store could not be read")

// waitRead takes one token of StoreReadRate, waiting for it until ctx
// ends. The reservation is made at the injected clock's time, as the
// Check path's AllowN is, so both share one bucket on one clock.
func (c *cache) waitRead(ctx context.Context) error {
	if c.limit == nil {
		return nil
	}
	now := c.cfg.Now()
	r := c.limit.ReserveN(now, 1)
	if !r.OK() {
		return errStoreReadRate // a burst under 1, which Validate refuses
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.CancelAt(c.cfg.Now())
		return ctx.Err()
	}
}

// RecentKeys returns the ids of at most max keys whose records this server
// holds as usable because Checks asked for them (not those only Warm read
// and no Check has refreshed since), most recently used first: the working
// set a new replica should warm up with. Records stay cached for at most
// FoundTTL+StaleTTL after their last read (see Sweep), so these are the
// keys used within about that long. Ids only: a raw key is never cached.
func (s *Server) RecentKeys(max int) []string {
	c := s.cache
	ids := c.found.Keys() // least recently used first
	out := make([]string, 0, min(len(ids), max))
	for i := len(ids) - 1; i >= 0 && len(out) < max; i-- {
		if e, ok := c.found.Peek(ids[i]); ok && e.pol != nil && !e.warmed {
			out = append(out, ids[i])
		}
	}
	return out
}
