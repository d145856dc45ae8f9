package events

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestSignVector: the Standard Webhooks libraries' published test vector.
func TestSignVector(t *testing.T) {
	s, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if fmt.Sprint(s) != "whsec_<redacted>" || fmt.Sprintf("%#v", s) != "whsec_<redacted>" || fmt.Sprintf("%+v", s) == "" {
		t.Errorf("a Secret prints its key: %v %#v", s, s)
	}
}

func TestParseSecretRejects(t *testing.T) {
	for _, in := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!", "whsec_c2hvcnQ=",
		"whsec_" + strings.Repeat("QUFB", 30)} {
		if _, err := ParseSecret(in); err == nil {
			t.Errorf("ParseSecret(%q): no error", in)
		} else if len(in) > 10 && strings.Contains(err.Error(), in[6:]) {
			t.Errorf("the error holds the secret: %v", err)
		}
	}
}

// deliverAll queues evs for one sender and waits until each is settled.
func deliverAll(t *testing.T, cfg Config, hook Webhook, m *Metrics, evs ...Event) {
	t.Helper()
	s := newSender(0, hook, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	tk := newTicket(len(evs))
	for _, ev := range evs {
		body, _ := ev.Marshal()
		s.enqueue(item{ev: ev, body: body, t: tk})
	}
	wg.Go(func() { s.run(ctx) })
	select {
	case <-tk.done:
	case <-time.After(10 * time.Second):
		t.Fatal("events not settled within 10s")
	}
}

func testEvent(n int) Event {
	return newEvent(KeyRevoked, fmt.Sprintf("AbCdEf%06d", n), "j1", t0, nil, time.Time{}, t0)
}

func counter(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(metric)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestRetryThenSuccess: 500s are retried with backoff, with the same
// webhook-id each time, until the receiver accepts; 429 with Retry-After
// waits at least that long.
func TestRetryThenSuccess(t *testing.T) {
	rcv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	m := NewMetrics(1)
	cfg := testConfig()
	deliverAll(t, cfg, rcv.webhook(t), m, testEvent(1))
	reqs := rcv.requests()
	if len(reqs) != 3 || reqs[0] != reqs[1] || reqs[1] != reqs[2] {
		t.Fatalf("requests %v: want three with one webhook-id", reqs)
	}
	if got := rcv.events(); len(got) != 1 || got[0].ID != reqs[0] {
		t.Fatalf("accepted %v", got)
	}
	if n := counter(t, m, "keygate_events_delivered_total", map[string]string{"webhook": "0", "type": "key.revoked"}); n != 1 {
		t.Errorf("delivered_total = %v, want 1", n)
	}

	slow := newReceiver(t, nil)
	slow.answer = func(n int) int {
		if n == 1 {
			return http.StatusTooManyRequests
		}
		return http.StatusNoContent
	}
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		slow.handle(w, r)
	})
	slow.srv.Config.Handler = wrapped
	cfg.MaxBackoff = 2 * time.Second
	start := time.Now()
	deliverAll(t, cfg, slow.webhook(t), m, testEvent(2))
	if took := time.Since(start); took < time.Second {
		t.Errorf("429 with Retry-After: 1 retried after %s", took)
	}
	if len(rcv.failures())+len(slow.failures()) > 0 {
		t.Errorf("signature failures: %v %v", rcv.failures(), slow.failures())
	}
}

// TestDeadLetter: a 4xx other than 408/429 is final; a receiver that keeps
// failing is given up after MaxAttempts; a full queue dead-letters at once.
// Each is counted by reason, and the next event is still sent.
func TestDeadLetter(t *testing.T) {
	m := NewMetrics(1)
	cfg := testConfig()
	cfg.MaxAttempts = 3

	rejecting := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusBadRequest
		}
		return http.StatusNoContent
	})
	deliverAll(t, cfg, rejecting.webhook(t), m, testEvent(1), testEvent(2))
	if reqs := rejecting.requests(); len(reqs) != 2 {
		t.Errorf("400: %d requests, want 2 (no retry, then the next event)", len(reqs))
	}
	if got := rejecting.events(); len(got) != 1 || got[0].Subject != testEvent(2).Subject {
		t.Errorf("after the 400, accepted %v", got)
	}

	failing := newReceiver(t, func(int) int { return http.StatusBadGateway })
	deliverAll(t, cfg, failing.webhook(t), m, testEvent(3))
	if reqs := failing.requests(); len(reqs) != cfg.MaxAttempts {
		t.Errorf("502s: %d attempts, want %d", len(reqs), cfg.MaxAttempts)
	}

	cfg.QueueSize = 2
	full := newReceiver(t, nil)
	deliverAll(t, cfg, full.webhook(t), m, testEvent(4), testEvent(5), testEvent(6), testEvent(7))
	if got := full.events(); len(got) != 2 {
		t.Errorf("queue of 2, 4 events queued at once: %d delivered, want 2", len(got))
	}

	for reason, want := range map[string]float64{ReasonRejected: 1, ReasonAttempts: 1, ReasonQueueFull: 2} {
		if n := counter(t, m, "keygate_events_dead_letter_total", map[string]string{"webhook": "0", "reason": reason}); n != want {
			t.Errorf("dead_letter_total{reason=%q} = %v, want %v", reason, n, want)
		}
	}
}

// TestRetryAfter reads both forms.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, "-1": 0, "junk": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second, now.Add(-time.Hour).Format(http.TimeFormat): 0} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestBackoff: doubling from Backoff, capped at MaxBackoff, jittered
// within [d/2, d].
func TestBackoff(t *testing.T) {
	s := &sender{cfg: Config{Backoff: time.Second, MaxBackoff: 5 * time.Minute}}
	for attempt, d := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: 5 * time.Minute, 60: 5 * time.Minute} {
		for range 20 {
			if got := s.backoff(attempt); got < d/2 || got > d {
				t.Errorf("backoff(%d) = %s, want within [%s, %s]", attempt, got, d/2, d)
			}
		}
	}
}
