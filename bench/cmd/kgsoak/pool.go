package main

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/bench"
	"github.com/keygate/keygate/policy"
)

// Labels name what a key is (or became) in the report.
const (
	labelActive     = "active"
	labelRotatedIn  = "rotated-in"
	labelExpiring   = "expiring"
	labelRevoked    = "revoked"
	labelRotatedOut = "rotated-out"
	labelUnknown    = "unknown"
	labelMalformed  = "malformed"
)

// routeScopes is what every soak request's route requires; every issued
// key has it.
const routeScopes = "orders:read"

// key is one credential the load sends. Its raw key lives only in req.
type key struct {
	id     string // public id ("-" for a malformed key)
	label  string
	req    *authv3.CheckRequest
	life   life
	dropAt time.Time // retired keys leave the traffic after this
}

func newKey(id, rawKey, label string, l life) *key {
	return &key{id: id, label: label, req: bench.Request{Key: rawKey, Scopes: routeScopes}.Check(), life: l}
}

// pool is every key the load may send, by traffic class. The churn
// changes it (and keys' lives) under mu; workers pick under the read lock.
type pool struct {
	mu       sync.RWMutex
	active   []*key // active keys without an expiry (issued or rotated in)
	expiring []*key // keys created with an expiry, until retention after it
	retired  []*key // revoked and rotated-out keys, until retention after their change
	unknown  []*key // well-formed keys never issued (a ring, refreshed)
	bad      []*key // malformed keys
	format   policy.Format
	next     int // unknown ring position
	gone     int // expiring keys pruned (all past their expiry)
}

// Traffic shares in percent by class; the rest goes to active keys.
const (
	shareExpiring  = 15
	shareRetired   = 20
	shareUnknown   = 4 // ~12/s at 300/s: well under keygate's 50/s unknown-key budget per caller
	shareMalformed = 4
)

// pick returns a key to send and a snapshot of its label.
func (p *pool) pick(rng *rand.Rand) (*key, string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var from []*key
	switch n := rng.IntN(100); {
	case n < shareUnknown:
		from = p.unknown
	case n < shareUnknown+shareMalformed:
		from = p.bad
	case n < shareUnknown+shareMalformed+shareExpiring:
		from = p.expiring
	case n < shareUnknown+shareMalformed+shareExpiring+shareRetired:
		from = p.retired
	}
	if len(from) == 0 {
		from = p.active
	}
	k := from[rng.IntN(len(from))]
	return k, k.label
}

// lifeOf is a snapshot of k's life, for judging a decision.
func (p *pool) lifeOf(k *key) life {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return k.life
}

// garbage fills the unknown ring and the malformed keys.
func (p *pool) garbage(n int) error {
	for range n {
		raw, id, err := p.format.Generate()
		if err != nil {
			return err
		}
		p.unknown = append(p.unknown, newKey(id, raw, labelUnknown, life{unknown: true}))
		bad := raw[:len(raw)-1] + string(flip(raw[len(raw)-1])) // checksum no longer matches
		p.bad = append(p.bad, newKey("-", bad, labelMalformed, life{unknown: true}))
	}
	return nil
}

func flip(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

// refreshUnknown replaces one unknown key with a new never-seen one, so
// keygate's negative cache and Vault see a stream of new ids as well as
// repeats.
func (p *pool) refreshUnknown() error {
	raw, id, err := p.format.Generate()
	if err != nil {
		return err
	}
	k := newKey(id, raw, labelUnknown, life{unknown: true})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unknown[p.next%len(p.unknown)] = k
	p.next++
	return nil
}

// add puts a new key in its class.
func (p *pool) add(k *key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k.life.expires.IsZero() {
		p.active = append(p.active, k)
	} else {
		k.dropAt = k.life.expires.Add(retention)
		p.expiring = append(p.expiring, k)
	}
}

// retireActive moves a random active key older than minAge to the retired
// keys, applying f to it under the lock (so no Check sees it half
// changed), and returns it; nil if there is none.
func (p *pool) retireActive(rng *rand.Rand, now time.Time, minAge time.Duration, f func(*key)) *key {
	p.mu.Lock()
	defer p.mu.Unlock()
	var old []int
	for i, k := range p.active {
		if now.Sub(k.life.created) >= minAge {
			old = append(old, i)
		}
	}
	if len(old) == 0 {
		return nil
	}
	i := old[rng.IntN(len(old))]
	k := p.active[i]
	p.active = slices.Delete(p.active, i, i+1)
	f(k)
	p.retired = append(p.retired, k)
	return k
}

// change applies f to k under the lock.
func (p *pool) change(k *key, f func(*key)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(k)
}

// prune drops retired and expiring keys past their retention.
func (p *pool) prune(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	past := func(k *key) bool { return !now.Before(k.dropAt) }
	n := len(p.expiring)
	p.expiring = slices.DeleteFunc(p.expiring, past)
	p.gone += n - len(p.expiring)
	p.retired = slices.DeleteFunc(p.retired, past)
}

// expired counts the keys created with an expiry that have passed it.
func (p *pool) expired(now time.Time) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := p.gone
	for _, k := range p.expiring {
		if now.After(k.life.expires) {
			n++
		}
	}
	return n
}

// sizes is the number of keys per class.
func (p *pool) sizes() [3]int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return [3]int{len(p.active), len(p.expiring), len(p.retired)}
}
