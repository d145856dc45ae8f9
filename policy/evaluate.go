package policy

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Request is what Evaluate needs to know about one HTTP request.
type Request struct {
	Now time.Time
	// RequiredScopes (from the routes file) and ScopeList (space-separated,
	// from Envoy's per-route context extension keygate.scopes) must all be
	// granted by the key.
	RequiredScopes []string
	ScopeList      string
	// SourceIP is the peer address Envoy reported (invalid if unknown).
	SourceIP netip.Addr
	// Host is the request's :authority, possibly with a port; see ParseHost.
	Host string
	// Origin and Referer are the request's headers ("" if absent).
	Origin, Referer string
}

// Evaluate decides whether the key admits req; its hash must already have
// been verified. Checks run in a fixed order: validity, lifetime, host,
// source address, referrer, scopes. A nil Compiled (the Compiled of a
// record that did not validate) denies with InvalidRecord.
func (c *Compiled) Evaluate(req *Request) Reason {
	if r := c.lifetime(req.Now); r != Allowed {
		return r
	}
	if r := c.hostAllowed(req.Host); r != Allowed {
		return r
	}
	switch {
	case len(c.cidrs) > 0 && !c.sourceAllowed(req.SourceIP):
		return CIDRDenied
	case len(c.referrers) > 0 && !c.referrerAllowed(req.Origin, req.Referer):
		return ReferrerDenied
	case !hasScopes(c.scopes, req.RequiredScopes) || !hasScopeList(c.scopes, req.ScopeList):
		return ScopeDenied
	}
	return Allowed
}

// lifetime checks that the key is usable at now: validated, active, past
// not_before and before expires_at.
func (c *Compiled) lifetime(now time.Time) Reason {
	switch {
	case c == nil:
		return InvalidRecord
	case now.IsZero():
		return InternalError // a caller bug: without a clock, expiry cannot be checked
	case !c.active:
		return Revoked
	case !c.notBefore.IsZero() && now.Before(c.notBefore):
		return NotYetValid
	case !c.expiresAt.IsZero() && !now.Before(c.expiresAt):
		return Expired
	}
	return Allowed
}

// hasScopes reports whether have holds every scope in required.
func hasScopes(have, required []string) bool {
	for _, need := range required {
		if !slices.Contains(have, need) {
			return false
		}
	}
	return true
}

// hasScopeList is hasScopes for a space-separated list, without allocating.
func hasScopeList(have []string, list string) bool {
	for list != "" {
		need := list
		if i := strings.IndexAny(list, " \t"); i >= 0 {
			need, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		if need != "" && !slices.Contains(have, need) {
			return false
		}
	}
	return true
}

// hostAllowed matches the request's host against allowed_hosts: a host a
// router could read differently (see ParseHost) is InvalidHost, never
// matched after cutting at a colon.
func (c *Compiled) hostAllowed(authority string) Reason {
	if len(c.hosts) == 0 {
		return Allowed
	}
	h, ok := ParseHost(authority)
	if !ok {
		return InvalidHost
	}
	for _, p := range c.hosts {
		if p.match(h) {
			return Allowed
		}
	}
	return HostDenied
}

func (c *Compiled) sourceAllowed(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range c.cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// referrerAllowed uses Origin when present (browsers send it on CORS and
// POST), else the Referer's origin. Neither present denies.
func (c *Compiled) referrerAllowed(originHdr, referer string) bool {
	v := originHdr
	if v == "" || v == "null" {
		v = referer
	}
	if v == "" {
		return false
	}
	u, err := url.Parse(v)
	if err != nil {
		return false
	}
	for _, o := range c.referrers {
		if o.match(u) {
			return true
		}
	}
	return false
}
