package events

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/keyadmin"
)

// receiver is a webhook endpoint on 127.0.0.1 that checks every request as
// a Standard Webhooks receiver would (headers, timestamp within tolerance,
// HMAC-SHA256 over id.timestamp.body with the decoded secret, compared in
// constant time) and records what it accepted. answer picks the status of
// the n-th request (from 1); nil answers 204.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string // whsec_...
	key    []byte

	mu       sync.Mutex
	n        int
	answer   func(n int) int
	got      []Event  // accepted (2xx) events, in order
	attempts []string // webhook-id of every request
	bad      []string // verification failures
}

const tolerance = 5 * time.Minute

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, key: key, secret: "whsec_" + base64.StdEncoding.EncodeToString(key), answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.handle)) // httptest listens on 127.0.0.1
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) webhook(t *testing.T) Webhook {
	t.Helper()
	s, err := ParseSecret(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	return Webhook{URL: r.srv.URL + "/hook", Secret: s}
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts, sig := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.attempts = append(r.attempts, id)
	if problem := verify(r.key, id, ts, sig, body, time.Now()); problem != "" {
		r.bad = append(r.bad, problem)
		http.Error(w, problem, http.StatusUnauthorized)
		return
	}
	status := http.StatusNoContent
	if r.answer != nil {
		status = r.answer(r.n)
	}
	if status >= 200 && status < 300 {
		var ev Event
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id {
			r.bad = append(r.bad, "body is not the event of webhook-id")
		}
		r.got = append(r.got, ev)
	}
	w.WriteHeader(status)
}

// verify is the receiver's check; "" when the request is authentic.
func verify(key []byte, id, ts, sigs string, body []byte, now time.Time) string {
	if id == "" || ts == "" || sigs == "" {
		return "missing webhook-* header"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "webhook-timestamp is not an integer"
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return "webhook-timestamp outside the tolerance"
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		b64, ok := strings.CutPrefix(s, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return ""
		}
	}
	return "no valid v1 signature"
}

func (r *receiver) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.got...)
}

func (r *receiver) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.attempts...)
}

func (r *receiver) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// clock is an injectable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// usageStore is a real file store that also knows when keys were last used
// (as Vault does), so keyadmin finds a UsageReader.
type usageStore struct {
	*filestore.Store
	mu   sync.Mutex
	used map[string]time.Time
}

func (s *usageStore) LastUsed(_ context.Context, id string) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.used[id]
	return t, ok, nil
}

func (s *usageStore) use(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used[id] = at
}

// newFileStore creates an empty key file in a temp dir.
func newFileStore(t *testing.T) (*filestore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	s, err := filestore.OpenOrCreate(context.Background(), path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func newService(t *testing.T, store keyadmin.Store, now func() time.Time) *keyadmin.Service {
	t.Helper()
	svc, err := keyadmin.New(keyadmin.Config{Now: now}, store)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func issue(t *testing.T, svc *keyadmin.Service, f keyadmin.Fields) *keyadmin.Issued {
	t.Helper()
	k, err := svc.Issue(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testConfig(hooks ...Webhook) Config {
	cfg := DefaultConfig()
	cfg.Webhooks = hooks
	cfg.Backoff, cfg.MaxBackoff, cfg.Timeout = 10*time.Millisecond, 40*time.Millisecond, 2*time.Second
	cfg.LeaseTTL, cfg.JournalPoll, cfg.ListInterval, cfg.ScanInterval = time.Second, 20*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond
	return cfg
}

// eventually polls cond every 10ms until it holds or bound passes.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
