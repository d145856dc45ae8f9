// Package extauthz serves Envoy's external-authorization API
// (envoy.service.auth.v3.Authorization/Check) for keygate API keys: key
// extraction, the record cache, policy evaluation and response building.
package extauthz

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/policy"
)

// Config configures the Check server. Start from DefaultConfig: every
// field is explicit, and a zero is never read as "the default". The
// Validate errors name each field as keygate serve's flag is named
// (found-ttl), so the CLI can say which flag or variable to fix.
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
	// FoundTTL is how long a record is used before it is read again while
	// no change feed vouches for it (see MaxRecordAge); a revocation written
	// straight to the store takes effect within it then. Default 30s.
	FoundTTL time.Duration
	// MaxRecordAge is how long a record is used before it is read again
	// while a change feed is healthy (Server.ChangeFeed): the feed evicts
	// changed records, so this is only a safety net. Each key's age is
	// spread ±10%, so refreshes do not align. A change written straight to
	// the store, bypassing the feed, takes effect within it. 0 turns it off
	// (every record is re-read after FoundTTL); a value under FoundTTL adds
	// nothing. Default 10m.
	MaxRecordAge time.Duration
	// NotFoundTTL is how long an unknown id is remembered. Default 5s.
	NotFoundTTL time.Duration
	// StaleTTL is how long a record may still be used while the store is
	// failing (stale-if-error), counted from when it stopped being fresh:
	// FoundTTL after its read, or, while a change feed vouched for it, when
	// the feed stopped being healthy or the record reached its max age. 0
	// disables serving stale. Default 5m.
	StaleTTL time.Duration
	// LookupTimeout bounds one store read on the hot path; keep it under
	// Envoy's ext_authz timeout. Default 150ms.
	LookupTimeout time.Duration
	// StoreReadRate caps store reads per second caused by cache misses, so
	// a flood of unknown ids cannot overload Vault; a miss over the rate is
	// denied 503. Negative means unlimited; 0 is invalid. Default 500.
	StoreReadRate float64
	// StoreReadBurst is the burst allowed over StoreReadRate. Default 100.
	StoreReadBurst int
	// ImportedKeys makes a credential in no keygate format (20-512 visible
	// ASCII characters, not starting with KeyPrefix_) a lookup by hash of a
	// key migrated with `keygate keys import`. Off, it is malformed_key
	// with no store read. Default false.
	ImportedKeys bool
	// UnknownKeyRate caps, per caller (see UnknownKeyPer), how many
	// checks a second may end as unknown_key: Check answers whether a key
	// exists, so a caller guessing keys is throttled. Past the rate (and
	// UnknownKeyBurst), that caller's keys that are not cached as valid are
	// denied 429 caller_rate_limited until its budget refills; cached valid
	// keys still work. Negative means unlimited; 0 is invalid. Default 50.
	UnknownKeyRate float64
	// UnknownKeyBurst is the unknown keys a caller may send at once.
	// Default 500.
	UnknownKeyBurst int
	// UnknownKeyPer is what the UnknownKeyRate budget is counted per.
	// Default PerPeer.
	UnknownKeyPer CallerKey
	// TrackUsage makes Check note each key presented with its correct
	// secret (allowed or not), once per TakeUsage period, for the last-used
	// write-back. At most CacheSize ids are held between TakeUsage calls;
	// past that, uses are counted as dropped. Default false.
	TrackUsage bool
	// MaxRequestBytes is the largest request decided on: the encoded
	// CheckRequest over gRPC, the request's header names and values in
	// HTTP mode. A larger one is denied 413 request_too_large (gRPC accepts
	// messages up to GRPCTransportLimit so that it can). Default 256 KiB;
	// at least 16 KiB, at most 16 MiB.
	MaxRequestBytes int
	// StripHeaders are header names every allow removes unless the key's
	// record sets them, in addition to keygate's identity headers and every
	// header name of the records this server has loaded. List the names
	// your records use, so a client's copy is removed even before a record
	// carrying the name was read. Lower case. Default none.
	StripHeaders []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed in
	// HTTP mode: the client is the rightmost address not in this set
	// (nginx real_ip_recursive). Default none: the connecting peer is the
	// client.
	TrustedProxies []netip.Prefix
	// Routes, when set, maps host/method/path to required scopes, in
	// addition to Envoy's keygate.scopes context extension. Default nil.
	Routes *policy.Routes
	// Global counts keys' global_rate_limit and global_quota across
	// replicas (package ratelimit). nil: a key that has either is denied
	// 503 ratelimit_unavailable, never allowed past a limit it asks for.
	// Keys without them never reach it. Default nil.
	Global GlobalLimiter
	// Now is the clock. Default time.Now; required.
	Now func() time.Time
}

// CallerKey is what the unknown-key budget (Config.UnknownKeyRate) is
// counted per.
type CallerKey string

// What the unknown-key budget is counted per.
const (
	// PerPeer counts per calling peer: Envoy's address, or the connecting
	// address in HTTP mode.
	PerPeer CallerKey = "peer"
	// PerClient counts per client address (gRPC: the source address Envoy
	// reports; HTTP mode: the one TrustedProxies lead to), for a shared
	// gateway whose clients must not exhaust each other's budget. A
	// request without a usable client address is charged to its peer.
	PerClient CallerKey = "client"
)

// String is the key's name.
func (k CallerKey) String() string { return string(k) }

