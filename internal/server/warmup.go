package server

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/extauthz"
)

// HotKeys is a store that keeps, for every replica, the ids of the keys the
// replicas served lately (Vault: the hot/<n> slots). A starting replica
// loads those records before it reports SERVING, so that a rolling deploy
// does not answer valid keys 503 while --store-read-rate holds back a cold
// cache's misses. The file store has no such ability and needs none: every
// record is in memory.
type HotKeys interface {
	// HotKeys returns the ids recorded as served at or after since, most
	// recent first; with an error, the ids it could read.
	HotKeys(ctx context.Context, since time.Time) ([]string, error)
	// RecordHotKeys merges ids, served by this replica up to now, into
	// what the replicas share, dropping ids not served within keep; it
	// returns how many entries it wrote.
	RecordHotKeys(ctx context.Context, ids []string, now time.Time, keep time.Duration) (int, error)
}

// Bounds of the warm-up and of recording the hot keys.
const (
	// hotKeep is how long an id stays in the shared hot keys after a
	// replica last reported serving it: a working set of the keys used
	// within about this long. Config.HotKeysInterval is at most a third
	// of it, so a key in steady use never drops out.
	hotKeep = 15 * time.Minute
	// hotRecordTimeout bounds one recording of the hot keys (up to
	// vault.HotSlots reads and writes, each within --vault-timeout); not
	// the interval, which may be as short as a second.
	hotRecordTimeout = 30 * time.Second
	// warmReaders is how many records a warm-up reads at once (each
	// within --lookup-timeout, all within --store-read-rate).
	warmReaders = 8
	// A reader pauses after a failed read (doubling up to the maximum, which
	// is also the pause between passes), so a failing store is not hammered
	// until the deadline.
	warmMinBackoff, warmMaxBackoff = 50 * time.Millisecond, time.Second
	// warmPasses bounds the passes over ids whose read failed.
	warmPasses = 10
)

// warmStats is how a warm-up ended.
type warmStats struct {
	ids                             int // ids in the working set (at most the cache size)
	loaded, unknown, failed, missed int // missed: not tried before the deadline
	took                            time.Duration
	deadline                        bool // the deadline ended it
}

// warmUp loads the working set other replicas recorded (hot) into srv's
// cache, warmReaders records at a time within the store read rate, and
// returns when every id is cached or known to be unknown, when failed reads
// have been retried warmPasses times, or when timeout has passed since it
// started.
// It first waits for the change journal's first read (journalRead): that
// read expires every record cached before it, which would spend the store
// reads twice.
func warmUp(ctx context.Context, log *slog.Logger, hot HotKeys, srv *extauthz.Server, journalRead <-chan struct{}, timeout time.Duration, max int) warmStats {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case <-journalRead:
	case <-ctx.Done():
	}
	ids, err := hot.HotKeys(ctx, start.Add(-hotKeep))
	if err != nil {
		log.Warn("cannot read every hot-key slot; warming up with the ids read", "ids", len(ids), "err", err)
	}
	st := warmStats{ids: min(len(ids), max)}
	loadAll(ctx, srv, ids[:st.ids], &st)
	st.took, st.deadline = time.Since(start), ctx.Err() != nil
	return st
}

// loadAll reads ids into srv's cache until every id is loaded or known to
// be unknown, or ctx ends, counting the results in st. Ids whose read
// failed (the store is failing or slow) are tried again, after a pause,
// for at most warmPasses passes: a brief store outage at start must not
// leave the replica cold.
func loadAll(ctx context.Context, srv *extauthz.Server, ids []string, st *warmStats) {
	pending := ids
	for pass := range warmPasses {
		loaded, unknown, failed, untried := loadPass(ctx, srv, pending)
		st.loaded, st.unknown = st.loaded+loaded, st.unknown+unknown
		if pass == 0 {
			st.missed, st.failed = len(untried), len(failed)
		} else {
			st.failed = len(failed) + len(untried) // each had failed before
		}
		if len(failed) == 0 || ctx.Err() != nil {
			return
		}
		pending = failed
		if pause(ctx, warmMaxBackoff); ctx.Err() != nil {
			return
		}
	}
}

