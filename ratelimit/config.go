package ratelimit

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/field"
)

// Failure is what a key with global limits gets when the service cannot
// answer in time (unreachable, an error, Redis down, past Timeout).
type Failure string

// Failure modes.
const (
	// FailAuto denies keys that have a global quota (a quota is usually a
	// contract: billing, a partner's allowance) and allows keys with only
	// a global rate limit (traffic shaping: the per-replica rate_limit, if
	// any, still applies).
	FailAuto Failure = "auto"
	// FailDeny denies every key with global limits: 503
	// ratelimit_unavailable.
	FailDeny Failure = "deny"
	// FailAllow allows them, uncounted while the service fails.
	FailAllow Failure = "allow"
)

// String is the mode's name.
func (f Failure) String() string { return string(f) }

// UnmarshalText accepts "auto", "deny" or "allow".
func (f *Failure) UnmarshalText(b []byte) error {
	switch v := Failure(b); v {
	case FailAuto, FailDeny, FailAllow:
		*f = v
		return nil
	}
	return fmt.Errorf("%q: want %s, %s or %s", b, FailAuto, FailDeny, FailAllow)
}

// Config configures the Client. Start from DefaultConfig. Validate's
// errors name the fields as keygate serve's flags without their
// "ratelimit-" prefix ("timeout", "tls-ca").
type Config struct {
	// Service is the HOST:PORT of envoyproxy/ratelimit's gRPC listener.
	// Default "": off (a key with global limits is then denied 503
	// ratelimit_unavailable).
	Service string
	// Timeout bounds one ShouldRateLimit call, connection included; keep
	// it well under Envoy's ext_authz timeout (0.25s in envoy/envoy.yaml).
	// More than 0, at most 1s. Default 50ms.
	Timeout time.Duration
	// Failure is what keys with global limits get when the service cannot
	// answer within Timeout. Default FailAuto.
	Failure Failure
	// CAFile is a PEM CA bundle to verify the service's certificate: TLS.
	// Default "": plain text.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and key for
	// mutual TLS (with CAFile). Read once, at New. Default "": none.
	CertFile, KeyFile string
}

// DefaultConfig is keygate serve's when given no flags: off.
func DefaultConfig() Config {
	return Config{Timeout: 50 * time.Millisecond, Failure: FailAuto}
}

// maxTimeout bounds Config.Timeout: past it, Envoy's own ext_authz
// timeout (0.2-0.25s is usual) fires first, and Envoy answers instead of
// keygate.
const maxTimeout = time.Second

// Validate reports every problem at once as *field.Error values. It does
// not change c and reads no file (New does).
func (c Config) Validate() error {
	var l field.List
	if c.Service != "" {
		host, port, err := net.SplitHostPort(c.Service)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			l.Addf("service", "%q: want HOST:PORT, e.g. ratelimit.ratelimit.svc:8081", c.Service)
		}
	}
	if c.Timeout <= 0 || c.Timeout > maxTimeout {
		l.Addf("timeout", "must be > 0 and at most %s (keep it well under Envoy's ext_authz timeout), got %s", maxTimeout, c.Timeout)
	}
	if err := c.Failure.UnmarshalText([]byte(c.Failure)); err != nil {
		l.Addf("failure", "%v", err)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		l.Add("give both, or neither", "tls-cert", "tls-key")
	}
	if c.CertFile != "" && c.CAFile == "" {
		l.Add("a client certificate needs TLS: give the service's CA too", "tls-cert", "tls-ca")
	}
	if c.Service == "" && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "") {
		l.Add("TLS settings without a service to call", "tls-ca", "service")
	}
	return l.Err()
}
