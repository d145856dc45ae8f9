package extauthz

import (
	"net/netip"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/policy"
)

// identity headers keygate sets on allow.
const (
	headerKeyID  = "x-keygate-key-id"
	headerTenant = "x-keygate-tenant"
	headerScopes = "x-keygate-scopes"
	headerReason = "x-keygate-reason" // on HTTP-mode denies; never set on an allow
	identityPfx  = "x-keygate-"
)

// ScopesExtension is the per-route context extension naming the scopes a
// route requires, space-separated.
const ScopesExtension = "keygate.scopes"

// credential header bits: which headers carried the key.
const (
	fromKeyHeader uint8 = 1 << iota
	fromAuthHeader
)

// incoming is what Check reads from a CheckRequest. Its rawKey is the secret:
// it is never logged, stored or put in an error.
type incoming struct {
	rawKey  string
	keyID   string        // the key's public id, once parsed
	from    uint8         // credential header bits
	reason  policy.Reason // MissingKey, MalformedKey, AmbiguousCredentials or Allowed
	spoofed []string      // client-sent x-keygate-* header names
	// underscored are header names with "_", which a CGI upstream reads
	// like the same name with "-" (see stripper.collides).
	underscored []string
	origin      string
	referer     string
	host        string
	method      string
	path        string
	scopeList   string
	source      string // peer address as Envoy reported it
	requestID   string // x-request-id, for audit lines
	// hostFromAuthority: host came from a :authority header (the host
	// attribute was empty), so another :authority must agree with it.
	hostFromAuthority bool
}

// ambiguous stands for a single-valued header sent twice with different
// values (origin, referer, :authority): no origin or host matches it, so a
// key that restricts them is denied, never judged on one of the two.
const ambiguous = ","

// readRequest extracts the key and the attributes policy needs. It reads
// both the headers map and Envoy's header_map (encode_raw_headers). Nil
// sub-messages read as empty.
func readRequest(req *authv3.CheckRequest, cfg *Config) incoming {
	attrs := req.GetAttributes()
	http := attrs.GetRequest().GetHttp()
	in := incoming{
		host:      http.GetHost(),
		method:    http.GetMethod(),
		path:      http.GetPath(),
		scopeList: attrs.GetContextExtensions()[ScopesExtension],
		source:    attrs.GetSource().GetAddress().GetSocketAddress().GetAddress(),
	}
	for name, value := range http.GetHeaders() {
		in.header(cfg, name, value)
	}
	for _, h := range http.GetHeaderMap().GetHeaders() {
		name := h.GetKey()
		if !in.wants(cfg, name) {
			continue // most headers: no string copy of the value
		}
		value := h.GetValue()
		if raw := h.GetRawValue(); len(raw) > 0 {
			value = string(raw)
		}
		in.header(cfg, name, value)
	}
	if in.reason == policy.Allowed && in.rawKey == "" {
		in.reason = policy.MissingKey
	}
	return in
}

// wants reports whether header name matters to keygate (so its value must
// be read); it records client-sent x-keygate-* names, which need no value.
func (in *incoming) wants(cfg *Config, name string) bool {
	name = lowerASCII(name)
	switch name {
	case cfg.KeyHeader, cfg.AuthHeader, "origin", "referer", "x-request-id":
		return true
	case ":authority":
		return in.host == "" || in.hostFromAuthority // Envoy also sends it as attributes.request.http.host
	}
	in.other(name)
	return false
}

// other notes a header keygate does not read: a client-sent x-keygate-*
// header, or a name with an underscore.
func (in *incoming) other(name string) {
	if strings.HasPrefix(name, identityPfx) && policy.IsHeaderName(name) {
		in.spoofed = append(in.spoofed, name)
	}
	if strings.IndexByte(name, '_') >= 0 {
		in.underscored = append(in.underscored, name)
	}
}

func (in *incoming) header(cfg *Config, name, value string) {
	switch name = lowerASCII(name); {
	case name == cfg.KeyHeader:
		in.credential(fromKeyHeader, trimOWS(value))
	case name == cfg.AuthHeader:
		if token, ours := bearerToken(value); ours {
			in.credential(fromAuthHeader, token)
		}
	case name == "origin":
		in.origin = single(in.origin, value, ambiguous)
	case name == "referer":
		in.referer = single(in.referer, value, ambiguous)
	case name == "x-request-id":
		in.requestID = single(in.requestID, value, ambiguous) // audit only; see Server.decided
	case name == ":authority":
		switch {
		case in.host == "":
			in.host, in.hostFromAuthority = value, true
		case in.hostFromAuthority:
			in.host = single(in.host, value, ambiguous)
		}
	default:
		in.other(name)
	}
}

// single is the value of a header that should appear once: seen so far is
// old ("" for none), then value arrives. Two different non-empty values
// give conflict, which stays. The order the headers arrive in does not
// change the result.
func single(old, value, conflict string) string {
	switch {
	case value == "" || old == value || old == conflict:
		return old
	case old == "":
		return value
	}
	return conflict
}

// credential records one candidate key. An empty value counts as missing; a
// comma (Envoy's join of repeated headers) or a second, different value is
// ambiguous and never picked from: no key is kept, whatever the order the
// headers came in.
func (in *incoming) credential(from uint8, value string) {
	switch {
	case in.reason == policy.AmbiguousCredentials:
	case strings.IndexByte(value, ',') >= 0, in.rawKey != "" && value != "" && in.rawKey != value:
		in.reason, in.rawKey = policy.AmbiguousCredentials, ""
	case value == "": // counts as missing unless another header has a key
	default:
		in.rawKey = value
	}
	in.from |= from
}

// bearerToken parses "Bearer <token>" or "ApiKey <token>" (scheme case-
// insensitive). ours is false for other schemes, which are not keygate's.
func bearerToken(v string) (token string, ours bool) {
	v = trimOWS(v)
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "apikey") {
		return "", false
	}
	return trimOWS(rest), true
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// policyRequest builds Evaluate's input.
func (in *incoming) policyRequest(now time.Time, routeScopes []string) policy.Request {
	var ip netip.Addr
	if in.source != "" {
		ip, _ = netip.ParseAddr(in.source) // invalid on error: CIDR rules deny
	}
	return policy.Request{
		Now:            now,
		RequiredScopes: routeScopes,
		ScopeList:      in.scopeList,
		SourceIP:       ip,
		Host:           in.host,
		Origin:         in.origin,
		Referer:        in.referer,
	}
}

// pathOnly strips the query string and fragment.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}
