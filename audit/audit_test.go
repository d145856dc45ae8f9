package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// rawKey is key-shaped: it must never appear in a line.
const rawKey = "kg_AbCdEf012345Zyxwvutsrqponmlkjihgfedcba98765432XyZ123"

var fields = []string{"time", "request_id", "key_id", "tenant", "method", "host", "path", "source_ip",
	"decision", "reason", "status", "cache", "latency_us"}

// syncBuf is a concurrency-safe bytes.Buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func withCfg(mod func(*Config)) Config {
	c := DefaultConfig()
	mod(&c)
	return c
}

// start runs a Logger writing to the returned buffer; stop ends Run and
// returns its error.
func start(t *testing.T, cfg Config) (l *Logger, out *syncBuf, stop func() error) {
	t.Helper()
	out = &syncBuf{}
	cfg.Out = out
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	return l, out, func() error { cancel(); return <-done }
}

func run(t *testing.T, cfg Config, decisions []extauthz.Decision) (*Logger, []map[string]any) {
	t.Helper()
	l, out, stop := start(t, cfg)
	for _, d := range decisions {
		l.Log(d)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, ln := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if ln == "" {
			continue
		}
		if strings.Contains(ln, rawKey) {
			t.Errorf("line contains a raw key: %s", ln)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, ln)
		}
		lines = append(lines, m)
	}
	return l, lines
}

func mixed(n int) []extauthz.Decision {
	var out []extauthz.Decision
	for i := range n {
		d := extauthz.Decision{KeyID: "AbCdEf012345", Tenant: "acme", Reason: policy.Allowed, Source: extauthz.SourceHit,
			Latency: 12 * time.Microsecond, RequestID: "req-" + string(rune('a'+i%26)), Method: "GET",
			Host: "api.example.com", Path: "/v1/orders?api_key=" + rawKey, SourceIP: "10.1.2.3"}
		switch i % 4 {
		case 1:
			d.Reason, d.KeyID, d.Tenant, d.Source = policy.MalformedKey, "", "", extauthz.SourceNone
		case 2:
			d.Reason, d.Source, d.Path = policy.ScopeDenied, extauthz.SourceMiss, "/keys/"+rawKey
		case 3:
			d.Reason, d.RequestID, d.Host = policy.RateLimited, rawKey, "evil\"\n<host>\xff"
		}
		out = append(out, d)
	}
	return out
}

// TestBurst: every decision of a mixed burst becomes one JSON line with
// every field, the right status, no query string and no key.
func TestBurst(t *testing.T) {
	l, lines := run(t, DefaultConfig(), mixed(1000))
	if len(lines) != 1000 || l.Written() != 1000 || l.Dropped() != 0 {
		t.Fatalf("%d lines, written %d, dropped %d; want 1000", len(lines), l.Written(), l.Dropped())
	}
	statuses := map[string]float64{"allowed": 200, "malformed_key": 401, "scope_denied": 403, "rate_limited": 429}
	for i, ln := range lines {
		for _, f := range fields {
			if _, ok := ln[f]; !ok {
				t.Fatalf("line %d lacks %q: %v", i, f, ln)
			}
		}
		if ln["status"] != statuses[ln["reason"].(string)] || (ln["decision"] == "allow") != (ln["reason"] == "allowed") {
			t.Errorf("line %d: %v", i, ln)
		}
		if strings.Contains(ln["path"].(string), "?") {
			t.Errorf("query kept: %v", ln["path"])
		}
		if _, err := time.Parse(time.RFC3339Nano, ln["time"].(string)); err != nil {
			t.Errorf("time %v: %v", ln["time"], err)
		}
	}
	if lines[3]["host"] != "evil\"\n<host>\ufffd" {
		t.Errorf("host not escaped faithfully: %q", lines[3]["host"])
	}
}

// TestWrittenWhileRunning: lines are written while Run runs — the first
// at once, those logged while it lingers after a write soon after — not
// only when it ends.
func TestWrittenWhileRunning(t *testing.T) {
	l, out, stop := start(t, DefaultConfig())
	defer stop()
	waitLines := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); strings.Count(out.String(), "\n") < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d lines written while running, want %d", strings.Count(out.String(), "\n"), n)
			}
		}
	}
	ds := mixed(101)
	l.Log(ds[0])
	waitLines(1)
	for _, d := range ds[1:] { // mostly while Run lingers
		l.Log(d)
	}
	waitLines(101)
	if l.Written() != 101 || l.Dropped() != 0 {
		t.Fatalf("written %d, dropped %d; want 101, 0", l.Written(), l.Dropped())
	}
}

// TestSamplingAndDrops: allows are sampled, denies never; a full buffer
// drops lines and counts them, never blocking Log.
func TestSamplingAndDrops(t *testing.T) {
	l, lines := run(t, withCfg(func(c *Config) { c.SampleAllows = 0 }), mixed(400))
	for _, ln := range lines {
		if ln["decision"] == "allow" {
			t.Fatal("allow written with SampleAllows 0")
		}
	}
	if len(lines) != 300 || l.Dropped() != 0 {
		t.Errorf("%d lines, %d dropped; want the 300 denies, none dropped", len(lines), l.Dropped())
	}
	_, lines = run(t, withCfg(func(c *Config) { c.SampleAllows = 0.5 }), mixed(4000))
	if allows := len(lines) - 3000; allows < 350 || allows > 650 {
		t.Errorf("%d of 1000 allows at 0.5", allows)
	}

	full, err := New(withCfg(func(c *Config) { c.Out, c.Buffer = &syncBuf{}, 4 }))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range mixed(10) { // no Run: nothing drains
		full.Log(d)
	}
	if full.Dropped() != 6 {
		t.Errorf("dropped %d of 10 with a buffer of 4, want 6", full.Dropped())
	}
	_, kept := run(t, withCfg(func(c *Config) { c.KeepQuery = true }), mixed(1))
	if p := kept[0]["path"].(string); p != "/v1/orders?api_key=<redacted>" {
		t.Errorf("KeepQuery path %q: want the query kept and the key redacted", p)
	}
}

func TestConfigErrors(t *testing.T) {
	err := Config{SampleAllows: 2, Buffer: -1}.Validate()
	for _, want := range []string{"out", "sample-allows", "buffer", "drain-timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
}

// FuzzAppendString: any string becomes valid JSON that decodes to the same
// string (invalid UTF-8 as U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n\t\x00\x7f", "<script>&", "\xff\xfe", "é\u2028\u2029😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q → %s: %v", s, b, err)
		}
		var want strings.Builder
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				want.WriteString("\ufffd")
			} else {
				want.WriteString(s[i : i+size])
			}
			i += size
		}
		if got != want.String() {
			t.Fatalf("%q → %q, want %q", s, got, want.String())
		}
	})
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
