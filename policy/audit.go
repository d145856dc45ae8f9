package policy

import (
	"fmt"
	"strings"
	"time"
)

// Finding is one risk `keygate keys audit` reports about a key.
type Finding struct {
	Code   string `json:"code"` // stable: no_expiry, long_lived, expired_active, wide_cidr, many_scopes, wildcard_scope, unused, imported
	Detail string `json:"detail"`
}

// AuditOptions are the thresholds of Audit. Zero values take the defaults.
type AuditOptions struct {
	MaxLifetime time.Duration // longer remaining life is long_lived; default 365 days
	MaxScopes   int           // more scopes is many_scopes; default 10
	MinPrefixV4 int           // a shorter IPv4 prefix is wide_cidr; default 16
	MinPrefixV6 int           // a shorter IPv6 prefix is wide_cidr; default 48
}

func (o AuditOptions) withDefaults() AuditOptions {
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = 365 * 24 * time.Hour
	}
	if o.MaxScopes <= 0 {
		o.MaxScopes = 10
	}
	if o.MinPrefixV4 <= 0 {
		o.MinPrefixV4 = 16
	}
	if o.MinPrefixV6 <= 0 {
		o.MinPrefixV6 = 48
	}
	return o
}

// Audit lists the risks of a validated record at time now. Revoked keys
// have none: they cannot be used.
func Audit(rec *Record, now time.Time, opts AuditOptions) []Finding {
	if rec == nil || rec.c == nil || rec.Status != StatusActive {
		return nil
	}
	o := opts.withDefaults()
	var out []Finding
	add := func(code, format string, args ...any) {
		out = append(out, Finding{Code: code, Detail: fmt.Sprintf(format, args...)})
	}
	switch exp := rec.c.expiresAt; {
	case exp.IsZero():
		add("no_expiry", "the key never expires")
	case !now.Before(exp):
		add("expired_active", "expired %s but not revoked", exp.Format(time.RFC3339))
	case exp.Sub(now) > o.MaxLifetime:
		add("long_lived", "expires %s, more than %s from now", exp.Format(time.RFC3339), o.MaxLifetime)
	}
	if rec.Imported {
		add("imported", "issued outside keygate (no checksum; found by hash): rotate it to a keygate key")
	}
	for _, p := range rec.c.cidrs {
		minBits := o.MinPrefixV6
		if p.Addr().Is4() {
			minBits = o.MinPrefixV4
		}
		if p.Bits() < minBits {
			add("wide_cidr", "allows %s", p)
		}
	}
	if n := len(rec.Scopes); n > o.MaxScopes {
		add("many_scopes", "%d scopes (more than %d)", n, o.MaxScopes)
	}
	for _, s := range rec.Scopes {
		if strings.Contains(s, "*") {
			add("wildcard_scope", "scope %q", s)
		}
	}
	return out
}

// UnusedSince returns since when a key has gone unused: its last recorded
// use, else (never used) its created_at; false when neither is known (a
// record written by hand without created_at, never used).
func UnusedSince(rec *Record, lastUsed time.Time) (time.Time, bool) {
	if !lastUsed.IsZero() {
		return lastUsed, true
	}
	if rec == nil {
		return time.Time{}, false
	}
	created, err := time.Parse(time.RFC3339, rec.CreatedAt)
	return created, err == nil
}

// AuditUnused returns an "unused" finding for an active key not used for
// longer than unusedFor at time now (lastUsed zero: never used), or nil.
// A key whose age is unknown and that was never used is reported: nobody
// can show it is needed.
func AuditUnused(rec *Record, lastUsed, now time.Time, unusedFor time.Duration) *Finding {
	if rec == nil || rec.c == nil || rec.Status != StatusActive || unusedFor <= 0 {
		return nil
	}
	since, known := UnusedSince(rec, lastUsed)
	switch {
	case !known:
		return &Finding{Code: "unused", Detail: "never used, and its age is unknown (no created_at)"}
	case now.Sub(since) <= unusedFor:
		return nil
	case lastUsed.IsZero():
		return &Finding{Code: "unused", Detail: fmt.Sprintf("never used since it was created %s", since.Format(time.RFC3339))}
	}
	return &Finding{Code: "unused", Detail: fmt.Sprintf("last used %s, more than %s ago", since.Format(time.RFC3339), unusedFor)}
}
