package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookEvent is a delivered event as a receiver reads it.
type hookEvent struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Subject string `json:"subject"`
	Source  string `json:"source"`
	Spec    string `json:"specversion"`
	Data    struct {
		KeyID         string   `json:"key_id"`
		Tenant        string   `json:"tenant"`
		Name          string   `json:"name"`
		Status        string   `json:"status"`
		Scopes        []string `json:"scopes"`
		ExpiresAt     string   `json:"expires_at"`
		RevokedReason string   `json:"revoked_reason"`
		RotatedTo     string   `json:"rotated_to"`
		IdleDays      int      `json:"idle_days"`
	} `json:"data"`
	at time.Time // when it arrived
}

// hookReceiver is a webhook endpoint on 127.0.0.1 that verifies every
// request as a Standard Webhooks receiver would: the three headers, a
// timestamp within 5 minutes, and a v1 HMAC-SHA256 of id.timestamp.body
// with the secret's decoded bytes, compared in constant time. It keeps the
// raw bodies, to look for raw keys.
type hookReceiver struct {
	srv        *httptest.Server
	secretFile string
	key        []byte

	mu     sync.Mutex
	status func(n int) int // nil: 204
	n      int
	events []hookEvent
	bodies []string
	bad    []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{key: key, secretFile: filepath.Join(t.TempDir(), "webhook-secret")}
	if err := os.WriteFile(h.secretFile, []byte("whsec_"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(http.HandlerFunc(h.handle))
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() {
		if bad := h.failures(); len(bad) > 0 {
			t.Errorf("the receiver refused requests: %v", bad)
		}
	})
	return h
}

// args are the events flags for this receiver.
func (h *hookReceiver) args() []string {
	return []string{"--webhook", h.srv.URL + "/keygate", "--webhook-secret-file", h.secretFile}
}

func (h *hookReceiver) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	h.bodies = append(h.bodies, string(body))
	id := r.Header.Get("webhook-id")
	if problem := verifyWebhook(h.key, id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now()); problem != "" {
		h.bad = append(h.bad, problem)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	status := http.StatusNoContent
	if h.status != nil {
		status = h.status(h.n)
	}
	if status/100 == 2 {
		var ev hookEvent
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id || ev.Spec != "1.0" || ev.Source != "keygate" {
			h.bad = append(h.bad, "the body is not a keygate CloudEvent with the webhook-id")
		}
		ev.at = time.Now()
		h.events = append(h.events, ev)
	}
	w.WriteHeader(status)
}

// verifyWebhook is a receiver's check of a Standard Webhooks request; ""
// when it is authentic and fresh.
func verifyWebhook(key []byte, id, ts, sigs string, body []byte, now time.Time) string {
	const tolerance = 5 * time.Minute
	if id == "" || ts == "" || sigs == "" {
		return "missing webhook-id, webhook-timestamp or webhook-signature"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "webhook-timestamp is not Unix seconds"
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return "webhook-timestamp outside the 5-minute tolerance"
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		if b64, ok := strings.CutPrefix(s, "v1,"); ok {
			if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
				return ""
			}
		}
	}
	return "no v1 signature matches"
}

func (h *hookReceiver) got() []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookEvent(nil), h.events...)
}

func (h *hookReceiver) failures() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bad...)
}

func (h *hookReceiver) allBodies() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.bodies, "\n")
}

// find is the first delivered event of type typ about keyID.
func (h *hookReceiver) find(typ, keyID string) (hookEvent, bool) {
	for _, ev := range h.got() {
		if ev.Type == typ && ev.Subject == keyID {
			return ev, true
		}
	}
	return hookEvent{}, false
}

// wait waits for an event of type typ about keyID.
func (h *hookReceiver) wait(t *testing.T, bound time.Duration, typ, keyID string) hookEvent {
	t.Helper()
	eventually(t, bound, typ+" "+keyID, func() bool { _, ok := h.find(typ, keyID); return ok })
	ev, _ := h.find(typ, keyID)
	return ev
}

// eventsProc is a `keygate events` running in-process.
type eventsProc struct {
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startEvents starts `keygate events` with debug logs; it is stopped at
// test cleanup, which also checks that its logs hold no raw key.
func startEvents(t *testing.T, env envMap, keys func() []string, args ...string) *eventsProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &eventsProc{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	args = append([]string{"events", "--log-level", "debug"}, args...)
	go func() { p.done <- run(ctx, args, env.get, strings.NewReader(""), p.logs, p.logs) }()
	t.Cleanup(func() {
		p.stop(t)
		logs := p.logs.String()
		for _, k := range keys() {
			if strings.Contains(logs, k) {
				t.Errorf("keygate events logged a raw key")
			}
		}
		if keyShape.MatchString(logs) {
			t.Errorf("keygate events logged something shaped like a raw key")
		}
	})
	return p
}

// stop cancels the process and waits for it to return.
func (p *eventsProc) stop(t *testing.T) {
	p.once.Do(func() {
		p.cancel()
		select {
		case err := <-p.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("keygate events returned %v\n%s", err, redact(p.logs.String()))
			}
		case <-time.After(20 * time.Second):
			t.Errorf("keygate events did not stop within 20s")
		}
	})
}

// leading reports whether the process holds the lease now (its last lease
// message says so).
func (p *eventsProc) leading() bool {
	logs := p.logs.String()
	return strings.LastIndex(logs, "holding the events lease") > strings.LastIndex(logs, "stopped sending events")
}
