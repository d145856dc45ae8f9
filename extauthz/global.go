package extauthz

import (
	"context"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/policy"
)

// GlobalLimiter counts keys' requests against limits every replica shares:
// a record's global_rate_limit and global_quota. Package ratelimit
// implements it with envoyproxy/ratelimit (keygate serve
// --ratelimit-service).
type GlobalLimiter interface {
	// Take charges one request of keyID to lim (a record's
	// GlobalLimits) and answers Allowed, or RateLimited or QuotaExceeded
	// with the time until the window that refused it resets. When it
	// cannot tell (the service failed or timed out) it answers as its
	// failure mode says: Allowed or RateLimitUnavailable. It returns
	// within its own timeout. Check treats any other answer as
	// RateLimitUnavailable.
	Take(ctx context.Context, keyID string, lim *policy.Limits) (policy.Reason, time.Duration)
}

// globalLimit charges one request to e's global limits, if it has any:
// the last stage before an allow, so a request something else refuses
// (its local limits included) is never counted by the service. A key with
// global limits on a server without a GlobalLimiter is denied: keygate
// never drops a limit a record asks for.
func (s *Server) globalLimit(ctx context.Context, e *entry, r *responder) (policy.Reason, *authv3.CheckResponse) {
	lim := e.pol.GlobalLimits()
	if lim == nil {
		return policy.Allowed, nil
	}
	if s.cfg.Global == nil {
		return policy.RateLimitUnavailable, r.deny(policy.RateLimitUnavailable)
	}
	// e.keyID, not the request's: it shares the raw key's memory.
	switch reason, retry := s.cfg.Global.Take(ctx, e.keyID, lim); reason {
	case policy.Allowed:
		return policy.Allowed, nil
	case policy.RateLimited, policy.QuotaExceeded:
		return reason, limitedResponse(reason, lim, retry)
	}
	return policy.RateLimitUnavailable, r.deny(policy.RateLimitUnavailable)
}
