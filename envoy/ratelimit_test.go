package envoy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/keygate/keygate/internal/rltest"
)

const (
	rateLimitConfigFile = "ratelimit.yaml"
	rateLimitCluster    = "ratelimit"
	rateLimitDomain     = "keygate"
)

// The dynamic metadata keygate's allow answer carries, as ratelimit.yaml
// reads it. extauthz must emit exactly these names: Envoy stores
// CheckResponse.dynamic_metadata under the ext_authz filter's namespace,
// and a misspelt field silently turns a key's own limit into the default.
const (
	authzMetadataNS = "envoy.filters.http.ext_authz"
	mdKeyID         = "key_id"     // string
	mdRateLimit     = "rate_limit" // {requests_per_unit, unit}, keys with a rate limit
	mdQuota         = "quota"      // {requests_per_unit, unit}, keys with a quota
)

// Descriptor keys Envoy sends the rate limit service; ratelimit-service.yaml
// has a default limit for each.
const (
	descKeyID = "key_id"
	descQuota = "key_quota"
)

// rateLimitPolicies are what a keygate reviewer checks in ratelimit.yaml.
var rateLimitPolicies = slices.Concat(commonPolicies, grpcPolicies, []policy{
	filterChain(&headermutationv3.HeaderMutation{}, &extauthzv3.ExtAuthz{}, &ratelimitv3.RateLimit{}, &routerv3.Router{}),
	{"ratelimit filter", checkRateLimitFilter},
	{"per-key rate limits", func(s *setup) error {
		rl, _, err := filterOf[*ratelimitv3.RateLimit](s)
		if err != nil {
			return err
		}
		return checkRateLimits(s.vhost.GetRateLimits(), rl.GetStage())
	}},
	{"no route replaces the virtual host's limits", func(s *setup) error {
		_, f, err := filterOf[*ratelimitv3.RateLimit](s)
		if err != nil {
			return err
		}
		for _, r := range s.routes {
			if len(r.GetRoute().GetRateLimits()) > 0 {
				return fmt.Errorf("route %v has its own rate_limits: the per-key limits no longer apply to it", r.GetMatch())
			}
		}
		for _, cfg := range s.perFilterConfigs() {
			if _, ok := cfg[f.GetName()]; ok {
				return fmt.Errorf("a typed_per_filter_config entry for %s may drop the per-key limits", f.GetName())
			}
		}
		return nil
	}},
})

// checkRateLimitFilter checks the ratelimit http filter: keygate's domain,
// enforced on every request, failing closed, over gRPC to the service.
func checkRateLimitFilter(s *setup) error {
	rl, f, err := filterOf[*ratelimitv3.RateLimit](s)
	if err != nil {
		return err
	}
	var errs []error
	if got := rl.GetDomain(); got != rateLimitDomain {
		errs = append(errs, fmt.Errorf("domain %q, want %q", got, rateLimitDomain))
	}
	if f.GetDisabled() || f.GetIsOptional() || rl.GetFilterEnabled() != nil || rl.GetFilterEnforced() != nil {
		errs = append(errs, errors.New("disabled, optional, or filter_enabled/filter_enforced set: limits not always enforced"))
	}
	if rt := rl.GetRequestType(); rt != "" && rt != "both" {
		errs = append(errs, fmt.Errorf("request_type %q: some requests are never limited", rt))
	}
	if !rl.GetFailureModeDeny() || rl.GetFailureModeDenyPercent() != nil {
		errs = append(errs, errors.New("failure_mode_deny not true: a rate limit service outage lifts every limit"))
	}
	if got := rl.GetStatusOnError().GetCode(); got != typev3.StatusCode_ServiceUnavailable {
		errs = append(errs, fmt.Errorf("status_on_error %v, want ServiceUnavailable", got))
	}
	svc := rl.GetRateLimitService()
	if got := svc.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != rateLimitCluster {
		errs = append(errs, fmt.Errorf("rate_limit_service cluster %q, want %q", got, rateLimitCluster))
	} else if err := s.speaksHTTP2(rateLimitCluster); err != nil {
		errs = append(errs, err)
	}
	if svc.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		errs = append(errs, errors.New("rate_limit_service transport_api_version not V3"))
	}
	return errors.Join(errs...)
}

