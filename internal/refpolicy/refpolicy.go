// Package refpolicy is a second, deliberately plain reading of the policy
// rules README documents ("Key records", "Decisions", "Route
// requirements"), written without the policy package's code, for fuzz tests
// to compare it against exactly. It is slow and allocates; it is an oracle,
// not a second implementation to run.
package refpolicy

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Reason codes, as README's deny table spells them.
const (
	Allowed        = "allowed"
	InvalidHost    = "invalid_host"
	InvalidMethod  = "invalid_method"
	Revoked        = "revoked_key"
	NotYetValid    = "key_not_yet_valid"
	Expired        = "expired_key"
	HostDenied     = "host_denied"
	CIDRDenied     = "cidr_denied"
	ReferrerDenied = "referrer_denied"
	ScopeDenied    = "scope_denied"
	InternalError  = "internal_error"
)

var (
	// authority: "[v6]" or a name, then an optional ":port" (group 3).
	authorityRE = regexp.MustCompile(`^(?:\[([^\]]*)\]|([^:\[\]]*))(:([^:]*))?$`)
	portRE      = regexp.MustCompile(`^[1-9][0-9]{0,4}$`)
	labelRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)
	numericRE   = regexp.MustCompile(`^(?:[0-9]+|0[xX][0-9A-Fa-f]*)$`)
	octet       = `(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])`
	dottedQuad  = regexp.MustCompile(`^` + octet + `\.` + octet + `\.` + octet + `\.` + octet + `$`)
)

