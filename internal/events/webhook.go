package events

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// Webhook is one receiver: its URL and signing secret.
type Webhook struct {
	URL    string
	Secret Secret
}

// Redacted is the URL for logs: scheme, host and path, without user info
// or query (either may hold a token).
func (w Webhook) Redacted() string {
	u, err := url.Parse(w.URL)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// ticket counts the deliveries (one per event per webhook) a checkpoint of
// the state waits for; done is closed when every one is delivered or
// dead-lettered.
type ticket struct {
	left atomic.Int64
	done chan struct{}
}

func newTicket(n int) *ticket {
	t := &ticket{done: make(chan struct{})}
	t.left.Store(int64(n))
	if n == 0 {
		close(t.done)
	}
	return t
}

func (t *ticket) settle() {
	if t.left.Add(-1) == 0 {
		close(t.done)
	}
}

// item is one event queued for one webhook.
type item struct {
	ev   Event
	body []byte
	t    *ticket
}

// sender delivers one webhook's events in the order they were queued: the
// head of the queue is retried (with backoff) before the next is sent.
type sender struct {
	index  int
	hook   Webhook
	cfg    Config
	client *http.Client
	queue  chan item
	length atomic.Int64 // queued + in flight
	log    *slog.Logger
	m      *Metrics
}

func newSender(index int, hook Webhook, cfg Config, log *slog.Logger, m *Metrics) *sender {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout,
		// Standard Webhooks: a redirect is a failure (fix the URL), not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &sender{index: index, hook: hook, cfg: cfg, client: client, queue: make(chan item, cfg.QueueSize),
		log: log.With("webhook", index), m: m}
}

// enqueue queues it, or dead-letters it at once when the queue is full.
func (s *sender) enqueue(it item) {
	select {
	case s.queue <- it:
		s.m.setQueue(s.index, int(s.length.Add(1)))
	default:
		s.deadLetter(it, ReasonQueueFull, 0, nil)
	}
}

// run sends queued events until ctx ends. Events still queued then are
// dropped unsettled: their checkpoint is never saved, so whoever sends
// next produces them again (with the same ids).
func (s *sender) run(ctx context.Context) {
	defer s.client.CloseIdleConnections()
	for {
		select {
		case <-ctx.Done():
			s.length.Store(0)
			s.m.setQueue(s.index, 0)
			return
		case it := <-s.queue:
			if s.deliver(ctx, it) {
				s.m.setQueue(s.index, int(s.length.Add(-1)))
			}
		}
	}
}

// deliver makes the attempts for one event; false when ctx ended first
// (the event is then neither delivered nor dead-lettered).
func (s *sender) deliver(ctx context.Context, it item) bool {
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := s.post(ctx, it)
		switch {
		case ctx.Err() != nil:
			return false
		case err == nil && status >= 200 && status < 300:
			s.m.onDelivered(s.index, it.ev.Type)
			it.t.settle()
			s.log.Debug("event delivered", "event_id", it.ev.ID, "type", it.ev.Type, "key_id", it.ev.Subject, "attempt", attempt)
			return true
		case err == nil && !retryable(status):
			s.deadLetter(it, ReasonRejected, status, nil)
			return true
		case attempt >= s.cfg.MaxAttempts:
			s.deadLetter(it, ReasonAttempts, status, err)
			return true
		}
		wait := max(s.backoff(attempt), min(retryAfter, s.cfg.MaxBackoff))
		s.log.Debug("event delivery failed; retrying", "event_id", it.ev.ID, "status", status, "err", err, "attempt", attempt, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// post makes one attempt: the receiver's status (0 if none) and its
// Retry-After.
func (s *sender) post(ctx context.Context, it item) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.hook.URL, bytes.NewReader(it.body))
	if err != nil {
		return 0, 0, err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	req.Header.Set("User-Agent", "keygate-events")
	req.Header.Set("webhook-id", it.ev.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", s.hook.Secret.Sign(it.ev.ID, ts, it.body))
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL may hold a token: never in an error
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// retryable: 408, 429 and 5xx are retried; other statuses are final.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// backoff is the wait after the attempt-th failure: Backoff doubling up to
// MaxBackoff, with "equal jitter" (half fixed, half random) so replicas
// and webhooks recovering together do not retry in lockstep.
func (s *sender) backoff(attempt int) time.Duration {
	d := s.cfg.MaxBackoff
	if attempt < 32 {
		d = min(s.cfg.Backoff<<(attempt-1), s.cfg.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (s *sender) deadLetter(it item, reason string, status int, err error) {
	s.m.onDeadLetter(s.index, reason)
	it.t.settle()
	s.log.Warn("event dead-lettered", "event_id", it.ev.ID, "type", it.ev.Type, "key_id", it.ev.Subject,
		"reason", reason, "status", status, "err", err)
}
