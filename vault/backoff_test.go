package vault

import (
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// TestBackoffBounds: the n-th wait is in [d/2, d] with d = min·2ⁿ capped
// at max (equal jitter), the cap holds however long the streak (no
// overflow to a zero or negative wait), and reset starts over.
func TestBackoffBounds(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 1600 * time.Millisecond
	b := backoff{min: lo, max: hi}
	for n := range 80 {
		d := min(lo<<min(n, 30), hi)
		if n > 30 {
			d = hi
		}
		for range 50 { // jitter: sample the range
			c := b
			got := c.next()
			if got < d/2 || got > d {
				t.Fatalf("wait %d: %s, want within [%s, %s]", n, got, d/2, d)
			}
			if c.n != n+1 {
				t.Fatalf("wait %d: streak %d after it, want %d", n, c.n, n+1)
			}
		}
		b.next()
	}
	b.reset()
	if got := b.next(); got < lo/2 || got > lo {
		t.Errorf("after reset: %s, want within [%s, %s]", got, lo/2, lo)
	}
	// The jitter spans the range: not always its low or high end.
	b.reset()
	seen := map[bool]bool{}
	for range 200 {
		c := backoff{min: time.Second, max: time.Second}
		seen[c.next() >= 750*time.Millisecond] = true
	}
	if !seen[true] || !seen[false] {
		t.Errorf("200 waits of [0.5s, 1s] all fell in one half: %v", seen)
	}
}

// TestAfterHold: a token given up because Vault refused it re-logs in at
// once the first time, then backs off as refusals repeat; renewal
// failures, max TTL and shutdown re-log in at once.
func TestAfterHold(t *testing.T) {
	b := backoff{min: time.Second, max: 8 * time.Second}
	for _, reason := range []string{"", "max_ttl", "renew_failed"} {
		if d := b.afterHold(reason); d != 0 || b.n != 0 {
			t.Errorf("after %q: wait %s, streak %d; want none", reason, d, b.n)
		}
	}
	if d := b.afterHold("forbidden"); d != 0 || b.n != 1 {
		t.Errorf("first refused token: wait %s, streak %d; want 0, 1", d, b.n)
	}
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if d := b.afterHold("forbidden"); d < want/2 || d > want {
			t.Errorf("refused token %d in a row: wait %s, want within [%s, %s]", i+2, d, want/2, want)
		}
	}
	b.reset() // a renewal
	if d := b.afterHold("forbidden"); d != 0 {
		t.Errorf("refused after a renewal: wait %s, want 0", d)
	}
}

// TestLoginRequestTimeout: one login request may take the store timeout,
// but never less than 5s (a login is slower than a read).
func TestLoginRequestTimeout(t *testing.T) {
	client, err := vaultapi.NewClient(&vaultapi.Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ timeout, want time.Duration }{
		{time.Second, 5 * time.Second}, {5 * time.Second, 5 * time.Second}, {9 * time.Second, 9 * time.Second},
	} {
		cfg := testConfig("http://127.0.0.1:1", "", "keygate")
		cfg.Timeout = tc.timeout
		a, err := newAuth(cfg, client)
		if err != nil {
			t.Fatal(err)
		}
		if a.reqTO != tc.want {
			t.Errorf("--vault-timeout %s: login request timeout %s, want %s", tc.timeout, a.reqTO, tc.want)
		}
	}
}
