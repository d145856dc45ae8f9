// Package ratelimit counts keys' requests against their global limits
// (a record's global_rate_limit and global_quota) with envoyproxy/ratelimit,
// the rate limit service Envoy's own filter calls, so that every keygate
// replica shares one count in its Redis. Client implements
// extauthz.GlobalLimiter.
//
// Each call is one RateLimitService/ShouldRateLimit request in the domain
// "keygate" with a descriptor per limit: [(key_id, <id>)] carrying the
// key's global_rate_limit and [(key_quota, <id>)] carrying its
// global_quota as the descriptor's limit override, so one service
// configuration (envoy/ratelimit-service.yaml) serves every key. The
// service counts fixed windows of one unit (a minute limit resets at each
// whole UTC minute) and increments every descriptor it is sent, including
// on requests it refuses.
package ratelimit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/policy"
)

// The domain and descriptor keys keygate sends; envoy/ratelimit-service.yaml
// defines them (and envoy/ratelimit.yaml sends the same from Envoy).
const (
	Domain        = "keygate"
	DescriptorKey = "key_id"    // value: the key id; limit: global_rate_limit
	QuotaKey      = "key_quota" // value: the key id; limit: global_quota
)

// Results of one call, as the observer (metrics) is told them.
const (
	ResultOK        = "ok"         // the service allowed the request
	ResultOverLimit = "over_limit" // the service refused it
	ResultTimeout   = "timeout"    // no answer within Config.Timeout
	ResultError     = "error"      // any other failure: unreachable, a gRPC error (Redis down), an unreadable answer
)

// Results lists every result, for metrics and their tests.
var Results = []string{ResultOK, ResultOverLimit, ResultTimeout, ResultError}

// Client calls the rate limit service. It is safe for concurrent use.
type Client struct {
	cfg     Config
	log     *slog.Logger
	conn    *grpc.ClientConn
	rls     rlsv3.RateLimitServiceClient
	observe atomic.Pointer[func(result string, took time.Duration)]
	failing atomic.Bool // the last call failed: logged once per outage
	now     func() time.Time
}

// New validates cfg, reads its TLS files and prepares the connection to
// cfg.Service (connecting in the background: New does not wait for the
// service, which may start later). Configuration errors are *field.Error
// values named as Validate names them. Close the Client when done.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Service == "" {
		return nil, errors.New("ratelimit: no service address")
	}
	creds, err := transportCredentials(cfg)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(cfg.Service,
		grpc.WithTransportCredentials(creds),
		// Reconnect soon after the service comes back: the default
		// backoff grows to 2 minutes, all of them answered by the
		// failure mode.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: time.Second,
		}),
		// Stay connected while idle: the first call after a quiet spell
		// must not spend its Timeout on a handshake.
		grpc.WithIdleTimeout(0),
		grpc.WithUserAgent("keygate"),
	)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	conn.Connect()
	return &Client{cfg: cfg, log: log, conn: conn, rls: rlsv3.NewRateLimitServiceClient(conn), now: time.Now}, nil
}

