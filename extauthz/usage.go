package extauthz

import (
	"sync"
	"sync/atomic"
	"time"
)

// usage notes which keys were presented with their correct secret, for the
// last-used write-back (keygate keys list --unused-for). Check pays one
// atomic load when the key was already noted in this period; the first use
// of a key in a period takes a lock to add it to the pending set. Nothing
// here does I/O: the owner of the Server drains the set with TakeUsage.
type usage struct {
	period atomic.Uint32 // 0: tracking off; otherwise the current period

	mu      sync.Mutex
	pending map[string]time.Time // key id → first use seen this period
	limit   int
	dropped uint64 // uses not held because pending was full, since the last take
}

func newUsage(on bool, limit int) *usage {
	u := &usage{limit: limit}
	if on {
		u.period.Store(1)
		u.pending = make(map[string]time.Time)
	}
	return u
}

// note records a use of e's key at now, at most once per entry per period.
func (u *usage) note(e *entry, now time.Time) {
	p := u.period.Load()
	if p == 0 {
		return
	}
	old := e.noted.Load()
	if old == p || !e.noted.CompareAndSwap(old, p) {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.pending[e.keyID]; ok {
		return // a refetched entry of a key already noted this period
	}
	if len(u.pending) >= u.limit {
		u.dropped++
		return
	}
	u.pending[e.keyID] = now
}

// take returns the pending uses and the count dropped, and starts a new
// period, in which every key is noted afresh.
func (u *usage) take() (map[string]time.Time, uint64) {
	if u.period.Load() == 0 {
		return nil, 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	got, dropped := u.pending, u.dropped
	u.pending, u.dropped = make(map[string]time.Time, len(got)), 0
	next := u.period.Load() + 1
	if next == 0 {
		next = 1 // 0 means off
	}
	u.period.Store(next)
	return got, dropped
}

// TakeUsage returns, for each key presented with its correct secret since
// the previous call, the time of its first such use in that period, and how
// many uses were not held because Config.CacheSize ids were already
// pending. It returns nil when Config.TrackUsage is off.
func (s *Server) TakeUsage() (map[string]time.Time, uint64) { return s.usage.take() }
