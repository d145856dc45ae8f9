package extauthz

import (
	"context"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/proto"

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

// TestDecisionsOwnTheirRequestStrings: the lean decoder's strings share
// the request's bytes (raw key included), so every string a Decision keeps
// from the request must be a copy of its own, on every outcome.
func TestDecisionsOwnTheirRequestStrings(t *testing.T) {
	e := newEnv(t, withRoutes(t))
	for _, tc := range []struct {
		name, rawKey, path, reqID, want string
	}{
		{"allowed", testKey, "/v1/orders", "req-1", "allowed"},
		{"scope denied", testKey, "/admin", "req-2", "scope_denied"},
		{"malformed key", "kg_short", "/v1/orders", "req-3", "malformed_key"},
		{"no request id", testKey, "/v1/orders", "", "allowed"},
	} {
		r := newReq().key(tc.rawKey).path(tc.path).host("api.example.com").method("POST").source("10.1.2.3")
		if tc.reqID != "" {
			r.header("x-request-id", tc.reqID)
		}
		b, err := proto.Marshal(r.build())
		if err != nil {
			t.Fatal(err)
		}
		in, ok := decodeLean(b, &e.srv.cfg)
		if !ok {
			t.Fatalf("%s: the lean decoder gave up", tc.name)
		}
		e.srv.check(context.Background(), nil, &leanRequest{in: in}, &e.srv.wire)
		e.mu.Lock()
		d := e.decisions[len(e.decisions)-1]
		e.mu.Unlock()
		got := []string{d.Reason.String(), d.Method, d.Host, d.Path, d.SourceIP, d.RequestID}
		want := []string{tc.want, "POST", "api.example.com", tc.path, "10.1.2.3", tc.reqID}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: decision %q, want %q", tc.name, got, want)
		}
		start, end := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&b[0]))+uintptr(len(b))
		for i, s := range got[1:] {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); s != "" && p >= start && p < end {
				t.Errorf("%s: decision field %d (%q) shares the request's bytes", tc.name, i+1, s)
			}
		}
	}
}

func TestCloneAll(t *testing.T) {
	for _, in := range [][5]string{{}, {"GET", "", "/", "", ""}, {"", "", "", "", "id"}, {"a", "bc", "def", "ghij", "klmno"}} {
		got := cloneAll(in)
		if got != in {
			t.Errorf("cloneAll(%q) = %q", in, got)
		}
		for i := range in {
			if in[i] != "" && unsafe.StringData(got[i]) == unsafe.StringData(in[i]) {
				t.Errorf("cloneAll(%q)[%d] is not a copy", in, i)
			}
		}
	}
}
