package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// MaxRecordSize bounds a stored record; larger records are rejected unparsed.
const MaxRecordSize = 64 << 10

// Key statuses.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
)

// Record is what keygate stores for one key (in Vault at
// <mount>/<base>/keys/<id>, or in the file store). Its JSON form is the
// documented policy record; see README "Key records". Every field is
// checked by Validate, and unknown fields are rejected by ParseRecord.
type Record struct {
	// Hash is the Digest of the whole key. Required.
	Hash string `json:"hash"`
	// Name is a human label. Optional, at most 256 characters.
	Name string `json:"name,omitempty"`
	// Tenant is sent upstream as x-keygate-tenant. Required.
	Tenant string `json:"tenant"`
	// Owner is the team or person responsible for the key. Optional.
	Owner string `json:"owner,omitempty"`
	// Status is "active" or "revoked". Required.
	Status string `json:"status"`
	// RevokedReason says why a revoked key was revoked ("leaked",
	// "employee left"). Only with status revoked; at most 256 characters.
	RevokedReason string `json:"revoked_reason,omitempty"`
	// NotBefore and ExpiresAt are RFC 3339 times; empty means unbounded.
	NotBefore string `json:"not_before,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
	// Scopes the key grants; a route's required scopes must all be here.
	Scopes []string `json:"scopes,omitempty"`
	// AllowedCIDRs limits the peer address Envoy reports; empty allows any.
	AllowedCIDRs []string `json:"allowed_cidrs,omitempty"`
	// AllowedReferrers limits the Origin (or Referer) header to these
	// origins, e.g. "https://app.example.com" or "https://*.example.com".
	AllowedReferrers []string `json:"allowed_referrers,omitempty"`
	// AllowedHosts limits the request host (:authority, port ignored), e.g.
	// "api.example.com" or "*.example.com".
	AllowedHosts []string `json:"allowed_hosts,omitempty"`
	// Headers are added to the upstream request on allow (overwriting).
	Headers map[string]string `json:"headers,omitempty"`
	// RateLimit and Quota limit the key's requests, per replica (see
	// README "Rate limits"). Optional.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	Quota     *Quota     `json:"quota,omitempty"`
	// GlobalRateLimit and GlobalQuota limit the key's requests across
	// every replica, counted by the rate limit service (keygate serve
	// --ratelimit-service; README "Global limits"). Same shapes as
	// RateLimit and Quota, except that a global rate limit has no burst:
	// the service counts fixed windows of one unit. Optional.
	GlobalRateLimit *RateLimit `json:"global_rate_limit,omitempty"`
	GlobalQuota     *Quota     `json:"global_quota,omitempty"`
	// Metadata is free-form and never sent upstream.
	Metadata map[string]string `json:"metadata,omitempty"`
	// CreatedAt and UpdatedAt are RFC 3339 times written by the CLI.
	CreatedAt string `json:"created_at,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
	// RotatedTo is the id of the key that replaced this one, if any.
	RotatedTo string `json:"rotated_to,omitempty"`
	// Imported marks a key issued outside keygate and migrated with
	// `keygate keys import`: stored under ImportedID of its SHA-256 and
	// found by hash. Its hash must be sha256.
	Imported bool `json:"imported,omitempty"`

	c *Compiled // set by Validate; nil (which Evaluate denies) until then or after a failed one
}

// Compiled is the part of a validated record that decisions need, parsed
// once: a cache keeps this (a few hundred bytes) rather than the whole
// record. It is immutable and safe to share.
type Compiled struct {
	active    bool
	tenant    string
	scopes    []string
	digest    Digest
	notBefore time.Time
	expiresAt time.Time
	cidrs     []netip.Prefix
	referrers []origin
	hosts     []hostPattern
	limits    *Limits
	global    *Limits
}

// Digest is the key's stored hash.
func (c *Compiled) Digest() Digest { return c.digest }

// Tenant is the key's tenant.
func (c *Compiled) Tenant() string { return c.tenant }

