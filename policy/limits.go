package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RateLimit is a key's request rate: Requests per Per, with bursts of up to
// Burst requests (default Requests). keygate enforces it per replica with a
// token bucket; Envoy's global rate limit can enforce it across replicas
// from the dynamic metadata (README "Rate limits"). As a record's
// global_rate_limit it has no Burst (see Record.GlobalRateLimit).
type RateLimit struct {
	Requests int    `json:"requests"`
	Per      string `json:"per"` // second, minute, hour or day
	Burst    int    `json:"burst,omitempty"`
}

// Quota caps a key's requests in each fixed window (UTC-aligned: a "day"
// quota resets at 00:00 UTC), per replica, or across replicas as a
// record's global_quota.
type Quota struct {
	Requests int    `json:"requests"`
	Per      string `json:"per"` // minute, hour or day
}

// Limits is the decision-ready form of a record's rate limit and quota.
// It is comparable: a changed record means changed limits.
type Limits struct {
	Rate  float64 // tokens per second; 0: no rate limit
	Burst int
	// RateRequests and RateWindow restate the rate as written, for
	// headers and Envoy's rate limit override.
	RateRequests int
	RateWindow   time.Duration
	Quota        int           // 0: no quota
	QuotaWindow  time.Duration // minute, hour or day
}

// Limits returns the key's limits, or nil if it has none.
func (c *Compiled) Limits() *Limits { return c.limits }

// GlobalLimits returns the key's limits across replicas (global_rate_limit
// and global_quota), or nil if it has none. Burst is always the rate's
// Requests: the rate limit service counts fixed windows of one unit.
func (c *Compiled) GlobalLimits() *Limits { return c.global }

// MaxLimitRequests bounds requests and burst in a record.
const MaxLimitRequests = 1_000_000_000

var limitWindows = map[string]time.Duration{
	"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour,
}

// LimitUnit is Envoy's RateLimitUnit name for a window ("SECOND" …).
func LimitUnit(window time.Duration) string {
	for name, d := range limitWindows {
		if d == window {
			return strings.ToUpper(name)
		}
	}
	return "UNKNOWN"
}

// compileLimits checks a record's rate limit and quota, whose fields are
// named prefix+"rate_limit" and prefix+"quota" ("" or "global_").
func compileLimits(bad func(string, string, ...any), prefix string, rl *RateLimit, q *Quota) *Limits {
	if rl == nil && q == nil {
		return nil
	}
	var l Limits
	if rl != nil {
		f := prefix + "rate_limit"
		w, ok := limitWindows[rl.Per]
		switch {
		case !ok:
			bad(f+".per", "%q: want second, minute, hour or day", rl.Per)
		case rl.Requests < 1 || rl.Requests > MaxLimitRequests:
			bad(f+".requests", "%d: want 1 to %d", rl.Requests, MaxLimitRequests)
		case prefix == globalPrefix && rl.Burst != 0:
			bad(f+".burst", "the rate limit service counts fixed windows of one unit and has no burst: "+
				"remove it (requests may all come at once within each window)")
		case rl.Burst < 0 || rl.Burst > MaxLimitRequests:
			bad(f+".burst", "%d: want 0 (same as requests) to %d", rl.Burst, MaxLimitRequests)
		default:
			l.Rate, l.Burst = float64(rl.Requests)/w.Seconds(), rl.Burst
			if l.Burst == 0 {
				l.Burst = rl.Requests
			}
			l.RateRequests, l.RateWindow = rl.Requests, w
		}
	}
	if q != nil {
		f := prefix + "quota"
		w, ok := limitWindows[q.Per]
		switch {
		case !ok || q.Per == "second":
			bad(f+".per", "%q: want minute, hour or day", q.Per)
		case q.Requests < 1 || q.Requests > MaxLimitRequests:
			bad(f+".requests", "%d: want 1 to %d", q.Requests, MaxLimitRequests)
		default:
			l.Quota, l.QuotaWindow = q.Requests, w
		}
	}
	return &l
}

// globalPrefix names the global limits' record fields.
const globalPrefix = "global_"

// ParseRate parses the CLI form "100/s", "6000/minute", "1/d".
func ParseRate(s string) (requests int, per string, err error) {
	n, unit, ok := strings.Cut(s, "/")
	requests, nerr := strconv.Atoi(n)
	per = map[string]string{"s": "second", "sec": "second", "second": "second", "m": "minute", "min": "minute",
		"minute": "minute", "h": "hour", "hour": "hour", "d": "day", "day": "day"}[unit]
	if !ok || nerr != nil || requests < 1 || per == "" {
		return 0, "", fmt.Errorf("%q: want REQUESTS/UNIT, e.g. 100/s, 6000/minute, 10000/day", s)
	}
	return requests, per, nil
}