// transportCredentials are plain text, or TLS with cfg.CAFile (and a
// client certificate with CertFile/KeyFile). Errors name the setting.
func transportCredentials(cfg Config) (credentials.TransportCredentials, error) {
	if cfg.CAFile == "" {
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fieldErr("tls-ca", err)
	}
	c := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fieldErr("tls-ca", fmt.Errorf("%s: no PEM certificate", cfg.CAFile))
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fieldErr("tls-cert", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(c), nil
}

// SetObserver installs a function told the result and duration of every
// call (for metrics).
func (c *Client) SetObserver(f func(result string, took time.Duration)) { c.observe.Store(&f) }

// Close closes the connection. Take must not be called after.
func (c *Client) Close() error { return c.conn.Close() }

// Take charges one request of keyID to lim's rate and quota (see
// extauthz.GlobalLimiter): Allowed, RateLimited or QuotaExceeded with the
// time until the refusing window resets, or, when the service fails or
// does not answer within Config.Timeout, what Config.Failure says:
// Allowed or RateLimitUnavailable.
func (c *Client) Take(ctx context.Context, keyID string, lim *policy.Limits) (policy.Reason, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.rls.ShouldRateLimit(ctx, request(keyID, lim))
	took := time.Since(start)
	result, reason, retry := c.answer(resp, err, lim)
	if f := c.observe.Load(); f != nil {
		(*f)(result, took)
	}
	c.logOutage(ctx, keyID, result, reason, err, resp)
	return reason, retry
}

// logOutage logs the first failure after an answer (warn) and the first
// answer after a failure (info), so an outage is two lines, not one per
// request; every failure is logged at debug.
func (c *Client) logOutage(ctx context.Context, keyID, result string, reason policy.Reason, err error, resp *rlsv3.RateLimitResponse) {
	answered := result == ResultOK || result == ResultOverLimit
	switch {
	case answered && c.failing.Load() && c.failing.CompareAndSwap(true, false):
		c.log.LogAttrs(ctx, slog.LevelInfo, "rate limit service answering again", slog.String("service", c.cfg.Service))
	case answered:
	case c.failing.CompareAndSwap(false, true):
		c.log.LogAttrs(ctx, slog.LevelWarn, "rate limit service failing: keys with global limits get --ratelimit-failure's answer",
			slog.String("service", c.cfg.Service), slog.String("failure", string(c.cfg.Failure)), slog.String("result", result),
			slog.String("error", errText(err, resp)))
	case c.log.Enabled(ctx, slog.LevelDebug):
		c.log.LogAttrs(ctx, slog.LevelDebug, "rate limit service failed", slog.String("key_id", keyID),
			slog.String("result", result), slog.String("error", errText(err, resp)), slog.String("reason", reason.String()))
	}
}

// request is the ShouldRateLimit request for keyID under lim: one
// descriptor per limit, the rate first.
func request(keyID string, lim *policy.Limits) *rlsv3.RateLimitRequest {
	req := &rlsv3.RateLimitRequest{Domain: Domain, HitsAddend: 1,
		Descriptors: make([]*ratelimitv3.RateLimitDescriptor, 0, 2)}
	if lim.RateRequests > 0 {
		req.Descriptors = append(req.Descriptors, descriptor(DescriptorKey, keyID, lim.RateRequests, lim.RateWindow))
	}
	if lim.Quota > 0 {
		req.Descriptors = append(req.Descriptors, descriptor(QuotaKey, keyID, lim.Quota, lim.QuotaWindow))
	}
	return req
}

func descriptor(key, keyID string, requests int, window time.Duration) *ratelimitv3.RateLimitDescriptor {
	return &ratelimitv3.RateLimitDescriptor{
		Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: key, Value: keyID}},
		Limit: &ratelimitv3.RateLimitDescriptor_RateLimitOverride{
			RequestsPerUnit: uint32(requests), // at most policy.MaxLimitRequests
			Unit:            typev3.RateLimitUnit(typev3.RateLimitUnit_value[policy.LimitUnit(window)]),
		},
	}
}

// answer reads the service's answer (or error) as a result for the
// observer and a decision: the refusing limit and when it resets, or the
// failure mode's answer.
func (c *Client) answer(resp *rlsv3.RateLimitResponse, err error, lim *policy.Limits) (string, policy.Reason, time.Duration) {
	switch {
	case err != nil:
		result := ResultError
		if status.Code(err) == codes.DeadlineExceeded {
			result = ResultTimeout
		}
		return result, c.failure(lim), 0
	case resp.GetOverallCode() == rlsv3.RateLimitResponse_OK:
		return ResultOK, policy.Allowed, 0
	case resp.GetOverallCode() == rlsv3.RateLimitResponse_OVER_LIMIT:
		reason, retry := c.refused(resp, lim)
		return ResultOverLimit, reason, retry
	}
	return ResultError, c.failure(lim), 0 // UNKNOWN: not an answer
}

// refused says which limit an OVER_LIMIT answer is for (the quota when
// both are over: it resets later) and when it resets. An answer that does
// not say (it should) is the rate limit, or the quota for a key without
// one, retried when its current window ends.
func (c *Client) refused(resp *rlsv3.RateLimitResponse, lim *policy.Limits) (policy.Reason, time.Duration) {
	statuses := resp.GetStatuses()
	rate, quota := -1, -1 // their indexes in the request, as in request
	switch {
	case lim.RateRequests > 0 && lim.Quota > 0:
		rate, quota = 0, 1
	case lim.RateRequests > 0:
		rate = 0
	default:
		quota = 0
	}
	over := func(i int) (time.Duration, bool) {
		if i < 0 || i >= len(statuses) || statuses[i].GetCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
			return 0, false
		}
		return statuses[i].GetDurationUntilReset().AsDuration(), true
	}
	if retry, ok := over(quota); ok {
		return policy.QuotaExceeded, retry
	}
	if retry, ok := over(rate); ok {
		return policy.RateLimited, retry
	}
	now := c.now()
	if rate >= 0 {
		return policy.RateLimited, now.Truncate(lim.RateWindow).Add(lim.RateWindow).Sub(now)
	}
	return policy.QuotaExceeded, now.Truncate(lim.QuotaWindow).Add(lim.QuotaWindow).Sub(now)
}

// failure is Config.Failure's answer for a key with lim.
func (c *Client) failure(lim *policy.Limits) policy.Reason {
	switch {
	case c.cfg.Failure == FailAllow:
		return policy.Allowed
	case c.cfg.Failure == FailAuto && lim.Quota == 0:
		return policy.Allowed
	}
	return policy.RateLimitUnavailable
}

func errText(err error, resp *rlsv3.RateLimitResponse) string {
	if err != nil {
		return err.Error()
	}
	return "overall code " + resp.GetOverallCode().String()
}

// fieldErr names the setting a TLS file belongs to, as Validate does.
func fieldErr(name string, err error) error {
	return &field.Error{Names: []string{name}, Problem: err.Error()}
}