// ParseRecord decodes a JSON record strictly (unknown fields and wrong types
// are errors naming the field) and validates it.
func ParseRecord(data []byte) (*Record, error) {
	r, err := parseRecord(data)
	return r, redactErr(err)
}

func parseRecord(data []byte) (*Record, error) {
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("record is %d bytes, limit %d", len(data), MaxRecordSize)
	}
	var r Record
	if err := decodeStrict("record", data, &r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks every field, reports every problem at once (each naming
// its field), and prepares the record for Evaluate.
func (r *Record) Validate() error {
	r.c = nil // a record that fails validation must never evaluate
	var c Compiled
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("record field %q: %s", field, fmt.Sprintf(format, args...)))
	}

	c.digest = r.checkIdentity(bad)
	c.notBefore = parseTime(bad, "not_before", r.NotBefore)
	c.expiresAt = parseTime(bad, "expires_at", r.ExpiresAt)
	parseTime(bad, "created_at", r.CreatedAt)
	parseTime(bad, "updated_at", r.UpdatedAt)
	if !c.notBefore.IsZero() && !c.expiresAt.IsZero() && !c.expiresAt.After(c.notBefore) {
		bad("expires_at", "must be after not_before")
	}
	if r.RotatedTo != "" && !ValidID(r.RotatedTo) {
		bad("rotated_to", "want a key id (%d base62 characters)", IDLen) // never echo: it may be a raw key
	}
	if r.Imported && c.digest.Alg != "" && c.digest.Alg != AlgSHA256 {
		bad("imported", "an imported key is found by its SHA-256: its hash must be %s:<hex>", AlgSHA256)
	}
	checkScopes(bad, r.Scopes)
	c.cidrs = parseCIDRs(bad, r.AllowedCIDRs)
	c.referrers = parseOrigins(bad, r.AllowedReferrers)
	c.hosts = parseHosts(bad, r.AllowedHosts)
	c.limits = compileLimits(bad, "", r.RateLimit, r.Quota)
	c.global = compileLimits(bad, globalPrefix, r.GlobalRateLimit, r.GlobalQuota)
	checkHeaders(bad, r.Headers)
	checkMetadata(bad, r.Metadata)
	if len(errs) == 0 && r.encodedSizeBound() > MaxRecordSize {
		// What a store writes must parse again: bound the size as
		// json.Marshal writes it (it escapes <, > and & as \u003c…).
		// The exact size is computed only when the cheap bound is over.
		if b, err := json.Marshal(r); err != nil || len(b) > MaxRecordSize {
			bad("record", "encodes to %d bytes, limit %d", len(b), MaxRecordSize)
		}
	}

	if err := errors.Join(errs...); err != nil {
		return redactErr(err)
	}
	c.active, c.tenant, c.scopes = r.Status == StatusActive, r.Tenant, slices.Clip(r.Scopes)
	r.c = &c
	return nil
}

// encodedSizeBound is an upper bound of len(json.Marshal(r)): every byte
// escapes to at most 6, plus quotes, separators and field names.
func (r *Record) encodedSizeBound() int {
	n := 512 // field names and punctuation
	for _, s := range []string{r.Hash, r.Name, r.Tenant, r.Owner, r.Status, r.RevokedReason, r.NotBefore, r.ExpiresAt, r.CreatedAt, r.UpdatedAt, r.RotatedTo} {
		n += 6*len(s) + 2
	}
	for _, list := range [][]string{r.Scopes, r.AllowedCIDRs, r.AllowedReferrers, r.AllowedHosts} {
		for _, s := range list {
			n += 6*len(s) + 3
		}
	}
	for _, m := range []map[string]string{r.Headers, r.Metadata} {
		for k, v := range m {
			n += 6*(len(k)+len(v)) + 6
		}
	}
	return n
}