// loadPass reads ids with warmReaders readers until every id is tried or
// ctx ends, and returns the counts of loaded and unknown ids, the ids whose
// read failed and those not tried.
func loadPass(ctx context.Context, srv *extauthz.Server, ids []string) (loaded, unknown int, failed, untried []string) {
	var mu sync.Mutex
	next := make(chan string)
	var wg sync.WaitGroup
	for range warmReaders {
		wg.Go(func() {
			backoff := warmMinBackoff
			for id := range next {
				r, _ := srv.Warm(ctx, id)
				mu.Lock()
				switch r {
				case extauthz.WarmLoaded, extauthz.WarmCached:
					loaded++
				case extauthz.WarmUnknown:
					unknown++
				default:
					failed = append(failed, id)
				}
				mu.Unlock()
				if r == extauthz.WarmFailed {
					pause(ctx, backoff) // the store is failing or slow: no hammering
					backoff = min(2*backoff, warmMaxBackoff)
				} else {
					backoff = warmMinBackoff
				}
			}
		})
	}
	sent := 0
feed:
	for ; sent < len(ids) && ctx.Err() == nil; sent++ { // select picks at random among ready cases
		select {
		case next <- ids[sent]:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return loaded, unknown, failed, ids[sent:]
}

// logWarmUp reports how the warm-up ended: at info when it loaded the
// working set, at warn when the deadline cut it short or reads failed.
func logWarmUp(log *slog.Logger, st warmStats) {
	attrs := []any{"keys", st.ids, "loaded", st.loaded, "unknown", st.unknown, "failed", st.failed,
		"not_tried", st.missed, "took", st.took.Round(time.Millisecond).String()}
	switch {
	case st.deadline:
		log.Warn("warm-up deadline (--warmup-timeout) reached: serving with part of the working set loaded", attrs...)
	case st.failed > 0:
		log.Warn("warm-up done; some records could not be read (they are read on their first Check)", attrs...)
	default:
		log.Info("warm-up done", attrs...)
	}
}

// recordHotKeys writes, about every interval (jittered so replicas do not
// all write at once), the ids of the keys srv's Checks used lately into
// the store's hot keys, until ctx ends. A failure is logged once until a
// round succeeds again.
func recordHotKeys(ctx context.Context, log *slog.Logger, hot HotKeys, srv *extauthz.Server, every time.Duration, max int) {
	t := time.NewTimer(jitter(every))
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := srv.RecentKeys(max)
		rctx, cancel := context.WithTimeout(ctx, hotRecordTimeout)
		written, err := hot.RecordHotKeys(rctx, ids, time.Now(), hotKeep)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.Warn("cannot record the hot keys (starting replicas warm up from them); retrying every --hot-keys-interval", "err", err)
			failing = true
		case err == nil:
			failing = false
		}
		log.Debug("recorded hot keys", "keys", len(ids), "slots_written", written)
		t.Reset(jitter(every))
	}
}

// jitter is d ± 25%.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// readiness reports SERVING once each of its parts is ready.
type readiness struct {
	left  atomic.Int32
	ready func()
}

func newReadiness(parts int, ready func()) *readiness {
	r := &readiness{ready: ready}
	r.left.Store(int32(parts))
	return r
}

// done marks one part ready; call it once per part.
func (r *readiness) done() {
	if r.left.Add(-1) == 0 {
		r.ready()
	}
}

// firstRead wraps a change journal so that read closes once its first
// read has returned, successfully or not.
type firstRead struct {
	Journal
	once sync.Once
	read chan struct{}
}

func (f *firstRead) JournalSince(ctx context.Context, after int) ([]JournalEntry, int, bool, error) {
	defer f.once.Do(func() { close(f.read) })
	return f.Journal.JournalSince(ctx, after)
}

// gateJournal returns j wrapped so that the returned channel closes after
// its first read (the warm-up waits for it), or, when no journal is
// polled, j and a closed channel.
func gateJournal(j Journal, poll time.Duration) (Journal, <-chan struct{}) {
	if j == nil || poll <= 0 {
		ch := make(chan struct{})
		close(ch)
		return j, ch
	}
	f := &firstRead{Journal: j, read: make(chan struct{})}
	return f, f.read
}

// warmupTasks are the warm-up and the hot-key recording, for a store with
// hot keys, and the readiness function the peppers task reports to: it
// says SERVING once the peppers are loaded and, with a warm-up, once the
// warm-up has ended.
func (s *Server) warmupTasks(loggedIn gate) ([]task, func()) {
	hot := s.deps.HotKeys
	if hot == nil {
		return nil, s.setReady
	}
	var ts []task
	ready := s.setReady
	if s.cfg.WarmupTimeout > 0 {
		r := newReadiness(2, s.setReady)
		ready = r.done
		ts = append(ts, task{name: "warm-up", after: []gate{loggedIn}, run: func(ctx context.Context) error {
			st := warmUp(ctx, s.log, hot, s.check, s.journalRead, s.cfg.WarmupTimeout, s.cfg.Check.CacheSize)
			if ctx.Err() != nil {
				return nil // shutting down: never SERVING now
			}
			logWarmUp(s.log, st)
			s.obs.warmedUp(st.loaded, st.unknown, st.failed, st.missed, st.took)
			r.done()
			return nil
		}})
	}
	if s.cfg.HotKeysInterval > 0 {
		ts = append(ts, task{name: "hot-keys", after: []gate{loggedIn}, run: func(ctx context.Context) error {
			recordHotKeys(ctx, s.log, hot, s.check, s.cfg.HotKeysInterval, s.cfg.Check.CacheSize)
			return nil
		}})
	}
	return ts, ready
}
