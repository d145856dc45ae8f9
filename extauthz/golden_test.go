package extauthz

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/keygate/keygate/policy"
)

type goldenCase struct {
	name  string
	cfg   func(*Config)
	setup func(e *env)
	req   *authv3.CheckRequest
	want  string // reason code
}

func goldenCases(t *testing.T) []goldenCase {
	withRecord := func(mod func(*policy.Record)) func(e *env) { return func(e *env) { e.put(testKey, mod) } }
	return []goldenCase{
		{
			name: "allow_identity_headers",
			setup: withRecord(func(r *policy.Record) {
				r.Headers = map[string]string{"x-plan": "gold", "x-team": "payments"}
			}),
			req: newReq().key(testKey).
				mapValue("X-Keygate-Key-Id", "forged").
				mapValue("X-Keygate-Tenant", "evil").
				mapValue("x-keygate-other", "1").
				build(),
			want: "allowed",
		},
		{name: "allow_bearer", req: newReq().header("authorization", "Bearer "+testKey).build(), want: "allowed"},
		{name: "allow_both_headers", req: newReq().key(testKey).header("authorization", "Bearer "+testKey).build(), want: "allowed"},
		{name: "deny_missing_key", req: newReq().build(), want: "missing_key"},
		{name: "deny_malformed_key", req: newReq().key(testKey + "x").build(), want: "malformed_key"},
		{name: "deny_ambiguous_credentials", req: newReq().key(testKey).header("authorization", "Bearer "+otherKey).build(), want: "ambiguous_credentials"},
		{name: "deny_unknown_key", req: newReq().key(otherKey).build(), want: "unknown_key"},
		{name: "deny_revoked_key", setup: withRecord(func(r *policy.Record) { r.Status = policy.StatusRevoked }), req: newReq().key(testKey).build(), want: "revoked_key"},
		{name: "deny_expired_key", setup: withRecord(func(r *policy.Record) { r.ExpiresAt = at(-time.Hour) }), req: newReq().key(testKey).build(), want: "expired_key"},
		{name: "deny_key_not_yet_valid", setup: withRecord(func(r *policy.Record) { r.NotBefore = at(time.Hour) }), req: newReq().key(testKey).build(), want: "key_not_yet_valid"},
		{name: "deny_scope_denied", req: newReq().key(testKey).scopes("admin").build(), want: "scope_denied"},
		{name: "deny_cidr_denied", setup: withRecord(cidrs("192.168.0.0/16")), req: newReq().key(testKey).build(), want: "cidr_denied"},
		{name: "deny_referrer_denied", setup: withRecord(referrers("https://app.example.com")), req: newReq().key(testKey).build(), want: "referrer_denied"},
		{name: "deny_host_denied", setup: withRecord(hosts("other.example.com")), req: newReq().key(testKey).build(), want: "host_denied"},
		{name: "deny_non_canonical_path", cfg: withRoutes(t), req: newReq().key(testKey).path("/v1/../admin").build(), want: "non_canonical_path"},
		{name: "deny_invalid_host", setup: withRecord(hosts("api.example.com")), req: newReq().key(testKey).host("api.example.com:1.admin.example.com").build(), want: "invalid_host"},
		{name: "deny_invalid_method", cfg: withRoutes(t), req: newReq().key(testKey).method("post").build(), want: "invalid_method"},
		{name: "deny_invalid_header", req: newReq().key(testKey).header("x_keygate_tenant", "evil").build(), want: "invalid_header"},
		{name: "deny_request_too_large", req: nil, want: "request_too_large"}, // the codec's marker, see TestGoldenResponses
		{
			// A record header another key sets (x-team, loaded first) and a
			// configured one (x-tier) are removed for a key without them;
			// its own (x-plan) is set, never removed.
			name: "allow_strips_record_headers",
			cfg:  func(c *Config) { c.StripHeaders = []string{"x-tier"} },
			setup: func(e *env) {
				e.put(otherKey, func(r *policy.Record) { r.Headers = map[string]string{"x-team": "payments"} })
				e.check(newReq().key(otherKey).build())
			},
			req:  newReq().key(testKey).header("x-plan", "forged").header("x-team", "forged").build(),
			want: "allowed",
		},
		{
			name: "deny_invalid_key_record",
			setup: func(e *env) {
				e.store.set(func(s *fakeStore) { s.idErr[testID] = policy.ErrInvalidRecord })
			},
			req: newReq().key(testKey).build(), want: "invalid_key_record",
		},
		{name: "deny_internal_error", setup: func(e *env) { e.clock.panicNext.Store(true) }, req: newReq().key(testKey).build(), want: "internal_error"},
		{
			name: "allow_with_limits_metadata",
			setup: withRecord(func(r *policy.Record) {
				r.RateLimit = &policy.RateLimit{Requests: 100, Per: "second", Burst: 20}
				r.Quota = &policy.Quota{Requests: 10000, Per: "day"}
			}),
			req: newReq().key(testKey).build(), want: "allowed",
		},
		{
			name: "deny_rate_limited",
			setup: func(e *env) {
				e.put(testKey, func(r *policy.Record) { r.RateLimit = &policy.RateLimit{Requests: 5, Per: "minute", Burst: 1} })
				e.check(newReq().key(testKey).build()) // the one token
			},
			req: newReq().key(testKey).build(), want: "rate_limited",
		},
		{
			name: "deny_quota_exceeded",
			setup: func(e *env) {
				e.put(testKey, func(r *policy.Record) {
					r.RateLimit = &policy.RateLimit{Requests: 10, Per: "second"}
					r.Quota = &policy.Quota{Requests: 1, Per: "hour"}
				})
				e.check(newReq().key(testKey).build()) // the hour's one request
			},
			req: newReq().key(testKey).build(), want: "quota_exceeded",
		},
		{
			name: "deny_caller_rate_limited",
			cfg:  func(c *Config) { c.UnknownKeyRate, c.UnknownKeyBurst = 0.001, 1 },
			setup: func(e *env) {
				e.check(newReq().key(otherKey).build()) // the caller's one unknown key
			},
			req: newReq().key(otherKey).build(), want: "caller_rate_limited",
		},
		{
			// A key with global limits on a server whose GlobalLimiter
			// failed (here: has none).
			name:  "deny_ratelimit_unavailable",
			setup: withRecord(func(r *policy.Record) { r.GlobalRateLimit = &policy.RateLimit{Requests: 100, Per: "minute"} }),
			req:   newReq().key(testKey).build(), want: "ratelimit_unavailable",
		},
		{
			name: "deny_global_quota_exceeded",
			cfg:  withGlobal(&fakeGlobal{reason: policy.QuotaExceeded, retry: 5 * time.Hour}),
			setup: withRecord(func(r *policy.Record) {
				r.GlobalRateLimit = &policy.RateLimit{Requests: 100, Per: "minute"}
				r.GlobalQuota = &policy.Quota{Requests: 10000, Per: "day"}
			}),
			req: newReq().key(testKey).build(), want: "quota_exceeded",
		},
		{
			name:  "deny_store_unavailable",
			setup: func(e *env) { e.store.set(func(s *fakeStore) { s.err = errVaultDown }) },
			req:   newReq().key(testKey).build(), want: "store_unavailable",
		},
	}
}

