package extauthz

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/keygate/keygate/policy"
)

// TestDecisionsOwnTheirKeyID: a Decision outlives its request (the audit
// queue holds it), so its KeyID must be a copy, never a substring of the
// raw key: that would keep the secret in memory for as long as the queue
// holds the line. Every path that names a key id is covered.
func TestDecisionsOwnTheirKeyID(t *testing.T) {
	e := newEnv(t, withRoutes(t), callerLimit(0.001, 2))
	e.put(testKey, func(r *policy.Record) { r.RateLimit = &policy.RateLimit{Requests: 1, Per: "hour"} })
	unknown, _ := newEnv(t).newKey(nil)
	for _, tc := range []struct {
		name, rawKey, path, want string
	}{
		{"allowed (a miss)", testKey, "/v1/orders", "allowed"},
		{"rate limited (a hit)", testKey, "/v1/orders", "rate_limited"},
		{"scope denied", testKey, "/admin", "scope_denied"},
		{"non-canonical path", testKey, "/v1//x", "non_canonical_path"},
		{"wrong secret", wrongSecretKey, "/v1/orders", "unknown_key"},
		{"unknown id (a read)", unknown, "/v1/orders", "unknown_key"},
		{"caller limited", otherKey, "/v1/orders", "caller_rate_limited"},
	} {
		rawKey := strings.Clone(tc.rawKey) // memory of this request's own
		e.check(newReq().key(rawKey).path(tc.path).build())
		e.mu.Lock()
		d := e.decisions[len(e.decisions)-1]
		e.mu.Unlock()
		if d.Reason.String() != tc.want || d.KeyID == "" {
			t.Fatalf("%s: decision %v, key id %q; want %s with an id", tc.name, d.Reason, d.KeyID, tc.want)
		}
		start := uintptr(unsafe.Pointer(unsafe.StringData(rawKey)))
		if p := uintptr(unsafe.Pointer(unsafe.StringData(d.KeyID))); p >= start && p < start+uintptr(len(rawKey)) {
			t.Errorf("%s: Decision.KeyID shares the raw key's memory", tc.name)
		}
	}
}
