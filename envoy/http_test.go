package envoy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

const (
	httpConfigFile = "envoy-http.yaml"
	// keygate's HTTP mode serves checks under this prefix and reads the
	// original path after it.
	httpPathPrefix = "/ext_authz"
)

// httpPolicies are what a keygate reviewer checks in envoy-http.yaml, where
// Envoy asks keygate over plain HTTP.
var httpPolicies = slices.Concat(commonPolicies, []policy{
	filterChain(&headermutationv3.HeaderMutation{}, &extauthzv3.ExtAuthz{}, &routerv3.Router{}),
	{"ext_authz calls keygate over HTTP", checkHTTPService},
	{"check request headers", func(s *setup) error {
		//lint:ignore SA1019 the test asserts the deprecated field stays unset
		if s.extAuthz.GetHttpService().GetAuthorizationRequest().GetAllowedHeaders() != nil {
			return errors.New("http_service.authorization_request.allowed_headers is deprecated: use ext_authz allowed_headers")
		}
		if s.extAuthz.GetAllowedHeaders() == nil {
			return errors.New("allowed_headers unset")
		}
		return checkHeaders(s.extAuthz.GetAllowedHeaders(), "sent to keygate", []headerCase{
			{"x-api-key", true},
			{"authorization", true},
			{"origin", true},
			{"referer", true},
			{"x-request-id", true},
			{"x-forwarded-for", true},
			{"x-keygate-client", true},
			{"cookie", false},
			{"x-api-key-extra", false},
		})
	}},
	{"headers copied upstream on allow", func(s *setup) error {
		r := s.extAuthz.GetHttpService().GetAuthorizationResponse()
		if r.GetAllowedUpstreamHeadersToAppend() != nil {
			return errors.New("allowed_upstream_headers_to_append set: identity headers must replace, never add to, a value")
		}
		cases := []headerCase{
			{"x-keygate-key-id", true},
			{"x-keygate-tenant", true},
			{"x-keygate-scopes", true},
			{"x-plan", true},
			{"x-keygate-reason", false},
			{"x-envoy-auth-headers-to-remove", false},
			{"set-cookie", false},
		}
		// Every record header the config drops from clients is one it
		// must copy from keygate, or the key's value is lost too.
		hm, _, err := filterOf[*headermutationv3.HeaderMutation](s)
		if err != nil {
			return err
		}
		for _, h := range requestRemovals(hm) {
			if !slices.Contains(identityHeaders, h) {
				cases = append(cases, headerCase{h, true})
			}
		}
		return checkHeaders(r.GetAllowedUpstreamHeaders(), "copied upstream", cases)
	}},
	{"headers passed to the client on deny", func(s *setup) error {
		r := s.extAuthz.GetHttpService().GetAuthorizationResponse()
		if r.GetAllowedClientHeadersOnSuccess() != nil {
			return errors.New("allowed_client_headers_on_success set: keygate's allow headers would reach clients")
		}
		return checkHeaders(r.GetAllowedClientHeaders(), "passed to the client", []headerCase{
			{"www-authenticate", true},
			{"x-keygate-reason", true},
			{"retry-after", true},
			{"ratelimit-policy", true},
			{"ratelimit", true},
			{"content-type", true},
			{"x-keygate-key-id", false},
			{"x-keygate-tenant", false},
			{"set-cookie", false},
		})
	}},
	{"no per-route scopes", func(s *setup) error {
		for _, cfg := range s.perFilterConfigs() {
			pr, err := s.authzPerRoute(cfg)
			if err != nil {
				return err
			}
			if len(pr.GetCheckSettings().GetContextExtensions()) > 0 {
				return errors.New("context_extensions set: Envoy never sends them to an HTTP server, so those scopes would not be enforced (use keygate --routes-file)")
			}
		}
		return nil
	}},
	{"keygate cluster connections", func(s *setup) error {
		c, err := s.cluster(keygateCluster)
		if err != nil {
			return err
		}
		for _, t := range c.GetCircuitBreakers().GetThresholds() {
			if t.GetPriority() == corev3.RoutingPriority_DEFAULT && t.GetMaxConnections().GetValue() > envoyDefaultLimit {
				return nil
			}
		}
		return fmt.Errorf("DEFAULT max_connections at most Envoy's default %d: over HTTP/1.1 it caps concurrent checks", envoyDefaultLimit)
	}},
})

