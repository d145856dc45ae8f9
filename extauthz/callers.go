package extauthz

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"
)

// callers throttles callers that send unknown keys (Config UnknownKeyRate):
// every unknown_key answer costs the caller one token. A key that needs a
// store read holds one of the caller's tokens in reserve while the read is
// under way, and spends it only if the key turns out unknown, so N
// concurrent unknown keys cost at most the caller's budget in reads, not N,
// and any number of valid keys cost nothing. A Check pays one atomic load
// while no caller is out of budget; the caller is only looked up on a store
// read, an unknown_key, or while some caller is blocked.
type callers struct {
	limit    rate.Limit
	burst    int
	byClient bool
	mu       sync.Mutex
	buckets  *lru.Cache[string, *bucket] // by caller
	blocked  atomic.Int64                // buckets flagged as out of budget
}

// bucket is one caller's budget. reading: store reads of uncached ids under
// way, each holding one token in reserve. flagged: counted in blocked;
// cleared when the caller is seen with budget again, or when the LRU drops
// the bucket.
type bucket struct {
	lim     *rate.Limiter
	reading int
	flagged bool
}

// spare is what the caller may still spend: its tokens less those held by
// reads under way.
func (b *bucket) spare(now time.Time) float64 { return b.lim.TokensAt(now) - float64(b.reading) }

// maxCallers bounds the callers tracked (least recently seen dropped).
const maxCallers = 10_000

func newCallers(cfg *Config) *callers {
	if cfg.UnknownKeyRate < 0 {
		return nil
	}
	c := &callers{limit: rate.Limit(cfg.UnknownKeyRate), burst: cfg.UnknownKeyBurst, byClient: cfg.UnknownKeyPer == PerClient}
	c.buckets, _ = lru.NewWithEvict(maxCallers, func(_ string, b *bucket) {
		c.unflag(b) // called with c.mu held: every change of buckets is under it
	})
	return c
}

// callerKey carries the HTTP mode's caller address in a context.
type callerKey struct{}

// peerOf is the calling peer's IP: gRPC's peer, or the HTTP mode's.
func peerOf(ctx context.Context) string {
	addr, _ := ctx.Value(callerKey{}).(string)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// who is the caller charged for in's request: its peer, or with
// UnknownKeyPer PerClient the client address when there is one.
func (c *callers) who(ctx context.Context, in *incoming) string {
	if c.byClient && in.source != "" {
		return "client " + in.source
	}
	return peerOf(ctx)
}

// blocked reports whether the caller of in is out of budget now.
func (c *callers) blockedAt(ctx context.Context, in *incoming, now time.Time) bool {
	if c == nil || c.blocked.Load() == 0 {
		return false
	}
	who := c.who(ctx, in)
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.buckets.Get(who)
	if !ok || b.spare(now) >= 1 {
		c.unflag(b)
		return false
	}
	return true
}

// reserve holds one of the caller's tokens before a store read of an
// uncached id. It returns false, holding nothing, when the caller has none
// to spare; otherwise settle, to call once with the answer: an unknown key
// spends the token, any other answer gives it back whole.
func (c *callers) reserve(ctx context.Context, in *incoming, now time.Time) (settle func(unknown bool, now time.Time), ok bool) {
	if c == nil {
		return func(bool, time.Time) {}, true
	}
	who := c.who(ctx, in)
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bucketOf(who)
	if b.spare(now) < 1 {
		c.flag(b)
		return nil, false
	}
	b.reading++
	c.flagIfEmpty(b, now)
	return func(unknown bool, now time.Time) {
		c.mu.Lock()
		defer c.mu.Unlock()
		b.reading--
		if unknown {
			b.lim.AllowN(now, 1)
		}
		if b.spare(now) >= 1 {
			c.unflag(b)
		} else {
			c.flag(b)
		}
	}, true
}

// spend charges one unknown key to the caller of in after the answer (a
// cached unknown id, or a wrong secret for a cached key: no store read).
func (c *callers) spend(ctx context.Context, in *incoming, now time.Time) {
	if c == nil {
		return
	}
	who := c.who(ctx, in)
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bucketOf(who)
	b.lim.AllowN(now, 1)
	c.flagIfEmpty(b, now)
}

func (c *callers) bucketOf(who string) *bucket {
	b, ok := c.buckets.Get(who)
	if !ok {
		b = &bucket{lim: rate.NewLimiter(c.limit, c.burst)}
		c.buckets.Add(who, b)
	}
	return b
}

func (c *callers) flagIfEmpty(b *bucket, now time.Time) {
	if b.spare(now) < 1 {
		c.flag(b)
	}
}

func (c *callers) flag(b *bucket) {
	if !b.flagged {
		b.flagged = true
		c.blocked.Add(1)
	}
}

func (c *callers) unflag(b *bucket) {
	if b != nil && b.flagged {
		b.flagged = false
		c.blocked.Add(-1)
	}
}
