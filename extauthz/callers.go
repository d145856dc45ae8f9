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
// store read is charged before the read (and refunded when it turns out to
// exist), so N concurrent unknown keys cost at most the caller's budget in
// reads, not N. A Check pays one atomic load while no caller is out of
// budget; the caller is only looked up on a store read, an unknown_key, or
// while some caller is blocked.
type callers struct {
	limit    rate.Limit
	burst    int
	byClient bool
	mu       sync.Mutex
	buckets  *lru.Cache[string, *bucket] // by caller
	blocked  atomic.Int64                // buckets flagged as out of budget
}

// bucket is one caller's budget. flagged: counted in blocked; cleared when
// the caller is seen with budget again, or when the LRU drops the bucket.
type bucket struct {
	lim     *rate.Limiter
	flagged bool
}

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
	if !ok || b.lim.TokensAt(now) >= 1 {
		c.unflag(b)
		return false
	}
	return true
}

// reserve charges one unknown key to the caller of in before a store read.
// It returns false, charging nothing, when the caller is out of budget;
// otherwise a refund to call if the key turns out to exist.
func (c *callers) reserve(ctx context.Context, in *incoming, now time.Time) (refund func(), ok bool) {
	if c == nil {
		return func() {}, true
	}
	who := c.who(ctx, in)
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bucketOf(who)
	r := b.lim.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		c.flag(b)
		return nil, false
	}
	c.flagIfEmpty(b, now)
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		r.CancelAt(now)
		if b.lim.TokensAt(now) >= 1 {
			c.unflag(b)
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
	if b.lim.TokensAt(now) < 1 {
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