// UnmarshalText accepts "peer" or "client".
func (k *CallerKey) UnmarshalText(b []byte) error {
	switch v := CallerKey(b); v {
	case PerPeer, PerClient:
		*k = v
		return nil
	}
	return fmt.Errorf("%q: want %s or %s", b, PerPeer, PerClient)
}

// DefaultConfig is the configuration keygate serve runs with when given no
// flags: the one place its Check defaults are written.
func DefaultConfig() Config {
	return Config{
		KeyPrefix:         policy.DefaultPrefix,
		KeyHeader:         "x-api-key",
		AuthHeader:        "authorization",
		CacheSize:         100_000,
		NegativeCacheSize: 10_000,
		FoundTTL:          30 * time.Second,
		MaxRecordAge:      10 * time.Minute,
		NotFoundTTL:       5 * time.Second,
		StaleTTL:          5 * time.Minute,
		LookupTimeout:     150 * time.Millisecond,
		StoreReadRate:     500,
		StoreReadBurst:    100,
		UnknownKeyRate:    50,
		UnknownKeyBurst:   500,
		UnknownKeyPer:     PerPeer,
		MaxRequestBytes:   256 << 10,
		Now:               time.Now,
	}
}

// Validate reports every problem at once, as *field.Error values naming
// the fields as serve's flags. It does not change c.
func (c Config) Validate() error {
	var l field.List
	if _, err := policy.NewFormat(c.KeyPrefix); err != nil {
		l.Addf("key-prefix", "%v", err)
	}
	for _, f := range []struct{ field, name string }{{"key-header", c.KeyHeader}, {"auth-header", c.AuthHeader}} {
		field, name := f.field, f.name
		switch {
		case !policy.IsHeaderName(name):
			l.Addf(field, "%q: want a lower-case header name", name)
		case strings.HasPrefix(name, "x-keygate-"):
			l.Addf(field, "%q: x-keygate-* headers are keygate's identity headers", name)
		case name == "origin" || name == "referer" || name == "host" || name == "cookie":
			l.Addf(field, "%q: keygate reads this header for other purposes", name)
		}
	}
	if c.KeyHeader == c.AuthHeader {
		l.Add("must differ", "key-header", "auth-header")
	}
	c.validateLimits(&l)
	for i, name := range c.StripHeaders {
		switch {
		case !policy.IsHeaderName(name):
			l.Addf(fmt.Sprintf("strip-headers[%d]", i), "%q: want a lower-case header name", name)
		case policy.ReservedHeader(name) != "" && !strings.HasPrefix(name, identityPfx):
			l.Addf(fmt.Sprintf("strip-headers[%d]", i), "%q: %s", name, policy.ReservedHeader(name))
		}
	}
	for i, p := range c.TrustedProxies {
		if !p.IsValid() || p != p.Masked() {
			l.Addf(fmt.Sprintf("trusted-proxies[%d]", i), "%q: want a CIDR without host bits, e.g. 10.0.0.0/8", p)
		}
	}
	if c.UnknownKeyPer != PerPeer && c.UnknownKeyPer != PerClient {
		l.Addf("unknown-key-per", "%q: want %s or %s", c.UnknownKeyPer, PerPeer, PerClient)
	}
	if c.Now == nil {
		l.Addf("now", "required (time.Now)")
	}
	return l.Err()
}

// validateLimits checks the sizes, durations and rates.
func (c Config) validateLimits(l *field.List) {
	for _, f := range []struct {
		field string
		d     time.Duration
	}{{"found-ttl", c.FoundTTL}, {"not-found-ttl", c.NotFoundTTL}, {"lookup-timeout", c.LookupTimeout}} {
		if f.d <= 0 {
			l.Addf(f.field, "must be > 0, got %s", f.d)
		}
	}
	if c.StaleTTL < 0 {
		l.Addf("stale-ttl", "must be >= 0 (0 disables), got %s", c.StaleTTL)
	}
	if c.MaxRecordAge < 0 {
		l.Addf("max-record-age", "must be >= 0 (0 disables), got %s", c.MaxRecordAge)
	}
	for _, n := range []struct {
		field string
		v     int
	}{{"cache-size", c.CacheSize}, {"negative-cache-size", c.NegativeCacheSize},
		{"store-read-burst", c.StoreReadBurst}, {"unknown-key-burst", c.UnknownKeyBurst}} {
		if n.v <= 0 {
			l.Addf(n.field, "must be > 0, got %d", n.v)
		}
	}
	for _, r := range []struct {
		field string
		v     float64
	}{{"store-read-rate", c.StoreReadRate}, {"unknown-key-rate", c.UnknownKeyRate}} {
		if !(r.v > 0 || r.v < 0) { // 0 or NaN
			l.Addf(r.field, "must be > 0, or negative for unlimited, got %v", r.v)
		}
	}
	if c.MaxRequestBytes < 16<<10 || c.MaxRequestBytes > maxRequestLimit {
		l.Addf("max-request-bytes", "must be between 16 KiB and %d MiB, got %d", maxRequestLimit>>20, c.MaxRequestBytes)
	}
}

// maxRequestLimit is the largest MaxRequestBytes: gRPC refuses messages
// past GRPCTransportLimit, which must stay above it.
const maxRequestLimit = 16 << 20

// GRPCTransportLimit is the largest gRPC message the server accepts: up to
// it, a CheckRequest over MaxRequestBytes gets an explicit deny rather than
// a gRPC RESOURCE_EXHAUSTED error. Past it (far more than Envoy ever sends)
// gRPC refuses the message.
func (c *Config) GRPCTransportLimit() int { return max(4<<20, 2*c.MaxRequestBytes) }
