package vault

import (
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// TestBackoffBounds: the n-th wait is in [d/2, d] with d = min·2ⁿ capped
// at max (equal jitter), the cap holds however long the streak (no
// overflow to a zero or negative wait: 10s·2³⁰ wraps negative, 2³⁴ns·2³⁰
// to exactly 0), and reset starts over.
func TestBackoffBounds(t *testing.T) {
	for _, tc := range []struct{ lo, hi time.Duration }{
		{100 * time.Millisecond, 1600 * time.Millisecond},
		{10 * time.Second, 5 * time.Minute},
		{1 << 34, 1 << 40},
	} {
		b := backoff{min: tc.lo, max: tc.hi}
		for n := range 80 {
			d := doubled(tc.lo, tc.hi, n)
			for range 50 { // jitter: sample the range
				c := b
				got := c.next()
				if got < d/2 || got > d {
					t.Fatalf("%s..%s, wait %d: %s, want within [%s, %s]", tc.lo, tc.hi, n, got, d/2, d)
				}
				if c.n != n+1 {
					t.Fatalf("%s..%s, wait %d: streak %d after it, want %d", tc.lo, tc.hi, n, c.n, n+1)
				}
			}
			b.next()
		}
		b.reset()
		if got := b.next(); got < tc.lo/2 || got > tc.lo {
			t.Errorf("%s..%s after reset: %s, want within [%s, %s]", tc.lo, tc.hi, got, tc.lo/2, tc.lo)
		}
	}
}

// doubled is lo doubled n times, capped at hi, without overflow.
func doubled(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for range n {
		if d >= hi/2 {
			return hi
		}
		d *= 2
	}
	return min(d, hi)
}

// TestBackoffJitter: the jitter spans [d/2, d], not only one end of it:
// every value of a range of a few nanoseconds comes up, and waits of 0.5–1s
// fall in both halves. A 1ns minimum (valid) waits 0, without a panic.
func TestBackoffJitter(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want []time.Duration
	}{
		{1, []time.Duration{0}},
		{2, []time.Duration{1, 2}},
		{4, []time.Duration{2, 3, 4}},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			c := backoff{min: tc.d, max: tc.d}
			seen[c.next()] = true
		}
		for _, w := range tc.want {
			if !seen[w] || len(seen) != len(tc.want) {
				t.Errorf("200 waits of %dns: %v, want each of %v", tc.d, seen, tc.want)
				break
			}
		}
	}
	halves := map[bool]bool{}
	for range 200 {
		c := backoff{min: time.Second, max: time.Second}
		halves[c.next() >= 750*time.Millisecond] = true
	}
	if !halves[true] || !halves[false] {
		t.Errorf("200 waits of [0.5s, 1s] all fell in one half: %v", halves)
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