func TestGoldenResponses(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*Config)
			if tc.cfg != nil {
				mods = append(mods, tc.cfg)
			}
			e := newEnv(t, mods...)
			if tc.setup != nil {
				tc.setup(e)
			}
			req := tc.req
			if req == nil {
				req = &authv3.CheckRequest{Attributes: e.srv.tooLarge}
			}
			resp := e.check(req)
			if got := outcome(resp); got != tc.want {
				t.Fatalf("outcome %q, want %q", got, tc.want)
			}
			covered[tc.want] = true

			path := filepath.Join("testdata", "golden", tc.name+".json")
			if *update {
				js, err := protojson.Marshal(resp)
				if err != nil {
					t.Fatal(err)
				}
				// protojson varies its spacing on purpose: indent it the
				// same way every time, so -update changes only what changed.
				var out bytes.Buffer
				if err := json.Indent(&out, js, "", "  "); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, append(out.Bytes(), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			want := &authv3.CheckResponse{}
			if err := protojson.Unmarshal(data, want); err != nil {
				t.Fatalf("golden %s: %v", path, err)
			}
			if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
				t.Errorf("response differs from %s (-golden +got):\n%s", path, diff)
			}
		})
	}
	for r := range policy.NumReasons {
		if code := policy.Reason(r).String(); !covered[code] {
			t.Errorf("no golden case for %q", code)
		}
	}
}
