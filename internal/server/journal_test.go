package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// scriptJournal is an empty journal at version 1 whose reads fail while
// down is set, or report a gap while gap is.
type scriptJournal struct {
	mu        sync.Mutex
	down, gap bool
}

func (j *scriptJournal) JournalSince(_ context.Context, after int) ([]JournalEntry, int, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.down:
		return nil, after, false, errors.New("vault: 403 permission denied")
	case j.gap:
		return nil, 1, false, nil
	}
	return nil, 1, true, nil
}

func (j *scriptJournal) set(f func(j *scriptJournal)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(j)
}

// TestJournalChangeFeed: each successful read (complete or not) makes the
// journal a healthy change feed for the Check cache; reads failing for a
// few polls make it unhealthy (records fall back to --found-ttl); the next
// successful read makes it healthy again.
func TestJournalChangeFeed(t *testing.T) {
	kf := newKeyFile(t, 1)
	hasher, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	srv, err := extauthz.NewServer(extauthz.DefaultConfig(), kf.fs, hasher, discard)
	if err != nil {
		t.Fatal(err)
	}
	if srv.CacheStats().ChangeFeed {
		t.Fatal("a change feed before the journal was read")
	}
	j := &scriptJournal{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchJournal(ctx, discard, j, srv, 20*time.Millisecond, &observability{})
	}()
	defer func() { cancel(); <-done }()
	healthy := func() bool { return srv.CacheStats().ChangeFeed }

	eventually(t, "healthy after the first read", healthy)
	j.set(func(j *scriptJournal) { j.down = true })
	eventually(t, "unhealthy once reads fail", func() bool { return !healthy() })
	j.set(func(j *scriptJournal) { j.down, j.gap = false, true })
	eventually(t, "healthy after a read that found a gap", healthy)
}
