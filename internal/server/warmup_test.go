package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/policy"
)

// slowStore is a file store whose lookups are counted, can be held,
// delayed or failed, and whose concurrency is measured.
type slowStore struct {
	*filestore.Store
	delay time.Duration
	hold  chan struct{} // when set, lookups wait for it to close
	fail  atomic.Bool

	reads, inflight, maxInflight atomic.Int32
}

func (s *slowStore) Lookup(ctx context.Context, keyID string) (*policy.Record, error) {
	s.reads.Add(1)
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for m := s.maxInflight.Load(); n > m && !s.maxInflight.CompareAndSwap(m, n); m = s.maxInflight.Load() {
	}
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-ctx.Done():
		}
	}
	if s.delay > 0 {
		pause(ctx, s.delay)
	}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case s.fail.Load():
		return nil, errors.New("vault: 503 sealed")
	}
	return s.Store.Lookup(ctx, keyID)
}

// fakeHot is a store's hot keys: ids to warm up with, and what the server
// recorded.
type fakeHot struct {
	ids []string
	err error

	mu       sync.Mutex
	recorded [][]string
}

func (h *fakeHot) HotKeys(context.Context, time.Time) ([]string, error) { return h.ids, h.err }

func (h *fakeHot) RecordHotKeys(_ context.Context, ids []string, _ time.Time, _ time.Duration) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recorded = append(h.recorded, ids)
	return 1, nil
}

func (h *fakeHot) lastRecorded() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.recorded) == 0 {
		return nil
	}
	return h.recorded[len(h.recorded)-1]
}

func jsonLog(buf *syncBuf) *slog.Logger { return slog.New(slog.NewJSONHandler(buf, nil)) }

func warmConfig(timeout time.Duration) Config {
	cfg := testConfig()
	cfg.WarmupTimeout, cfg.HotKeysInterval = timeout, 0
	return cfg
}

// Health stays NOT_SERVING while the working set loads, at most
// warmReaders records at a time; once SERVING, every key of it is answered
// from the cache (no further store read), and unknown ids were read once.
func TestWarmUpBeforeServing(t *testing.T) {
	kf := newKeyFile(t, 40)
	store := &slowStore{Store: kf.fs, hold: make(chan struct{})}
	unknown := []string{"Unknown00001", "Unknown00002"}
	hot := &fakeHot{ids: append(slices.Clone(kf.ids), unknown...)}
	var logs syncBuf
	r := startServer(t, warmConfig(10*time.Second), Deps{Log: jsonLog(&logs), Store: store, HotKeys: hot})

	eventually(t, "warmReaders reads in flight", func() bool { return store.inflight.Load() == warmReaders })
	time.Sleep(50 * time.Millisecond) // room for a reader too many to show up
	if st := r.health(t); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health during the warm-up: %v, want NOT_SERVING", st)
	}
	close(store.hold)
	eventually(t, "SERVING after the warm-up", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	if m := store.maxInflight.Load(); m != warmReaders {
		t.Errorf("%d reads in flight at most, want %d", m, warmReaders)
	}
	if n := store.reads.Load(); n != int32(len(hot.ids)) {
		t.Errorf("warm-up made %d store reads, want one per id (%d)", n, len(hot.ids))
	}
	for i, raw := range kf.raw {
		if got := r.decide(t, raw); got != "allowed" {
			t.Fatalf("key %d after the warm-up: %s", i, got)
		}
	}
	if n := store.reads.Load(); n != int32(len(hot.ids)) {
		t.Errorf("%d store reads after serving the working set, want none beyond the warm-up's %d", n, len(hot.ids))
	}
	if out := logs.String(); !strings.Contains(out, `"msg":"warm-up done","keys":42,"loaded":40,"unknown":2,"failed":0,"not_tried":0`) {
		t.Errorf("no warm-up summary in the logs:\n%s", out)
	}
}