// checkIdentity checks hash, labels and status, returning the digest.
func (r *Record) checkIdentity(bad func(string, string, ...any)) Digest {
	var d Digest
	if r.Hash == "" {
		bad("hash", "required")
	} else if parsed, err := ParseDigest(r.Hash); err != nil {
		bad("hash", "%v", err)
	} else {
		d = parsed
	}
	checkText(bad, "name", r.Name, 256, false)
	checkText(bad, "tenant", r.Tenant, 128, true)
	checkText(bad, "owner", r.Owner, 256, false)
	if r.Tenant != "" && !isHeaderValue(r.Tenant) {
		bad("tenant", "must be printable ASCII (it is sent as a header)")
	}
	switch r.Status {
	case StatusActive, StatusRevoked:
	case "":
		bad("status", "required (%q or %q)", StatusActive, StatusRevoked)
	default:
		bad("status", "%q is not %q or %q", r.Status, StatusActive, StatusRevoked)
	}
	checkText(bad, "revoked_reason", r.RevokedReason, 256, false)
	if r.RevokedReason != "" && r.Status != StatusRevoked {
		bad("revoked_reason", "only for a revoked key (status %q)", StatusRevoked)
	}
	return d
}

// Digest returns the parsed Hash; valid after Validate.
func (r *Record) Digest() Digest {
	if r.c == nil {
		return Digest{}
	}
	return r.c.digest
}

// Compiled returns the decision-ready form of a validated record, or nil
// if the record has not been validated (or failed validation).
func (r *Record) Compiled() *Compiled {
	if r == nil {
		return nil
	}
	return r.c
}

// ExpiresAtTime returns the parsed ExpiresAt (zero if none); valid after
// Validate.
func (r *Record) ExpiresAtTime() time.Time {
	if r.c == nil {
		return time.Time{}
	}
	return r.c.expiresAt
}

// MarshalJSON is the default encoding; it exists so that a Record value and
// a pointer encode the same way (the compiled part is never written).
func (r Record) MarshalJSON() ([]byte, error) {
	type wire Record
	return json.Marshal(wire(r))
}

func parseTime(bad func(string, string, ...any), field, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	switch {
	case err != nil:
		bad(field, "%q is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)", s)
	case t.IsZero():
		// The zero time means "unset" to Evaluate and every caller of
		// ExpiresAtTime: an expires_at there would never expire.
		bad(field, "%q is the zero time, which reads as unset", s)
	}
	return t
}

func checkText(bad func(string, string, ...any), field, s string, max int, required bool) {
	switch {
	case s == "" && required:
		bad(field, "required")
	case len(s) > max:
		bad(field, "%d bytes, limit %d", len(s), max)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		bad(field, "contains control characters")
	}
}

const maxScopes = 256

func checkScopes(bad func(string, string, ...any), scopes []string) {
	if len(scopes) > maxScopes {
		bad("scopes", "%d scopes, limit %d", len(scopes), maxScopes)
	}
	for i, s := range scopes {
		if !validScope(s) {
			bad(fmt.Sprintf("scopes[%d]", i), "%q: want 1-128 of [A-Za-z0-9:._/*-]", s)
		}
	}
}

func validScope(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte(":._/*-", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func parseCIDRs(bad func(string, string, ...any), in []string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range in {
		field := fmt.Sprintf("allowed_cidrs[%d]", i)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				bad(field, "%q is not a CIDR or IP address", s)
				continue
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			bad(field, "%q is not a CIDR (%v)", s, err)
			continue
		}
		if p.Masked() != p {
			bad(field, "%q has host bits set (did you mean %s?)", s, p.Masked())
			continue
		}
		if p.Addr().Is4In6() {
			bad(field, "%q is IPv4-mapped IPv6; write the IPv4 CIDR", s)
			continue
		}
		out = append(out, p)
	}
	return out
}

func checkMetadata(bad func(string, string, ...any), m map[string]string) {
	if len(m) > 64 {
		bad("metadata", "%d entries, limit 64", len(m))
	}
	for k := range m {
		if k == "" || len(k) > 128 {
			bad("metadata", "keys must be 1-128 bytes")
		}
	}
}
