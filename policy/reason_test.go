package policy

import (
	"slices"
	"testing"
)

func TestReasons(t *testing.T) {
	allowedStatuses := []int{200, 400, 401, 403, 413, 429, 500, 503}
	seen := make(map[string]Reason)
	for r := Reason(0); int(r) < NumReasons; r++ {
		code, status := r.String(), r.HTTPStatus()
		if code == "" {
			t.Errorf("reason %d has no code", r)
		}
		if prev, dup := seen[code]; dup {
			t.Errorf("reasons %d and %d share the code %q", prev, r, code)
		}
		seen[code] = r
		if !slices.Contains(allowedStatuses, status) {
			t.Errorf("%s: status %d not in %v", code, status, allowedStatuses)
		}
		if (r == Allowed) != (status == 200) {
			t.Errorf("%s: status %d; only Allowed may be 200", code, status)
		}
		for i := 0; i < len(code); i++ {
			if c := code[i]; !(c >= 'a' && c <= 'z' || c == '_') {
				t.Errorf("code %q is not snake_case", code)
				break
			}
		}
	}
	if len(seen) != NumReasons {
		t.Errorf("%d codes for %d reasons", len(seen), NumReasons)
	}
}

// TestReasonCodesStable pins the codes and statuses: clients, dashboards and
// audit logs depend on them.
func TestReasonCodesStable(t *testing.T) {
	want := map[Reason]struct {
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
	if len(want) != NumReasons {
		t.Fatalf("this table has %d reasons, the package %d: add the new reason here", len(want), NumReasons)
	}
	for r, w := range want {
		if r.String() != w.code || r.HTTPStatus() != w.status {
			t.Errorf("reason %d = %q/%d, want %q/%d", r, r.String(), r.HTTPStatus(), w.code, w.status)
		}
	}
}

func TestReasonOutOfRange(t *testing.T) {
	for _, r := range []Reason{Reason(NumReasons), Reason(NumReasons + 1), 200, 255} {
		if r.String() != "internal_error" || r.HTTPStatus() != 500 {
			t.Errorf("Reason(%d) = %q/%d, want internal_error/500", r, r.String(), r.HTTPStatus())
		}
	}
}
