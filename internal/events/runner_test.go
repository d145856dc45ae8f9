package events

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
)

// losable is a Coordinator whose lease can be taken away.
type losable struct {
	*FileCoordinator
	lost atomic.Bool
}

func (l *losable) AcquireEventsLease(ctx context.Context, h string, now time.Time, ttl time.Duration) (bool, error) {
	if l.lost.Load() {
		return false, nil
	}
	return l.FileCoordinator.AcquireEventsLease(ctx, h, now, ttl)
}

func start(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// TestFileStoreFailover: two runners on one key file: the flock lets one
// send; when it stops, the other takes over from the saved state, and
// every change is delivered (a repeat only with the same id).
func TestFileStoreFailover(t *testing.T) {
	fs, path := newFileStore(t)
	svc := newService(t, fs, nil)
	rcv := newReceiver(t, nil)
	m1, m2 := NewMetrics(1), NewMetrics(1)
	cfg := testConfig(rcv.webhook(t))
	cfg.Metrics = m1
	r1, err := New(cfg, svc, NewFileCoordinator(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m2
	r2, err := New(cfg, svc, NewFileCoordinator(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	leader := func(m *Metrics) bool { return counter(t, m, "keygate_events_leader", nil) == 1 }
	stop1 := start(t, r1)
	eventually(t, 5*time.Second, "r1 sends", func() bool { return leader(m1) })
	start(t, r2)
	a := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	eventually(t, 5*time.Second, "key.created", func() bool { return len(rcv.events()) == 1 })
	if leader(m2) {
		t.Fatal("both send")
	}
	stop1()
	eventually(t, 5*time.Second, "r2 sends", func() bool { return leader(m2) })
	if _, err := svc.Revoke(context.Background(), a.ID, LeakedReason); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "key.leaked", func() bool {
		evs := rcv.events()
		return len(evs) > 0 && evs[len(evs)-1].Type == KeyLeaked
	})
	ids := map[Type]string{}
	for _, ev := range rcv.events() {
		if id, ok := ids[ev.Type]; ok && id != ev.ID {
			t.Errorf("%s sent with two ids", ev.Type)
		}
		ids[ev.Type] = ev.ID
	}
	if len(ids) != 2 || len(rcv.failures()) > 0 {
		t.Errorf("events %v, failures %v", ids, rcv.failures())
	}
}

// TestLeaseLostStopsSending: a sender whose lease is taken stops at once:
// the event at the head of its queue (its receiver failing) is never sent
// again, and nothing after it.
func TestLeaseLostStopsSending(t *testing.T) {
	fs, path := newFileStore(t)
	svc := newService(t, fs, nil)
	var failing atomic.Bool
	failing.Store(true)
	rcv := newReceiver(t, func(int) int {
		if failing.Load() {
			return 503
		}
		return 204
	})
	m := NewMetrics(1)
	cfg := testConfig(rcv.webhook(t))
	cfg.Metrics, cfg.MaxAttempts, cfg.LeaseTTL = m, 1000, 600*time.Millisecond
	coord := &losable{FileCoordinator: NewFileCoordinator(path)}
	r, err := New(cfg, svc, coord, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	eventually(t, 5*time.Second, "sending", func() bool { return counter(t, m, "keygate_events_leader", nil) == 1 })
	issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	eventually(t, 5*time.Second, "retrying", func() bool { return len(rcv.requests()) >= 2 })
	coord.lost.Store(true)
	eventually(t, 5*time.Second, "the sender stops", func() bool { return counter(t, m, "keygate_events_leader", nil) == 0 })
	time.Sleep(100 * time.Millisecond) // an attempt cancelled on the wire may still reach the handler
	n := len(rcv.requests())
	failing.Store(false)
	time.Sleep(300 * time.Millisecond)
	if got := len(rcv.requests()); got != n {
		t.Errorf("%d requests after the lease was lost", got-n)
	}
}
