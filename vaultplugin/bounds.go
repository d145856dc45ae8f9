package vaultplugin

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keygate/keygate/policy"
)

// windows are the limit windows of policy.RateLimit.Per / Quota.Per.
var windows = map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}

// withinRole reports every way rec leaves r's bounds, each naming the
// record field: tenant, scopes (a subset of allowed_scopes), restrictions
// (a non-empty subset of the role's, where it has some), limits (within
// the ceilings; required where the role has one), the role's headers
// (exactly) and metadata (each entry kept), and, for a key with a lease,
// an expiry no later than the lease may reach.
func withinRole(rec *policy.Record, r *role, lease *leaseInfo) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("field %q: %s", field, fmt.Sprintf(format, args...)))
	}
	if rec.Tenant != r.Tenant {
		bad("tenant", "the role's keys have tenant %q", r.Tenant)
	}
	if extra := notIn(rec.Scopes, r.AllowedScopes); len(extra) > 0 {
		bad("scopes", "%q not in the role's allowed_scopes %q", extra, r.AllowedScopes)
	}
	restrictions := []struct {
		field     string
		key, role []string
	}{
		{"allowed_hosts", rec.AllowedHosts, r.AllowedHosts},
		{"allowed_cidrs", rec.AllowedCIDRs, r.AllowedCIDRs},
		{"allowed_referrers", rec.AllowedReferrers, r.AllowedReferrers},
	}
	for _, x := range restrictions {
		switch extra := notIn(x.key, x.role); {
		case len(x.role) == 0:
		case len(x.key) == 0:
			bad(x.field, "the role restricts its keys to %q: give a subset, or none for all of them", x.role)
		case len(extra) > 0:
			bad(x.field, "%q not in the role's %s %q", extra, x.field, x.role)
		}
	}
	rl, q, err := r.ceilings()
	if err != nil {
		return err // a stored role always parses; this is a corrupt one
	}
	if msg := rateWithin(rec.RateLimit, rl); msg != "" {
		bad("rate_limit", "%s", msg)
	}
	if msg := quotaWithin(rec.Quota, q); msg != "" {
		bad("quota", "%s", msg)
	}
	if len(r.Headers) > 0 || len(rec.Headers) > 0 {
		if !maps.Equal(rec.Headers, r.Headers) {
			bad("headers", "a key of the role has exactly the role's headers")
		}
	}
	for k, v := range r.Metadata {
		if got, ok := rec.Metadata[k]; !ok || got != v {
			bad("metadata", "the role sets %q: keep it", k)
		}
	}
	if lease != nil {
		end := lease.end()
		if t := rec.ExpiresAtTime(); t.IsZero() || t.After(end) {
			bad("expires_at", "the key's lease (max_ttl %s) ends at %s: its expiry may not be later", lease.MaxTTL, end.UTC().Format(time.RFC3339))
		}
	}
	return errors.Join(errs...)
}

// notIn returns the values of have missing from allowed.
func notIn(have, allowed []string) []string {
	var out []string
	for _, v := range have {
		if !slices.Contains(allowed, v) {
			out = append(out, v)
		}
	}
	return out
}

// rateWithin: a key's token bucket stays under the ceiling's when its
// rate (per second) is no higher and its burst no larger than the
// ceiling's requests (the ceiling's own burst).
func rateWithin(key, ceiling *policy.RateLimit) string {
	switch {
	case ceiling == nil:
		return ""
	case key == nil:
		return fmt.Sprintf("the role's ceiling is %d/%s: a key needs a rate limit within it", ceiling.Requests, ceiling.Per)
	}
	kw, cw := windows[key.Per], windows[ceiling.Per]
	burst := key.Burst
	if burst == 0 {
		burst = key.Requests
	}
	// key.Requests/kw <= ceiling.Requests/cw, in integers.
	if float64(key.Requests)*float64(cw) > float64(ceiling.Requests)*float64(kw) || burst > ceiling.Requests {
		return fmt.Sprintf("%d/%s (burst %d) exceeds the role's ceiling %d/%s", key.Requests, key.Per, burst, ceiling.Requests, ceiling.Per)
	}
	return ""
}

// quotaWithin: a key's fixed-window quota stays under the ceiling's in
// every ceiling window when its window divides the ceiling's (they are
// UTC-aligned) and the windows that fit in one ceiling window add up to
// no more than the ceiling.
func quotaWithin(key, ceiling *policy.Quota) string {
	switch {
	case ceiling == nil:
		return ""
	case key == nil:
		return fmt.Sprintf("the role's ceiling is %d/%s: a key needs a quota within it", ceiling.Requests, ceiling.Per)
	}
	kw, cw := windows[key.Per], windows[ceiling.Per]
	if kw > cw || int64(key.Requests)*int64(cw/kw) > int64(ceiling.Requests) {
		return fmt.Sprintf("%d/%s exceeds the role's ceiling %d/%s", key.Requests, key.Per, ceiling.Requests, ceiling.Per)
	}
	return ""
}