// checkRateLimits requires, at the filter's stage, one rate_limits entry
// per descriptor key, each built from keygate's key_id metadata and
// overridden by the key's own limit when keygate sends one.
func checkRateLimits(rls []*routev3.RateLimit, stage uint32) error {
	want := map[string]string{descKeyID: mdRateLimit, descQuota: mdQuota}
	seen := map[string]bool{}
	for _, rl := range rls {
		if rl.GetStage().GetValue() != stage {
			return fmt.Errorf("rate_limits entry at stage %d, filter runs stage %d", rl.GetStage().GetValue(), stage)
		}
		if len(rl.GetActions()) != 1 || rl.GetActions()[0].GetMetadata() == nil {
			return fmt.Errorf("want one metadata action, got %v", rl.GetActions())
		}
		md := rl.GetActions()[0].GetMetadata()
		override, ok := want[md.GetDescriptorKey()]
		if !ok || seen[md.GetDescriptorKey()] {
			return fmt.Errorf("descriptor_key %q: want each of %v once", md.GetDescriptorKey(), []string{descKeyID, descQuota})
		}
		seen[md.GetDescriptorKey()] = true
		if md.GetSource() != routev3.RateLimit_Action_MetaData_DYNAMIC || md.GetDefaultValue() != "" {
			return fmt.Errorf("%s: source %v, default %q; want DYNAMIC with no default (one shared bucket)",
				md.GetDescriptorKey(), md.GetSource(), md.GetDefaultValue())
		}
		if err := checkMetadataKey(md.GetMetadataKey(), mdKeyID); err != nil {
			return fmt.Errorf("%s value: %w", md.GetDescriptorKey(), err)
		}
		if err := checkMetadataKey(rl.GetLimit().GetDynamicMetadata().GetMetadataKey(), override); err != nil {
			return fmt.Errorf("%s limit override: %w", md.GetDescriptorKey(), err)
		}
	}
	if len(seen) != len(want) {
		return fmt.Errorf("rate_limits cover descriptor keys %v, want %s and %s", slices.Sorted(maps.Keys(seen)), descKeyID, descQuota)
	}
	return nil
}

// checkMetadataKey requires k to name field in keygate's ext_authz metadata.
func checkMetadataKey(k *metadatav3.MetadataKey, field string) error {
	if k.GetKey() != authzMetadataNS || len(k.GetPath()) != 1 || k.GetPath()[0].GetKey() != field {
		return fmt.Errorf("metadata_key %v, want %s / [%s]", k, authzMetadataNS, field)
	}
	return nil
}

func TestRateLimitConfig(t *testing.T) {
	testPolicies(t, rateLimitConfigFile, rateLimitPolicies)
}

