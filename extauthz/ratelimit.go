package extauthz

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/keygate/keygate/policy"
)

// limiter enforces keys' rate limits (token buckets) and quotas (counters
// per UTC-aligned window) on this replica. State is kept for at most
// Config.CacheSize keys, least recently used first out: an idle key's state
// is dropped, which at worst gives it a fresh burst.
type limiter struct {
	keys *lru.Cache[string, *keyLimit]
}

// keyLimit is one key's state; spec is what it was built for, so a record
// change rebuilds it.
type keyLimit struct {
	mu     sync.Mutex
	spec   policy.Limits
	bucket *rate.Limiter // nil without a rate limit
	window time.Time     // start of the current quota window
	used   int
}

func newLimiter(size int) (*limiter, error) {
	keys, err := lru.New[string, *keyLimit](size)
	if err != nil {
		return nil, err
	}
	return &limiter{keys: keys}, nil
}

// limit charges one request to e's rate limit and quota, if it has any.
// Over one, it returns the reason and the 429 to answer with.
func (s *Server) limit(e *entry, now time.Time) (policy.Reason, *authv3.CheckResponse) {
	lim := e.pol.Limits()
	if lim == nil {
		return policy.Allowed, nil
	}
	// e.keyID, not the request's: the limiter keeps it, and the request's
	// shares the raw key's memory.
	reason, retry := s.limits.take(e.keyID, lim, now)
	if reason != policy.Allowed {
		return reason, limitedResponse(reason, lim, retry)
	}
	return policy.Allowed, nil
}

// take admits one request of keyID at now under spec, or says which limit
// it hit and when to retry.
func (l *limiter) take(keyID string, spec *policy.Limits, now time.Time) (policy.Reason, time.Duration) {
	kl, ok := l.keys.Get(keyID)
	if !ok {
		fresh := &keyLimit{}
		if kl, ok, _ = l.keys.PeekOrAdd(keyID, fresh); !ok {
			kl = fresh
		}
	}
	kl.mu.Lock()
	defer kl.mu.Unlock()
	if kl.spec != *spec { // new, or the record changed
		kl.spec, kl.bucket, kl.used = *spec, nil, 0
		if spec.Rate > 0 {
			kl.bucket = rate.NewLimiter(rate.Limit(spec.Rate), spec.Burst)
		}
	}
	if spec.Quota > 0 {
		start := now.Truncate(spec.QuotaWindow) // whole minutes, hours, days since year 1: UTC-aligned
		if !start.Equal(kl.window) {
			kl.window, kl.used = start, 0
		}
		if kl.used >= spec.Quota {
			return policy.QuotaExceeded, start.Add(spec.QuotaWindow).Sub(now)
		}
	}
	if kl.bucket != nil {
		r := kl.bucket.ReserveN(now, 1)
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			return policy.RateLimited, d
		}
	}
	kl.used++
	return policy.Allowed, 0
}

// limitedResponse is the 429 for reason (RateLimited or QuotaExceeded):
// Retry-After, and RateLimit-Policy / RateLimit as in the IETF httpapi
// draft ("rate";q=5;w=1 / "rate";r=0;t=1).
func limitedResponse(reason policy.Reason, spec *policy.Limits, retry time.Duration) *authv3.CheckResponse {
	secs := max(1, int(math.Ceil(retry.Seconds())))
	var policies, which string
	if spec.RateWindow > 0 {
		policies = fmt.Sprintf(`"rate";q=%d;w=%d`, spec.RateRequests, int(spec.RateWindow.Seconds()))
	}
	if spec.Quota > 0 {
		if policies != "" {
			policies += ", "
		}
		policies += fmt.Sprintf(`"quota";q=%d;w=%d`, spec.Quota, int(spec.QuotaWindow.Seconds()))
	}
	which = "rate"
	if reason == policy.QuotaExceeded {
		which = "quota"
	}
	body := fmt.Sprintf(`{"error":"too_many_requests","reason":%q,"retry_after":%d}`+"\n", reason.String(), secs)
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.ResourceExhausted), Message: reason.String()},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(http.StatusTooManyRequests)},
			Headers: []*corev3.HeaderValueOption{
				overwrite("content-type", "application/json"),
				overwrite("retry-after", strconv.Itoa(secs)),
				overwrite("ratelimit-policy", policies),
				overwrite("ratelimit", fmt.Sprintf(`"%s";r=0;t=%d`, which, secs)),
			},
			Body: body,
		}},
	}
}
