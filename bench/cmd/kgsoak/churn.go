package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Churn settings. The retention keeps a retired key in the traffic well
// past keygate's --found-ttl (30s): a change that did not travel through
// the journal would show up as a wrong allow before the cached record
// expired on its own.
const (
	expiringLife = 20 * time.Second // `keys create --expires-in`
	rotateGrace  = 10 * time.Second // `keys rotate --grace`
	minAge       = 5 * time.Second  // keys revoked or rotated have been in the traffic (and cache) this long
	retention    = 45 * time.Second // after its change, a key stays in the traffic this long
	cliTimeout   = 30 * time.Second
)

// cli runs `keygate keys …` against the soak's Vault.
type cli struct {
	bin string
	env []string
}

// cliOut is what `keys create|rotate --json` prints. Key is secret.
type cliOut struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Record struct {
		ExpiresAt string `json:"expires_at"`
	} `json:"record"`
	PreviousExpiresAt string `json:"previous_expires_at"`
}

var keyShape = regexp.MustCompile(`[a-z][a-z0-9]{0,9}_[0-9A-Za-z]{50}`)

func (c cli) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"keys"}, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := keyShape.ReplaceAllString(strings.TrimSpace(stderr.String()), "<key>")
		return nil, fmt.Errorf("keygate keys %s: %v: %s", args[0], err, msg)
	}
	return out, nil
}

func (c cli) issue(ctx context.Context, args ...string) (cliOut, error) {
	out, err := c.run(ctx, append(args, "--json")...)
	if err != nil {
		return cliOut{}, err
	}
	var o cliOut
	if err := json.Unmarshal(out, &o); err != nil || o.ID == "" || o.Key == "" {
		return cliOut{}, fmt.Errorf("keygate keys %s: unexpected output (%d bytes)", args[0], len(out))
	}
	return o, nil
}

// churnStats counts what the churn did.
type churnStats struct {
	Created         int    `json:"created"`          // initial keys and one per tick, no expiry
	CreatedExpiring int    `json:"created_expiring"` // with --expires-in
	Expired         int    `json:"expired"`          // of those, past their expiry by the end
	Revoked         int    `json:"revoked"`
	Rotated         int    `json:"rotated"`
	Errors          int    `json:"errors"` // failed CLI commands
	FirstError      string `json:"first_error,omitempty"`
	Ticks           int    `json:"ticks"`
}

// churner changes keys in Vault with the CLI and tells the pool (and so
// the oracle) what it did and when.
type churner struct {
	cli   cli
	pool  *pool
	rng   *rand.Rand
	stats churnStats
}

func (c *churner) fail(err error) {
	c.stats.Errors++
	if c.stats.FirstError == "" {
		c.stats.FirstError = err.Error()
	}
	fmt.Fprintln(os.Stderr, "kgsoak: churn:", err)
}

// initial creates n active keys, 4 at a time.
func (c *churner) initial(ctx context.Context, n int) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = c.create(ctx, false)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	c.stats.Created = n
	return nil
}

// loop runs a tick every interval until stop ends. Commands run under
// ctx, so a tick under way when stop ends finishes (a command killed half
// way would be a failure of the soak, not of keygate).
func (c *churner) loop(stop, ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-t.C:
			c.tick(ctx)
		}
	}
}

// tick: new unknown ids, one plain key, one expiring key, one revocation,
// one rotation. Errors are counted, never fatal.
func (c *churner) tick(ctx context.Context) {
	c.stats.Ticks++
	c.pool.prune(time.Now())
	for range 4 {
		if err := c.pool.refreshUnknown(); err != nil {
			c.fail(err)
		}
	}
	steps := []struct {
		n *int
		f func(context.Context) error
	}{
		{&c.stats.Created, func(ctx context.Context) error { return c.create(ctx, false) }},
		{&c.stats.CreatedExpiring, func(ctx context.Context) error { return c.create(ctx, true) }},
		{&c.stats.Revoked, c.revoke},
		{&c.stats.Rotated, c.rotate},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return
		}
		if err := s.f(ctx); err != nil {
			c.fail(err)
		} else {
			*s.n++
		}
	}
}

func (c *churner) create(ctx context.Context, expiring bool) error {
	args := []string{"create", "--tenant", "soak", "--scopes", routeScopes}
	label := labelActive
	if expiring {
		args, label = append(args, "--expires-in", expiringLife.String()), labelExpiring
	}
	o, err := c.cli.issue(ctx, args...)
	if err != nil {
		return err
	}
	l, err := issuedLife(time.Now(), o.Record.ExpiresAt)
	if err != nil {
		return err
	}
	c.pool.add(newKey(o.ID, o.Key, label, l))
	return nil
}

// issuedLife is the life of a key issued at created with expires_at exp.
func issuedLife(created time.Time, exp string) (life, error) {
	l := life{created: created}
	if exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return life{}, fmt.Errorf("expires_at %q: %w", exp, err)
		}
		l.expires, l.allowUntil = t, t
	}
	return l, nil
}

// revoke revokes a random active key. From the command's start the key
// may be denied; from its end plus the propagation bound it must be.
func (c *churner) revoke(ctx context.Context) error {
	start := time.Now()
	k := c.pool.retireActive(c.rng, start, minAge, func(k *key) {
		k.label, k.life.revokeStart, k.dropAt = labelRevoked, start, start.Add(time.Hour)
	})
	if k == nil {
		return nil
	}
	_, err := c.cli.run(ctx, "revoke", k.id)
	end := time.Now()
	c.pool.change(k, func(k *key) {
		if err == nil {
			k.life.revokeEnd = end
		}
		k.dropAt = end.Add(retention)
	})
	return err
}

// rotate rotates a random active key with a short grace. From the
// command's start the old key may be denied once the earliest expiry the
// rotation can set has passed (start + grace, less a second of RFC 3339
// truncation); the expiry the command reports is then enforced like a
// revocation, after the propagation bound.
func (c *churner) rotate(ctx context.Context) error {
	start := time.Now()
	earliest := start.Add(rotateGrace - time.Second)
	k := c.pool.retireActive(c.rng, start, minAge, func(k *key) {
		k.label, k.dropAt = labelRotatedOut, start.Add(time.Hour)
		if k.life.allowUntil.IsZero() || earliest.Before(k.life.allowUntil) {
			k.life.allowUntil = earliest
		}
	})
	if k == nil {
		return nil
	}
	o, err := c.cli.issue(ctx, "rotate", k.id, "--grace", rotateGrace.String())
	end := time.Now()
	var exp time.Time
	if err == nil {
		exp, err = time.Parse(time.RFC3339, o.PreviousExpiresAt)
	}
	c.pool.change(k, func(k *key) {
		k.dropAt = end.Add(retention)
		if err == nil {
			k.life.expires, k.life.expiresKnown, k.life.allowUntil = exp, end, exp
			k.dropAt = exp.Add(retention)
		}
	})
	if err != nil {
		return err
	}
	l, err := issuedLife(end, o.Record.ExpiresAt)
	if err != nil {
		return err
	}
	c.pool.add(newKey(o.ID, o.Key, labelRotatedIn, l))
	return nil
}
