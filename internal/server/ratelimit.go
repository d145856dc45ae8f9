package server

import (
	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/ratelimit"
)

// openRateLimit makes the client of the rate limit service that counts
// keys' global limits, or returns nil without --ratelimit-service.
func openRateLimit(cfg Config, deps Deps) (*ratelimit.Client, error) {
	if cfg.RateLimit.Service == "" {
		return nil, nil
	}
	rl, err := ratelimit.New(cfg.RateLimit, deps.Log)
	if err != nil {
		return nil, field.Prefix(err, "ratelimit-")
	}
	return rl, nil
}

// globalLimiter is rl as Check's GlobalLimiter: a nil interface, not a nil
// *Client, when there is none.
func globalLimiter(rl *ratelimit.Client) extauthz.GlobalLimiter {
	if rl == nil {
		return nil
	}
	return rl
}
