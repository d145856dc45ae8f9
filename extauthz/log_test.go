package extauthz

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// TestLogsNeverContainRawKeys captures every log line, at debug level, of a
// run through allows, denies, store errors, stale serving, invalid records,
// the read-rate limit and a panic, and checks no raw key or secret appears.
func TestLogsNeverContainRawKeys(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock, store := newFakeClock(), newFakeStore()
	var keys []string
	add := func(rawKey string, mod func(*policy.Record)) {
		rec := newRecord(t, rawKey, mod)
		store.set(func(s *fakeStore) { s.recs[rawKey[3:3+policy.IDLen]] = rec })
		keys = append(keys, rawKey)
	}
	add(testKey, nil)
	add(otherKey, func(r *policy.Record) { r.Headers = map[string]string{"x-custom-key": "v"} })
	keys = append(keys, wrongSecretKey)

	newServer := func(mod func(*Config)) *Server {
		cfg := DefaultConfig()
		cfg.Now, cfg.StoreReadRate = clock.Now, -1
		mod(&cfg)
		s, err := NewServer(cfg, store, testHasher, log)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	std := newServer(func(*Config) {})
	custom := newServer(func(c *Config) { c.KeyHeader = "x-custom-key"; c.StoreReadRate = 1e-9; c.StoreReadBurst = 1 })
	run := func(s *Server, rawKey string) {
		t.Helper()
		for _, req := range []*reqBuilder{
			newReq().key(rawKey),
			newReq().header("authorization", "Bearer "+rawKey),
			newReq().header("x-custom-key", rawKey),
			newReq().key(rawKey + "\r\n"),
			newReq().key(rawKey[:len(rawKey)-1]),
			newReq().key(rawKey + "," + rawKey),
			newReq().key(rawKey).header("authorization", "Bearer "+testKey),
			newReq().key(rawKey).scopes("admin"),
		} {
			resp, err := s.Check(context.Background(), req.build())
			if err != nil || resp == nil {
				t.Fatalf("Check: %v %v", resp, err)
			}
		}
	}

	run(std, testKey)        // allows and denies
	run(std, wrongSecretKey) // hash mismatch
	run(custom, otherKey)    // record unusable with this key header
	run(custom, testKey)     // over the read rate
	f, _ := policy.NewFormat("kg")
	for range 5 {
		k, _, _ := f.Generate()
		keys = append(keys, k)
		run(std, k) // unknown
	}
	store.set(func(s *fakeStore) { s.idErr[otherID] = fmt.Errorf("%w: bad", policy.ErrInvalidRecord) })
	std.Purge()
	run(std, otherKey) // invalid record
	store.set(func(s *fakeStore) { s.err = errVaultDown })
	clock.Advance(31 * time.Second)
	run(std, testKey) // stale
	k, _, _ := f.Generate()
	keys = append(keys, k)
	run(std, k) // unknown during outage
	clock.panicNext.Store(true)
	run(std, testKey) // panic in Check

	out := buf.String()
	for _, want := range []string{`"level":"DEBUG"`, `"level":"WARN"`, `"level":"ERROR"`, "panic in Check", `"key_id":"` + testID + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("captured log lacks %q; the run did not exercise what it claims", want)
		}
	}
	for _, k := range keys {
		if strings.Contains(out, k) || strings.Contains(out, secretOf(k)) {
			t.Errorf("log output contains a raw key or its secret (key id %s)", k[3:3+policy.IDLen])
		}
	}
	if testing.Verbose() {
		t.Logf("%d bytes of log checked", len(out))
	}
}