// Host reads an :authority as README's "Host" bullet says: a host name or
// IP address with an optional port (decimal 1-65535, no leading zeros);
// names are [A-Za-z0-9._-] labels of 1-63 characters (253 in all, no
// trailing dot) and compare lower-cased; a name whose last label is a
// number (digits, or 0x and hex digits) must be a dotted-quad IPv4 address;
// IPv6 literals come in brackets, without a zone, and compare in canonical
// form. ok is false for anything else (invalid_host).
func Host(authority string) (host string, ok bool) {
	m := authorityRE.FindStringSubmatch(authority)
	if m == nil {
		return "", false
	}
	if strings.HasPrefix(authority, ":") || (m[3] != "" && !validPort(m[4])) {
		return "", false
	}
	if strings.HasPrefix(authority, "[") {
		a, err := netip.ParseAddr(m[1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	name := m[2]
	if len(name) > 253 {
		return "", false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return "", false
		}
	}
	if numericRE.MatchString(labels[len(labels)-1]) && !dottedQuad.MatchString(name) {
		return "", false
	}
	return strings.ToLower(name), true
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return portRE.MatchString(p) && err == nil && n <= 65535
}

// IsIP reports whether a host from Host is an IP address.
func IsIP(host string) bool { return strings.Contains(host, ":") || dottedQuad.MatchString(host) }

// HostMatches reports whether pattern (from a record or a routes file:
// lower case, "*.suffix" for subdomains) admits host (from Host): exactly,
// IP literals by address; "*.suffix" any name with at least one more label,
// never the bare suffix, never an IP address.
func HostMatches(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok && strings.HasPrefix(suffix, ".") {
		return !IsIP(host) && len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	}
	if p, err := netip.ParseAddr(pattern); err == nil {
		h, err := netip.ParseAddr(host)
		return err == nil && h == p
	}
	return host == pattern
}

// Origin is a request's Origin, or its Referer's origin.
type Origin struct{ Scheme, Host, Port string }

// Unspecified means the documentation does not say how keygate reads a
// value: the oracle accepts either answer for it.
const Unspecified = "unspecified"

// RequestOrigin reads the origin README's allowed_referrers row matches:
// the Origin header, or the Referer when Origin is absent or "null". ok is
// false when there is none or it is not an http(s) URL whose authority is
// a host with an optional port, both as Host reads an :authority; a default
// port (443 for https, 80 for http) reads as none. A value whose path,
// query or fragment holds a '%', a control or a non-ASCII byte is
// Unspecified (how it is parsed is not documented) unless its origin part
// already decides.
func RequestOrigin(originHdr, referer string) (o Origin, ok bool, unspecified bool) {
	v := originHdr
	if v == "" || v == "null" {
		v = referer
	}
	scheme, rest, found := strings.Cut(v, "://")
	if !found {
		return Origin{}, false, false
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return Origin{}, false, false
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	h, hostOK := Host(authority)
	if !hostOK {
		return Origin{}, false, false
	}
	port := ""
	if m := authorityRE.FindStringSubmatch(authority); m[3] != "" {
		port = m[4]
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	for i := 0; i < len(tail); i++ {
		if c := tail[i]; c == '%' || c < 0x20 || c >= 0x7f {
			return Origin{scheme, h, port}, true, true
		}
	}
	return Origin{scheme, h, port}, true, false
}

// OriginMatches reports whether an allowed_referrers entry admits o.
func OriginMatches(allowed string, o Origin) bool {
	scheme, rest, _ := strings.Cut(allowed, "://")
	host, port := rest, ""
	if m := authorityRE.FindStringSubmatch(rest); m != nil && m[3] != "" {
		host, port = strings.TrimSuffix(rest, m[3]), m[4]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	return scheme == o.Scheme && port == o.Port && HostMatches(host, o.Host)
}

// CIDRContains reports whether an allowed_cidrs entry (a CIDR or a single
// address) contains the source address; IPv4-mapped IPv6 sources count as
// IPv4, a zone is ignored.
func CIDRContains(entry string, src netip.Addr) bool {
	if !src.IsValid() {
		return false
	}
	src = src.Unmap().WithZone("")
	if !strings.Contains(entry, "/") {
		a, err := netip.ParseAddr(entry)
		return err == nil && a.Unmap() == src
	}
	p, err := netip.ParsePrefix(entry)
	return err == nil && p.Contains(src)
}

// Record is what the oracle reads from a key record.
type Record struct {
	Active                     bool
	NotBefore, ExpiresAt       string // RFC 3339, "" for none
	Scopes, Hosts, CIDRs, Refs []string
}

// Request is what the oracle reads from a request.
type Request struct {
	Now             time.Time
	RequiredScopes  []string // from the routes file
	ScopeList       string   // keygate.scopes: space (or tab) separated
	SourceIP        netip.Addr
	Host            string
	Origin, Referer string
}

// Decide is README's policy check, in its documented order: status,
// not_before, expires_at, host, source CIDR, referrer/origin, scopes. It
// returns a reason code, or Unspecified.
func Decide(r Record, req Request) string {
	switch {
	case req.Now.IsZero():
		return InternalError
	case !r.Active:
		return Revoked
	case r.NotBefore != "" && req.Now.Before(mustTime(r.NotBefore)):
		return NotYetValid
	case r.ExpiresAt != "" && !req.Now.Before(mustTime(r.ExpiresAt)):
		return Expired
	}
	if len(r.Hosts) > 0 {
		h, ok := Host(req.Host)
		if !ok {
			return InvalidHost
		}
		if !slices.ContainsFunc(r.Hosts, func(p string) bool { return HostMatches(p, h) }) {
			return HostDenied
		}
	}
	if len(r.CIDRs) > 0 && !slices.ContainsFunc(r.CIDRs, func(c string) bool { return CIDRContains(c, req.SourceIP) }) {
		return CIDRDenied
	}
	if len(r.Refs) > 0 {
		o, ok, unspecified := RequestOrigin(req.Origin, req.Referer)
		if !ok || !slices.ContainsFunc(r.Refs, func(a string) bool { return OriginMatches(a, o) }) {
			return ReferrerDenied
		}
		if unspecified {
			return Unspecified
		}
	}
	need := slices.Concat(req.RequiredScopes, strings.FieldsFunc(req.ScopeList, func(c rune) bool { return c == ' ' || c == '\t' }))
	for _, s := range need {
		if !slices.Contains(r.Scopes, s) {
			return ScopeDenied
		}
	}
	return Allowed
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic("refpolicy: record time " + strconv.Quote(s) + " does not parse: " + err.Error())
	}
	return t
}

// Rule is one routes-file rule.
type Rule struct {
	Host, Method, PathPrefix string
	Scopes                   []string
}

// Route is README's "Route requirements" for a request: the index of the
// rule with the longest path_prefix (whole segments; ";" also ends one)
// whose host (exact, *.suffix, or "" / "*" for any; port ignored) and
// method (exact, GET covers HEAD, "" any) match, the first on a tie; -1
// when none does (no scope needed). When some rule names a host, a host
// Host rejects is invalid_host; when some rule names a method, a method
// that is not an upper-case token is invalid_method.
func Route(rules []Rule, authority, method, path string) (rule int, reason string) {
	namesHost := slices.ContainsFunc(rules, func(r Rule) bool { return r.Host != "" && r.Host != "*" })
	namesMethod := slices.ContainsFunc(rules, func(r Rule) bool { return r.Method != "" })
	host, ok := Host(authority)
	if namesHost && !ok {
		return -1, InvalidHost
	}
	if namesMethod && !tokenRE.MatchString(method) {
		return -1, InvalidMethod
	}
	best := -1
	for i, r := range rules {
		if r.Host != "" && r.Host != "*" && !HostMatches(r.Host, host) {
			continue
		}
		if r.Method != "" && r.Method != method && !(r.Method == "GET" && method == "HEAD") {
			continue
		}
		if !segmentPrefix(path, r.PathPrefix) {
			continue
		}
		if best < 0 || len(r.PathPrefix) > len(rules[best].PathPrefix) {
			best = i
		}
	}
	return best, Allowed
}

// tokenRE is an RFC 9110 token without lower-case letters.
var tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Z-]+$")

func segmentPrefix(path, prefix string) bool {
	rest, ok := strings.CutPrefix(path, prefix)
	return ok && (rest == "" || strings.HasSuffix(prefix, "/") || rest[0] == '/' || rest[0] == ';')
}
