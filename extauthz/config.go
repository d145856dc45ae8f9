// Package extauthz serves Envoy's external-authorization API
// (envoy.service.auth.v3.Authorization/Check) for keygate API keys: key
// extraction, the record cache, policy evaluation and response building.
package extauthz

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/keygate/keygate/policy"
)

// Config configures the Check server. The zero value of each field means its
// default; call SetDefaults then Validate.
type Config struct {
	// KeyPrefix is the key format's prefix. Default "kg".
	KeyPrefix string
	// KeyHeader carries a bare key. Default "x-api-key".
	KeyHeader string
	// AuthHeader carries "Bearer <key>" or "ApiKey <key>". Default
	// "authorization".
	AuthHeader string
	// CacheSize bounds cached key records (found keys). Default 100000.
	CacheSize int
	// NegativeCacheSize bounds cached not-found ids, kept apart so a flood
	// of unknown ids cannot evict valid keys. Default 10000.
	NegativeCacheSize int
	// FoundTTL is how long a record is used before it is read again; a
	// revocation written straight to the store takes effect within it.
	// Default 30s.
	FoundTTL time.Duration
	// NotFoundTTL is how long an unknown id is remembered. Default 5s.
	NotFoundTTL time.Duration
	// StaleTTL is how long past FoundTTL a record may still be used while
	// the store is failing (stale-if-error). Negative disables. Default 5m.
	StaleTTL time.Duration
	// LookupTimeout bounds one store read on the hot path; keep it under
	// Envoy's ext_authz timeout. Default 150ms.
	LookupTimeout time.Duration
	// StoreReadRate caps store reads per second caused by cache misses, so
	// a flood of unknown ids cannot overload Vault; a miss over the rate is
	// denied 503. Negative means unlimited. Default 500.
	StoreReadRate float64
	// StoreReadBurst is the burst allowed over StoreReadRate. Default 100.
	StoreReadBurst int
	// ImportedKeys makes a credential in no keygate format (20-512 visible
	// ASCII characters, not starting with KeyPrefix_) a lookup by hash of a
	// key migrated with `keygate keys import`. Off, it is malformed_key
	// with no store read. Default false.
	ImportedKeys bool
	// UnknownKeyRate caps, per calling peer (Envoy's address), how many
	// checks a second may end as unknown_key: Check answers whether a key
	// exists, so a caller guessing keys is throttled. Past the rate (and
	// UnknownKeyBurst), that caller's keys that are not cached as valid are
	// denied 429 caller_rate_limited until its budget refills; cached valid
	// keys still work. Negative disables. Default 50.
	UnknownKeyRate float64
	// UnknownKeyBurst is the unknown keys a caller may send at once.
	// Default 500.
	UnknownKeyBurst int
	// TrackUsage makes Check note each key presented with its correct
	// secret (allowed or not), once per TakeUsage period, for the last-used
	// write-back. At most CacheSize ids are held between TakeUsage calls;
	// past that, uses are counted as dropped. Default false.
	TrackUsage bool
	// UnknownKeyPerClient keys the UnknownKeyRate budget on the client's
	// address (gRPC: the source address Envoy reports; HTTP mode: the one
	// TrustedProxies lead to) instead of the calling peer's, for a shared
	// gateway whose clients must not exhaust each other's budget. A
	// request without a usable client address is charged to its peer.
	// Default false.
	UnknownKeyPerClient bool
	// MaxRequestBytes is the largest request decided on: the encoded
	// CheckRequest over gRPC, the request's header names and values in
	// HTTP mode. A larger one is denied 413 request_too_large (gRPC accepts
	// messages up to GRPCTransportLimit so that it can). Default 256 KiB.
	MaxRequestBytes int
	// StripHeaders are header names every allow removes unless the key's
	// record sets them, in addition to keygate's identity headers and every
	// header name of the records this server has loaded. List the names
	// your records use, so a client's copy is removed even before a record
	// carrying the name was read. Lower case.
	StripHeaders []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed in
	// HTTP mode: the client is the rightmost address not in this set
	// (nginx real_ip_recursive). Empty: the connecting peer is the client.
	TrustedProxies []netip.Prefix
	// Routes, when set, maps host/method/path to required scopes, in
	// addition to Envoy's keygate.scopes context extension.
	Routes *policy.Routes
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// SetDefaults fills zero fields with their defaults.
func (c *Config) SetDefaults() {
	setDefault(&c.KeyPrefix, policy.DefaultPrefix)
	setDefault(&c.KeyHeader, "x-api-key")
	setDefault(&c.AuthHeader, "authorization")
	setDefault(&c.CacheSize, 100_000)
	setDefault(&c.NegativeCacheSize, 10_000)
	setDefault(&c.FoundTTL, 30*time.Second)
	setDefault(&c.NotFoundTTL, 5*time.Second)
	setDefault(&c.StaleTTL, 5*time.Minute)
	setDefault(&c.LookupTimeout, 150*time.Millisecond)
	setDefault(&c.StoreReadRate, 500)
	setDefault(&c.StoreReadBurst, 100)
	setDefault(&c.UnknownKeyRate, 50)
	setDefault(&c.UnknownKeyBurst, 500)
	setDefault(&c.MaxRequestBytes, 256<<10)
	if c.Now == nil {
		c.Now = time.Now
	}
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Validate reports every problem at once, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("extauthz: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, err := policy.NewFormat(c.KeyPrefix); err != nil {
		bad("key-prefix", "%v", err)
	}
	for _, f := range []struct{ field, name string }{{"key-header", c.KeyHeader}, {"auth-header", c.AuthHeader}} {
		field, name := f.field, f.name
		switch {
		case !policy.IsHeaderName(name):
			bad(field, "%q: want a lower-case header name", name)
		case strings.HasPrefix(name, "x-keygate-"):
			bad(field, "%q: x-keygate-* headers are keygate's identity headers", name)
		case name == "origin" || name == "referer" || name == "host" || name == "cookie":
			bad(field, "%q: keygate reads this header for other purposes", name)
		}
	}
	if c.KeyHeader == c.AuthHeader {
		bad("key-header", "must differ from auth-header")
	}
	for _, f := range []struct {
		field string
		d     time.Duration
	}{{"found-ttl", c.FoundTTL}, {"not-found-ttl", c.NotFoundTTL}, {"lookup-timeout", c.LookupTimeout}} {
		if f.d <= 0 {
			bad(f.field, "must be > 0, got %s", f.d)
		}
	}
	if c.CacheSize <= 0 {
		bad("cache-size", "must be > 0, got %d", c.CacheSize)
	}
	if c.NegativeCacheSize <= 0 {
		bad("negative-cache-size", "must be > 0, got %d", c.NegativeCacheSize)
	}
	if c.UnknownKeyBurst < 1 {
		bad("unknown-key-burst", "must be >= 1, got %d", c.UnknownKeyBurst)
	}
	if c.StoreReadBurst < 1 {
		bad("store-read-burst", "must be >= 1, got %d", c.StoreReadBurst)
	}
	if c.MaxRequestBytes < 16<<10 || c.MaxRequestBytes > maxRequestLimit {
		bad("max-request-bytes", "must be between 16 KiB and %d MiB, got %d", maxRequestLimit>>20, c.MaxRequestBytes)
	}
	for i, name := range c.StripHeaders {
		switch {
		case !policy.IsHeaderName(name):
			bad(fmt.Sprintf("strip-headers[%d]", i), "%q: want a lower-case header name", name)
		case policy.ReservedHeader(name) != "" && !strings.HasPrefix(name, identityPfx):
			bad(fmt.Sprintf("strip-headers[%d]", i), "%q: %s", name, policy.ReservedHeader(name))
		}
	}
	for i, p := range c.TrustedProxies {
		if !p.IsValid() || p != p.Masked() {
			bad(fmt.Sprintf("trusted-proxies[%d]", i), "%q: want a CIDR without host bits, e.g. 10.0.0.0/8", p)
		}
	}
	return errors.Join(errs...)
}

// maxRequestLimit is the largest MaxRequestBytes: gRPC refuses messages
// past GRPCTransportLimit, which must stay above it.
const maxRequestLimit = 16 << 20

// GRPCTransportLimit is the largest gRPC message the server accepts: up to
// it, a CheckRequest over MaxRequestBytes gets an explicit deny rather than
// a gRPC RESOURCE_EXHAUSTED error. Past it (far more than Envoy ever sends)
// gRPC refuses the message.
func (c *Config) GRPCTransportLimit() int { return max(4<<20, 2*c.MaxRequestBytes) }