// The deadline ends the warm-up: SERVING then, not earlier and not much
// later, with what was loaded, and the rest counted as not tried.
func TestWarmUpDeadline(t *testing.T) {
	kf := newKeyFile(t, 100)
	store := &slowStore{Store: kf.fs, delay: 100 * time.Millisecond} // 100 ids / 8 readers: ~1.3 s
	const timeout = 300 * time.Millisecond
	var logs syncBuf
	start := time.Now()
	r := startServer(t, warmConfig(timeout), Deps{Log: jsonLog(&logs), Store: store, HotKeys: &fakeHot{ids: kf.ids}})
	eventually(t, "SERVING at the deadline", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	if took := time.Since(start); took < timeout {
		t.Errorf("SERVING after %s, before the %s deadline", took, timeout)
	}
	if out := logs.String(); !strings.Contains(out, "warm-up deadline (--warmup-timeout) reached") || strings.Contains(out, `"not_tried":0,`) {
		t.Errorf("logs do not say the deadline cut the warm-up short:\n%s", out)
	}
	if got := r.decide(t, kf.raw[99]); got != "allowed" { // not loaded: read on its Check
		t.Errorf("a key the warm-up did not reach: %s", got)
	}
}

// A failing store: SERVING once the deadline passes, nothing cached (no
// record, no unknown id), and keys work once the store answers.
func TestWarmUpStoreFailing(t *testing.T) {
	kf := newKeyFile(t, 20)
	store := &slowStore{Store: kf.fs}
	store.fail.Store(true)
	const timeout = 400 * time.Millisecond
	var logs syncBuf
	start := time.Now()
	r := startServer(t, warmConfig(timeout), Deps{Log: jsonLog(&logs), Store: store, HotKeys: &fakeHot{ids: kf.ids}})
	eventually(t, "SERVING at the deadline", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	if took := time.Since(start); took < timeout {
		t.Errorf("SERVING after %s with the store failing, before the %s deadline", took, timeout)
	}
	if st := r.check.CacheStats(); st.Records != 0 || st.Unknown != 0 {
		t.Errorf("cache after a failed warm-up: %+v, want empty", st)
	}
	if n := store.reads.Load(); n > 20 {
		t.Errorf("%d reads of a failing store for 20 ids in %s: want each tried once (the next pass waits %s)", n, timeout, warmMaxBackoff)
	}
	if out := logs.String(); !strings.Contains(out, "warm-up deadline") {
		t.Errorf("logs do not report the warm-up's end:\n%s", out)
	}
	if got := r.decide(t, kf.raw[0]); got != "store_unavailable" {
		t.Errorf("a key while the store fails: %s, want store_unavailable", got)
	}
	store.fail.Store(false)
	if got := r.decide(t, kf.raw[1]); got != "allowed" {
		t.Errorf("a key once the store answers: %s", got)
	}
}

// Reads that fail while the store recovers are tried again: the warm-up
// still loads the whole working set within its deadline.
func TestWarmUpRetriesFailedReads(t *testing.T) {
	kf := newKeyFile(t, 20)
	store := &slowStore{Store: kf.fs}
	store.fail.Store(true)
	var logs syncBuf
	r := startServer(t, warmConfig(20*time.Second), Deps{Log: jsonLog(&logs), Store: store, HotKeys: &fakeHot{ids: kf.ids}})
	eventually(t, "failed reads", func() bool { return store.reads.Load() >= 10 })
	store.fail.Store(false)
	eventually(t, "SERVING", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	if out := logs.String(); !strings.Contains(out, `"msg":"warm-up done","keys":20,"loaded":20,"unknown":0,"failed":0,"not_tried":0`) {
		t.Errorf("warm-up did not load every key after the store recovered:\n%s", out)
	}
	reads := store.reads.Load()
	for _, raw := range kf.raw {
		if got := r.decide(t, raw); got != "allowed" {
			t.Fatal(got)
		}
	}
	if n := store.reads.Load(); n != reads {
		t.Errorf("%d store reads after SERVING, want none", n-reads)
	}
}

// blockedJournal holds its first read until released.
type blockedJournal struct {
	release chan struct{}
	reads   atomic.Int32
}

func (j *blockedJournal) JournalSince(ctx context.Context, _ int) ([]JournalEntry, int, bool, error) {
	if j.reads.Add(1) == 1 {
		select {
		case <-j.release:
		case <-ctx.Done():
			return nil, 0, false, ctx.Err()
		}
	}
	return nil, 0, true, nil
}

// The warm-up starts after the journal's first read, which expires every
// record cached before it: its records are then fresh, not re-read.
func TestWarmUpAfterJournal(t *testing.T) {
	kf := newKeyFile(t, 10)
	store := &slowStore{Store: kf.fs}
	j := &blockedJournal{release: make(chan struct{})}
	cfg := warmConfig(10 * time.Second)
	cfg.JournalPoll = time.Hour
	r := startServer(t, cfg, Deps{Log: discard, Store: store, HotKeys: &fakeHot{ids: kf.ids}, Journal: j})
	eventually(t, "the journal's first read", func() bool { return j.reads.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := store.reads.Load(); n != 0 {
		t.Fatalf("%d record reads before the journal's first read returned", n)
	}
	close(j.release)
	eventually(t, "SERVING", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	for _, raw := range kf.raw {
		if got := r.decide(t, raw); got != "allowed" {
			t.Fatalf("warmed key: %s", got)
		}
	}
	if n := store.reads.Load(); n != 10 {
		t.Errorf("%d record reads, want the warm-up's 10 (none expired by the journal's first read)", n)
	}
}

// --warmup-timeout 0, or a store without hot keys (the file store): no
// warm-up, SERVING once the peppers are loaded, no record read.
func TestWarmUpOff(t *testing.T) {
	kf := newKeyFile(t, 5)
	for name, deps := range map[string]func(*slowStore) Deps{
		"timeout 0":   func(s *slowStore) Deps { return Deps{Log: discard, Store: s, HotKeys: &fakeHot{ids: kf.ids}} },
		"no hot keys": func(s *slowStore) Deps { return Deps{Log: discard, Store: s} },
	} {
		t.Run(name, func(t *testing.T) {
			store := &slowStore{Store: kf.fs}
			timeout := 10 * time.Second
			if name == "timeout 0" {
				timeout = 0
			}
			r := startServer(t, warmConfig(timeout), deps(store))
			eventually(t, "SERVING", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
			if n := store.reads.Load(); n != 0 {
				t.Errorf("%d record reads without a warm-up", n)
			}
		})
	}
}

// Each replica records the keys its Checks used, not those only its
// warm-up read.
func TestRecordHotKeys(t *testing.T) {
	kf := newKeyFile(t, 4)
	hot := &fakeHot{ids: kf.ids[3:]} // the warm-up reads the last key only
	cfg := warmConfig(10 * time.Second)
	cfg.HotKeysInterval = time.Second
	r := startServer(t, cfg, Deps{Log: discard, Store: kf.fs, HotKeys: hot})
	eventually(t, "SERVING", func() bool { return r.health(t) == healthpb.HealthCheckResponse_SERVING })
	for _, raw := range kf.raw[:3] {
		if got := r.decide(t, raw); got != "allowed" {
			t.Fatal(got)
		}
	}
	want := slices.Sorted(slices.Values(kf.ids[:3]))
	eventually(t, "the used keys recorded", func() bool {
		return slices.Equal(slices.Sorted(slices.Values(hot.lastRecorded())), want)
	})
}