// checkAgree returns how the rate limit service config rls fails to cover
// what Envoy sends it: the same domain, a default for each descriptor key.
func checkAgree(s *setup, rls *rlsConfig) error {
	rl, _, err := filterOf[*ratelimitv3.RateLimit](s)
	if err != nil {
		return err
	}
	var errs []error
	if rl.GetDomain() != rls.Domain {
		errs = append(errs, fmt.Errorf("Envoy sends domain %q, %s configures %q", rl.GetDomain(), rlsConfigFile, rls.Domain))
	}
	for _, r := range s.vhost.GetRateLimits() {
		for _, a := range r.GetActions() {
			if _, err := rls.rlsDefault(a.GetMetadata().GetDescriptorKey()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// TestRateLimitConfigsAgree: what the real service loads from
// ratelimit-service.yaml covers what ratelimit.yaml has Envoy send; edited
// copies that the service loads but that no longer cover it are caught.
func TestRateLimitConfigsAgree(t *testing.T) {
	s, err := loadSetup(readFile(t, rateLimitConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	redis := rltest.StartRedis(t)
	if err := checkAgree(s, readRLS(t, redis)); err != nil {
		t.Error(err)
	}
	doc := string(readFile(t, rlsConfigFile))
	for _, tc := range []edit{
		{"other domain", "domain: keygate", "domain: api", `configures "api"`},
		{"no quota default", "  - key: key_quota\n", "  - key: key_quota\n    value: kg_demo\n", `"key_quota"`},
		{"only per-value entries", "  - key: key_id\n", "  - key: key_id\n    value: kg_demo\n", `"key_id"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := strings.Count(doc, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want once", tc.old, n, rlsConfigFile)
			}
			rls, err := loadRLS(t, redis, []byte(strings.Replace(doc, tc.old, tc.new, 1)))
			if err != nil {
				t.Fatalf("the service refused the edit itself: %v", err)
			}
			wantRejected(t, checkAgree(s, rls), tc.wantErr)
		})
	}
}

// TestBrokenRateLimitConfigIsRejected edits ratelimit.yaml in ways that must
// be caught.
func TestBrokenRateLimitConfigIsRejected(t *testing.T) {
	testEdits(t, rateLimitConfigFile, rateLimitPolicies, []edit{
		{"wrong domain", "domain: keygate", "domain: api", "domain"},
		{"fails open", "failure_mode_deny: true", "failure_mode_deny: false", "failure_mode_deny"},
		{"filter stage differs", "stage: 0\n                      # request_type", "stage: 1\n                      # request_type", "stage 1"},
		{"internal requests unlimited", "failure_mode_deny: true", "failure_mode_deny: true\n                      request_type: external", "request_type"},
		{"override field misspelt", "- key: rate_limit", "- key: ratelimit", "key_id limit override"},
		{"quota override missing", "                                  - key: quota\n", "                                  - key: quotas\n", "key_quota limit override"},
		{"descriptor key renamed", "descriptor_key: key_quota", "descriptor_key: quota", `descriptor_key "quota"`},
		{"shared bucket", "descriptor_key: key_id\n", "descriptor_key: key_id\n                                default_value: anonymous\n", "no default"},
		{"ext_authz fails open", "failure_mode_allow: false", "failure_mode_allow: true", "fails closed"},
		{"rate limit service over HTTP/1.1", "explicit_http_config:\n            http2_protocol_options:\n              connection_keepalive:\n                interval: 30s\n                timeout: 5s\n      # Every", "use_downstream_protocol_config: {}\n      # Every", "cluster ratelimit"},
		{"unknown @type", "ratelimit.v3.RateLimit\n", "ratelimit.v3.RateLimits\n", "RateLimits"},
		{"record header kept", "- remove: x-plan\n", "", "does not remove x-plan"},
		{"identity header kept", "- remove: x-keygate-key-id\n", "- remove: x-keygate-keyid\n", "does not remove x-keygate-key-id"},
	})
	testMutations(t, rateLimitConfigFile, rateLimitPolicies, []mutation{
		stripOrderMutations[0],
		{"ratelimit before ext_authz", func(t *testing.T, s *setup) {
			s.filters[1], s.filters[2] = s.filters[2], s.filters[1]
			s.httpFilters[1], s.httpFilters[2] = s.httpFilters[2], s.httpFilters[1]
		}, "http filter chain"},
		{"namespace misspelt", func(t *testing.T, s *setup) {
			s.vhost.GetRateLimits()[0].GetActions()[0].GetMetadata().GetMetadataKey().Key = "ext_authz"
		}, "want envoy.filters.http.ext_authz"},
		{"route with its own limits", func(t *testing.T, s *setup) {
			r := s.routes[len(s.routes)-1].GetRoute()
			r.RateLimits = []*routev3.RateLimit{{Stage: wrapperspb.UInt32(0)}}
		}, "has its own rate_limits"},
		{"quota entry dropped", func(t *testing.T, s *setup) {
			s.vhost.RateLimits = s.vhost.GetRateLimits()[:1]
		}, "rate_limits cover"},
		{"limits not enforced", func(t *testing.T, s *setup) {
			rl, _, err := filterOf[*ratelimitv3.RateLimit](s)
			if err != nil {
				t.Fatal(err)
			}
			rl.FilterEnforced = &corev3.RuntimeFractionalPercent{}
		}, "not always enforced"},
	})
}
