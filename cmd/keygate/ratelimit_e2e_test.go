package main

import (
	"strings"
	"testing"
	"time"
)

// TestRateLimitEndToEnd: a key created with --rate-limit 5/s and sent 20
// requests a second through a real server gets 429s with Retry-After and
// RateLimit headers, and recovers; --quota caps it per window; update
// --no-rate-limit lifts the limit.
func TestRateLimitEndToEnd(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme", "--rate-limit", "5/s"))
	if out := mustCLI(t, env, "keys", "show", k.ID, "--json"); !strings.Contains(out, `"rate_limit":{"requests":5,"per":"second"}`) {
		t.Fatalf("record: %s", out)
	}
	s := serve(t, env, ring.all, "--found-ttl", "500ms")

	allowed, limited := 0, 0
	start := time.Now()
	for i := range 40 { // 20/s for 2 s, bounded in count
		o := s.decide(t, k.Key, checkFlags{})
		switch {
		case o.status == 200:
			allowed++
		case o.status == 429 && o.reason == "rate_limited":
			limited++
			if ra := o.headers["retry-after"]; ra != "1" || o.headers["ratelimit-policy"] != `"rate";q=5;w=1` || !strings.HasPrefix(o.headers["ratelimit"], `"rate";r=0;t=`) {
				t.Fatalf("429 headers: %v", o.headers)
			}
		default:
			t.Fatalf("request %d: %v", i, o)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 50 * time.Millisecond)))
	}
	elapsed := time.Since(start).Seconds()
	if limit := 5 + 5*elapsed + 1; float64(allowed) > limit || allowed < 5 || limited < 15 {
		t.Errorf("%d allowed, %d limited in %.2fs at 20/s; want at most %.0f allowed (burst 5 + 5/s)", allowed, limited, elapsed, limit)
	}
	t.Logf("5/s key at 20/s for %.2fs: %d allowed, %d × 429", elapsed, allowed, limited)
	time.Sleep(time.Second)
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Errorf("after a quiet second: %v", o)
	}

	mustCLI(t, env, "keys", "update", k.ID, "--no-rate-limit", "--quota", "3/hour")
	eventually(t, 5*time.Second, "quota applied", func() bool {
		return s.decide(t, k.Key, checkFlags{}).reason == "quota_exceeded"
	})
	if out := mustCLI(t, env, "keys", "show", k.ID, "--json"); strings.Contains(out, "rate_limit") || !strings.Contains(out, `"quota":{"requests":3,"per":"hour"}`) {
		t.Errorf("after update: %s", out)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate-limit", "5/fortnight"}, "--rate-limit"},
		{[]string{"--quota", "1/s"}, `"quota.per"`},
		{[]string{"--rate-burst", "3"}, "--rate-burst"},
		{[]string{"--no-quota", "--quota", "1/day"}, "--no-quota"},
	} {
		_, _, err := cli(t, env, append([]string{"keys", "update", k.ID}, bad.args...)...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("keys update %v: %v, want an error naming %s", bad.args, err, bad.want)
		}
	}
}
