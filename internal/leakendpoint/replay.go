package leakendpoint

import (
	"sync"
	"time"
)

// replayGuard remembers the reports it let through, by the SHA-256 of
// their body, for a window and up to a number of entries (the oldest are
// forgotten first). The body, not the signature, is the key: ECDSA
// signatures are malleable ((r, s) and (r, n-s) both verify), so a replay
// with a re-encoded signature is still a replay.
type replayGuard struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	seen  map[[32]byte]time.Time
	order []seenAt // oldest first; may name entries forgotten since
}

type seenAt struct {
	sum [32]byte
	at  time.Time
}

func newReplayGuard(window time.Duration, max int) *replayGuard {
	return &replayGuard{window: window, max: max, seen: map[[32]byte]time.Time{}}
}

// admit reports whether sum is new (within the window), and remembers it.
func (g *replayGuard) admit(sum [32]byte, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.order) > 0 && (len(g.order) >= g.max || now.Sub(g.order[0].at) >= g.window) {
		g.drop(g.order[0])
		g.order = g.order[1:]
	}
	if _, ok := g.seen[sum]; ok {
		return false
	}
	g.seen[sum] = now
	g.order = append(g.order, seenAt{sum, now})
	return true
}

// forget lets sum through again: its report failed (the store could not
// answer), so GitHub's retry must not be taken for a replay.
func (g *replayGuard) forget(sum [32]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.seen, sum)
}

func (g *replayGuard) drop(e seenAt) {
	if at, ok := g.seen[e.sum]; ok && at.Equal(e.at) {
		delete(g.seen, e.sum)
	}
}

func (g *replayGuard) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}
