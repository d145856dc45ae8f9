package policy

import (
	"net/netip"
	"net/url"
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
	// Host is the request's :authority, possibly with a port.
	Host string
	// Origin and Referer are the request's headers ("" if absent).
	Origin, Referer string
}

// Evaluate decides whether rec admits req. The key's hash must already have
// been verified. Checks run in a fixed order: validity, lifetime, host,
// source address, referrer, scopes. A record that was not validated denies.
func Evaluate(rec *Record, req *Request) Reason {
	switch {
	case rec == nil || !rec.c.ok:
		return InvalidRecord
	case req.Now.IsZero():
		return InternalError // a caller bug: without a clock, expiry cannot be checked
	case rec.Status != StatusActive:
		return Revoked
	case !rec.c.notBefore.IsZero() && req.Now.Before(rec.c.notBefore):
		return NotYetValid
	case !rec.c.expiresAt.IsZero() && !req.Now.Before(rec.c.expiresAt):
		return Expired
	case len(rec.c.hosts) > 0 && !rec.hostAllowed(req.Host):
		return HostDenied
	case len(rec.c.cidrs) > 0 && !rec.sourceAllowed(req.SourceIP):
		return CIDRDenied
	case len(rec.c.referrers) > 0 && !rec.referrerAllowed(req.Origin, req.Referer):
		return ReferrerDenied
	case !rec.HasScopes(req.RequiredScopes) || !rec.hasScopeList(req.ScopeList):
		return ScopeDenied
	}
	return Allowed
}

// HasScopes reports whether the key grants every scope in required.
func (r *Record) HasScopes(required []string) bool {
	for _, need := range required {
		if !r.hasScope(need) {
			return false
		}
	}
	return true
}

// hasScopeList is HasScopes for a space-separated list, without allocating.
func (r *Record) hasScopeList(list string) bool {
	for list != "" {
		need := list
		if i := strings.IndexAny(list, " \t"); i >= 0 {
			need, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		if need != "" && !r.hasScope(need) {
			return false
		}
	}
	return true
}

func (r *Record) hasScope(need string) bool {
	for _, have := range r.Scopes {
		if have == need {
			return true
		}
	}
	return false
}

func (r *Record) hostAllowed(host string) bool {
	h := requestHost(host)
	for _, p := range r.c.hosts {
		if p.match(h) {
			return true
		}
	}
	return false
}

func (r *Record) sourceAllowed(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range r.c.cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// referrerAllowed uses Origin when present (browsers send it on CORS and
// POST), else the Referer's origin. Neither present denies.
func (r *Record) referrerAllowed(originHdr, referer string) bool {
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
	for _, o := range r.c.referrers {
		if o.match(u) {
			return true
		}
	}
	return false
}
