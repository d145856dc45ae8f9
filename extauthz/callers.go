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

// callers throttles calling peers that send unknown keys (Config
// UnknownKeyRate). A Check pays one atomic load while no caller is over
// its budget; the peer is only looked up after an unknown_key, or while
// some caller is blocked.
type callers struct {
	limit   rate.Limit
	burst   int
	mu      sync.Mutex
	buckets *lru.Cache[string, *rate.Limiter] // by caller address
	blocked atomic.Int64                      // callers whose budget ran out
	flagged sync.Map                          // caller → struct{}: counted in blocked
}

// maxCallers bounds the callers tracked (least recently seen dropped).
const maxCallers = 10_000

func newCallers(cfg *Config) *callers {
	if cfg.UnknownKeyRate < 0 {
		return nil
	}
	b, _ := lru.New[string, *rate.Limiter](maxCallers)
	return &callers{limit: rate.Limit(cfg.UnknownKeyRate), burst: cfg.UnknownKeyBurst, buckets: b}
}

// callerKey carries the HTTP mode's caller address in a context.
type callerKey struct{}

// callerOf is the calling peer's IP: gRPC's peer, or the HTTP mode's.
func callerOf(ctx context.Context) string {
	addr, _ := ctx.Value(callerKey{}).(string)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// blockedAt reports whether the caller of ctx is out of budget now.
func (c *callers) blockedAt(ctx context.Context, clock func() time.Time) bool {
	if c == nil || c.blocked.Load() == 0 {
		return false
	}
	now, who := clock(), callerOf(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.buckets.Get(who)
	if !ok || b.TokensAt(now) >= 1 {
		if _, was := c.flagged.LoadAndDelete(who); was {
			c.blocked.Add(-1)
		}
		return false
	}
	return true
}

// spend charges one unknown key to the caller of ctx.
func (c *callers) spend(ctx context.Context, now time.Time) {
	if c == nil {
		return
	}
	who := callerOf(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.buckets.Get(who)
	if !ok {
		b = rate.NewLimiter(c.limit, c.burst)
		c.buckets.Add(who, b)
	}
	b.AllowN(now, 1)
	if b.TokensAt(now) < 1 {
		if _, was := c.flagged.LoadOrStore(who, struct{}{}); !was {
			c.blocked.Add(1)
		}
	}
}
