package envoy

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

const configFile = "envoy.yaml"

// grpcPolicies hold for every config where Envoy calls keygate's gRPC
// Authorization service (envoy.yaml, ratelimit.yaml).
var grpcPolicies = []policy{
	{"ext_authz calls keygate over gRPC", func(s *setup) error {
		if got := s.extAuthz.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != keygateCluster {
			return fmt.Errorf("envoy_grpc cluster %q, want %q", got, keygateCluster)
		}
		return s.speaksHTTP2(keygateCluster)
	}},
	{"ext_authz sends raw headers", func(s *setup) error {
		if !s.extAuthz.GetEncodeRawHeaders() {
			return errors.New("encode_raw_headers is false: keygate gets sanitized, merged headers")
		}
		return nil
	}},
	{"ext_authz transport V3", func(s *setup) error {
		if got := s.extAuthz.GetTransportApiVersion(); got != corev3.ApiVersion_V3 {
			return fmt.Errorf("transport_api_version %v, want V3", got)
		}
		return nil
	}},
	{"ext_authz allowed_headers", func(s *setup) error {
		if s.extAuthz.GetAllowedHeaders() == nil {
			return errors.New("allowed_headers unset: every header, cookies included, goes to keygate")
		}
		return checkHeaders(s.extAuthz.GetAllowedHeaders(), "sent to keygate", []headerCase{
			{"x-api-key", true},
			{"authorization", true},
			{":authority", true},
			{"origin", true},
			{"referer", true},
			{"x-request-id", true},
			{"x-keygate-client", true},
			{"cookie", false},
			{"x-forwarded-for", false},
			{"x-api-key-extra", false},
		})
	}},
}

// envoyPolicies are what a keygate reviewer checks in envoy.yaml.
var envoyPolicies = slices.Concat(commonPolicies, grpcPolicies, []policy{
	filterChain(&headermutationv3.HeaderMutation{}, &extauthzv3.ExtAuthz{}, &routerv3.Router{}),
	{"/orders requires orders:read", func(s *setup) error {
		r, err := s.findRoute("/orders")
		if err != nil {
			return err
		}
		if got := r.GetRoute().GetCluster(); got != upstreamCluster {
			return fmt.Errorf("routes to %q", got)
		}
		pr, err := s.authzPerRoute(r.GetTypedPerFilterConfig())
		if err != nil {
			return err
		}
		if got := pr.GetCheckSettings().GetContextExtensions()[scopesKey]; got != "orders:read" {
			return fmt.Errorf("context extension %s = %q, want %q", scopesKey, got, "orders:read")
		}
		return nil
	}},
})

func TestConfig(t *testing.T) {
	testPolicies(t, configFile, envoyPolicies)
}

// TestBrokenConfigIsRejected edits envoy.yaml in ways that must be caught, so
// a passing TestConfig means something.
func TestBrokenConfigIsRejected(t *testing.T) {
	testEdits(t, configFile, envoyPolicies, []edit{
		{"typo in field name", "failure_mode_allow: false", "failure_mode_alow: false", "failure_mode_alow"},
		{"unknown enum value", "transport_api_version: V3", "transport_api_version: V4", "V4"},
		{"bad duration", " timeout: 0.25s", " timeout: soon", "soon"},
		{"unknown @type", "router.v3.Router", "router.v3.Routr", "router.v3.Routr"},
		{"rule broken inside Any", "code: ServiceUnavailable", "code: 999", "HttpStatus.Code"},
		{"rule broken outside Any", "connect_timeout: 1s", "connect_timeout: -1s", "Cluster.ConnectTimeout"},
		{"fails open", "failure_mode_allow: false", "failure_mode_allow: true", "fails closed"},
		{"shadow mode", "failure_mode_allow: false", "failure_mode_allow: false\n                      shadow_mode: true", "shadow_mode"},
		{"403 on error", "code: ServiceUnavailable", "code: Forbidden", "errors are 503"},
		{"sanitized headers", "encode_raw_headers: true", "encode_raw_headers: false", "raw headers"},
		{"body buffered", "encode_raw_headers: true", "encode_raw_headers: true\n                      with_request_body:\n                        max_request_bytes: 1024", "with_request_body"},
		{"slow timeout", " timeout: 0.25s", " timeout: 2s", "ext_authz timeout"},
		{"too many headers sent", "- prefix: x-keygate-", "- prefix: x-", "x-forwarded-for"},
		{"scope key typo", "keygate.scopes:", "keygate.scope:", "keygate.scopes"},
		{"health prefix", "path: /healthz", "prefix: /healthz", "only /healthz skips keygate"},
		{"no protocol options", httpOptionsKey + ":", "HttpProtocolOptions:", "HTTP/1.1"},
		{"downstream protocol to keygate", "explicit_http_config:", "use_downstream_protocol_config:", "http2_protocol_options"},
		{"ext_authz filter renamed", "- name: envoy.filters.http.ext_authz\n", "- name: keygate\n", "keygate.scopes"},
		{"no path normalization", "normalize_path: true", "normalize_path: false", "normalize_path"},
		{"underscores allowed", "headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: ALLOW", "headers_with_underscores_action"},
		{"identity header kept", "- remove: x-keygate-tenant\n", "- remove: x-keygate-tenants\n", "does not remove x-keygate-tenant"},
		{"record header kept", "- remove: x-plan\n", "", "does not remove x-plan"},
		{"strip filter disabled", "- name: envoy.filters.http.header_mutation\n", "- name: envoy.filters.http.header_mutation\n                    disabled: true\n", "disabled or optional"},
	})
	testMutations(t, configFile, envoyPolicies, stripOrderMutations)
}

// stripOrderMutations break the header_mutation filter in ways that depend
// on filter order or per-route settings rather than on its own text.
var stripOrderMutations = []mutation{
	{"strip filter after ext_authz", func(t *testing.T, s *setup) {
		s.filters[0], s.filters[1] = s.filters[1], s.filters[0]
		s.httpFilters[0], s.httpFilters[1] = s.httpFilters[1], s.httpFilters[0]
	}, "http filter chain"},
	{"strip filter off on a route", func(t *testing.T, s *setup) {
		a, err := anypb.New(&routev3.FilterConfig{Disabled: true})
		if err != nil {
			t.Fatal(err)
		}
		r := s.routes[len(s.routes)-1]
		r.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.header_mutation": a}
	}, "typed_per_filter_config entry for envoy.filters.http.header_mutation"},
}
