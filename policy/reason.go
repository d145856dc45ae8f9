package policy

// Reason is the outcome of a check. Allowed is the only allowing value; every
// other reason denies. The codes (String) are stable: clients, dashboards and
// audit logs depend on them.
type Reason uint8

// Reasons, grouped by the HTTP status they deny with.
const (
	Allowed Reason = iota

	// 400
	NonCanonicalPath // routes file in use and the path is not normalised
	InvalidHost      // host rules in use and the Host is not a plain host[:port]
	InvalidMethod    // method rules in use and the method is not an upper-case token
	InvalidHeader    // a header name a CGI upstream would read as one keygate sets or reads

	// 413
	RequestTooLarge // the request (or its headers) is over the configured size

	// 401
	MissingKey
	MalformedKey
	AmbiguousCredentials
	UnknownKey
	Revoked
	Expired
	NotYetValid

	// 403
	ScopeDenied
	CIDRDenied
	ReferrerDenied
	HostDenied

	// 429
	RateLimited   // the key's rate_limit (per replica) or global_rate_limit (across replicas)
	QuotaExceeded // the key's quota (per replica) or global_quota (across replicas) for the current window
	CallerLimited // the calling peer sent too many unknown keys (a key oracle in use)

	// 500
	InvalidRecord
	InternalError

	// 503
	StoreUnavailable
	RateLimitUnavailable // the key has global limits and the rate limit service failed (or none is configured)

	numReasons
)

// NumReasons is the number of Reason values, for tables indexed by Reason.
const NumReasons = int(numReasons)

var reasonInfo = [numReasons]struct {
	code   string
	status int
}{
	Allowed:              {"allowed", 200},
	NonCanonicalPath:     {"non_canonical_path", 400},
	InvalidHost:          {"invalid_host", 400},
	InvalidMethod:        {"invalid_method", 400},
	InvalidHeader:        {"invalid_header", 400},
	RequestTooLarge:      {"request_too_large", 413},
	MissingKey:           {"missing_key", 401},
	MalformedKey:         {"malformed_key", 401},
	AmbiguousCredentials: {"ambiguous_credentials", 401},
	UnknownKey:           {"unknown_key", 401},
	Revoked:              {"revoked_key", 401},
	Expired:              {"expired_key", 401},
	NotYetValid:          {"key_not_yet_valid", 401},
	ScopeDenied:          {"scope_denied", 403},
	CIDRDenied:           {"cidr_denied", 403},
	ReferrerDenied:       {"referrer_denied", 403},
	HostDenied:           {"host_denied", 403},
	RateLimited:          {"rate_limited", 429},
	QuotaExceeded:        {"quota_exceeded", 429},
	CallerLimited:        {"caller_rate_limited", 429},
	InvalidRecord:        {"invalid_key_record", 500},
	InternalError:        {"internal_error", 500},
	StoreUnavailable:     {"store_unavailable", 503},
	RateLimitUnavailable: {"ratelimit_unavailable", 503},
}

// String returns the stable reason code, e.g. "scope_denied".
func (r Reason) String() string {
	if r >= numReasons {
		return "internal_error"
	}
	return reasonInfo[r].code
}

// HTTPStatus is the status a deny with this reason carries (200 for Allowed).
func (r Reason) HTTPStatus() int {
	if r >= numReasons {
		return 500
	}
	return reasonInfo[r].status
}