// checkHTTPService checks where and how Envoy sends HTTP checks: to the
// keygate cluster, at the address server_uri names, under keygate's prefix.
func checkHTTPService(s *setup) error {
	h := s.extAuthz.GetHttpService()
	if h == nil {
		return errors.New("no http_service")
	}
	u := h.GetServerUri()
	if got := u.GetCluster(); got != keygateCluster {
		return fmt.Errorf("server_uri cluster %q, want %q", got, keygateCluster)
	}
	if got := h.GetPathPrefix(); got != httpPathPrefix {
		return fmt.Errorf("path_prefix %q, want %q", got, httpPathPrefix)
	}
	if h.GetPathOverride() != "" {
		return errors.New("path_override set: keygate would not see the original path")
	}
	parsed, err := url.Parse(u.GetUri())
	if err != nil {
		return err
	}
	host, port, err := s.endpoint(keygateCluster)
	if err != nil {
		return err
	}
	if want := "http://" + net.JoinHostPort(host, strconv.Itoa(int(port))); parsed.Scheme+"://"+parsed.Host != want || parsed.Path != "" {
		return fmt.Errorf("server_uri %q, want %q (the cluster's endpoint)", u.GetUri(), want)
	}
	return nil
}

func TestHTTPConfig(t *testing.T) {
	testPolicies(t, httpConfigFile, httpPolicies)
}

// TestBrokenHTTPConfigIsRejected edits envoy-http.yaml in ways that must be
// caught.
func TestBrokenHTTPConfigIsRejected(t *testing.T) {
	testEdits(t, httpConfigFile, httpPolicies, []edit{
		{"fails open", "failure_mode_allow: false", "failure_mode_allow: true", "fails closed"},
		{"403 on error", "code: ServiceUnavailable", "code: Forbidden", "errors are 503"},
		{"slow timeout", "timeout: 0.2s\n                        # keygate serves", "timeout: 2s\n                        # keygate serves", "ext_authz timeout"},
		{"no timeout", "                          timeout: 0.2s\n", "", "HttpUri.Timeout"},
		{"wrong prefix", "path_prefix: /ext_authz", "path_prefix: /check", "path_prefix"},
		{"uri port differs from cluster", "uri: http://keygate:9192", "uri: http://keygate:9191", "server_uri"},
		{"wrong cluster", "cluster: keygate\n", "cluster: upstream\n", "server_uri cluster"},
		{"body buffered", "include_peer_certificate: false", "include_peer_certificate: false\n                      with_request_body:\n                        max_request_bytes: 1024", "with_request_body"},
		{"scopes not forwarded", "- exact: x-keygate-scopes\n", "- exact: x-keygate-scope\n", `"x-keygate-scopes" copied upstream`},
		{"identity leaks on deny", "- exact: x-keygate-reason\n", "- prefix: x-keygate-\n", `"x-keygate-key-id" passed to the client`},
		{"xff not sent", "- exact: x-forwarded-for\n", "- exact: x-forwarded-host\n", `"x-forwarded-for" sent to keygate`},
		{"deprecated header list", "path_prefix: /ext_authz\n", "path_prefix: /ext_authz\n                        authorization_request:\n                          allowed_headers:\n                            patterns:\n                              - exact: x-api-key\n", "deprecated"},
		{"per-route scopes", "disabled: true", "check_settings:\n                                context_extensions:\n                                  keygate.scopes: admin", "context_extensions set"},
		{"default connection limit", "max_connections: 10000", "max_connections: 1024", "max_connections"},
		{"identity header kept", "- remove: x-keygate-scopes\n", "- remove: x-keygate-scope\n", "does not remove x-keygate-scopes"},
		{"record header kept", "- remove: x-plan\n", "", "does not remove x-plan"},
		{"record header not copied", "- exact: x-plan\n", "- exact: x-plans\n", `"x-plan" copied upstream`},
		{"dropped record header not copied", "- remove: x-plan\n", "- remove: x-plan\n                          - remove: x-tier\n", `"x-tier" copied upstream`},
		{"underscores allowed", "headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: ALLOW", "headers_with_underscores_action"},
	})
	testMutations(t, httpConfigFile, httpPolicies, []mutation{
		stripOrderMutations[0],
		stripOrderMutations[1],
		{"gRPC instead of HTTP", func(t *testing.T, s *setup) {
			s.extAuthz.Services = &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{}}
		}, "no http_service"},
		{"path override", func(t *testing.T, s *setup) {
			s.extAuthz.GetHttpService().PathOverride = "/check"
		}, "path_override"},
		{"allow headers to client", func(t *testing.T, s *setup) {
			r := s.extAuthz.GetHttpService().GetAuthorizationResponse()
			r.AllowedClientHeadersOnSuccess = r.GetAllowedUpstreamHeaders()
		}, "allowed_client_headers_on_success"},
	})
}
