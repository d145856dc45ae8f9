package envoy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const (
	keygateCluster    = "keygate"
	upstreamCluster   = "upstream"
	scopesKey         = "keygate.scopes"
	maxCheckTimeout   = 250 * time.Millisecond
	httpOptionsKey    = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	envoyDefaultLimit = 1024 // Envoy's default circuit breaker thresholds
)

// identityHeaders are the headers keygate sets on allowed requests (and
// x-keygate-reason on denials). Upstreams trust them, so every config drops
// client-sent copies before anything else runs.
var identityHeaders = []string{"x-keygate-key-id", "x-keygate-tenant", "x-keygate-scopes", "x-keygate-reason"}

// recordHeaders are the record header names the configs carry as their
// example (keys ... --header x-plan=gold; keygate --strip-headers x-plan):
// dropped like the identity headers, and copied upstream where the config
// lists what it copies.
var recordHeaders = []string{"x-plan"}

// requestRemovals returns the header names a header_mutation filter removes
// from requests.
func requestRemovals(hm *headermutationv3.HeaderMutation) []string {
	var removed []string
	for _, m := range hm.GetMutations().GetRequestMutations() {
		if r := m.GetRemove(); r != "" {
			removed = append(removed, r)
		}
	}
	return removed
}

// filterChain requires exactly these http filters, in this order.
func filterChain(want ...proto.Message) policy {
	return policy{"http filter chain", func(s *setup) error {
		var got, wantNames []string
		for _, m := range s.filters {
			got = append(got, string(m.ProtoReflect().Descriptor().Name()))
		}
		for _, m := range want {
			wantNames = append(wantNames, string(m.ProtoReflect().Descriptor().Name()))
		}
		if !slices.Equal(got, wantNames) {
			return fmt.Errorf("filters %v, want %v", got, wantNames)
		}
		return nil
	}}
}

// checkTimeout returns the time Envoy gives keygate for one check.
func checkTimeout(s *setup) time.Duration {
	if g := s.extAuthz.GetGrpcService(); g != nil {
		return g.GetTimeout().AsDuration()
	}
	return s.extAuthz.GetHttpService().GetServerUri().GetTimeout().AsDuration()
}

// commonPolicies hold for every config that puts keygate in front of an
// upstream, whichever way Envoy talks to keygate.
var commonPolicies = []policy{
	{"client-sent identity and record headers are dropped", func(s *setup) error {
		hm, f, err := filterOf[*headermutationv3.HeaderMutation](s)
		if err != nil {
			return err
		}
		if f.GetDisabled() || f.GetIsOptional() {
			return errors.New("header_mutation filter is disabled or optional")
		}
		removed := requestRemovals(hm)
		for _, h := range slices.Concat(identityHeaders, recordHeaders) {
			if !slices.Contains(removed, h) {
				return fmt.Errorf("header_mutation does not remove %s (removes %v)", h, removed)
			}
		}
		for _, cfg := range s.perFilterConfigs() {
			if _, ok := cfg[f.GetName()]; ok {
				return fmt.Errorf("a typed_per_filter_config entry for %s may disable or change it", f.GetName())
			}
		}
		return nil
	}},
	{"ext_authz always enforces", func(s *setup) error {
		var errs []error
		if s.extAuthzFilter.GetDisabled() || s.extAuthzFilter.GetIsOptional() {
			errs = append(errs, errors.New("http filter is disabled or optional"))
		}
		if s.extAuthz.GetFilterEnabled() != nil || s.extAuthz.GetFilterEnabledMetadata() != nil {
			errs = append(errs, errors.New("filter_enabled or filter_enabled_metadata set: some requests skip keygate"))
		}
		if s.extAuthz.GetShadowMode() {
			errs = append(errs, errors.New("shadow_mode on: denials are not enforced"))
		}
		return errors.Join(errs...)
	}},
	{"ext_authz fails closed", func(s *setup) error {
		if s.extAuthz.GetFailureModeAllow() {
			return errors.New("failure_mode_allow is true: keygate outage lets every request through")
		}
		return nil
	}},
	{"ext_authz errors are 503", func(s *setup) error {
		if got := s.extAuthz.GetStatusOnError().GetCode(); got != typev3.StatusCode_ServiceUnavailable {
			return fmt.Errorf("status_on_error %v, want ServiceUnavailable", got)
		}
		return nil
	}},
	{"ext_authz timeout", func(s *setup) error {
		if t := checkTimeout(s); t <= 0 || t > maxCheckTimeout {
			return fmt.Errorf("check timeout %v, want set and at most %v", t, maxCheckTimeout)
		}
		return nil
	}},
	{"ext_authz sends no body or peer certificate", func(s *setup) error {
		if s.extAuthz.GetWithRequestBody() != nil {
			return errors.New("with_request_body set: keygate never reads the body; buffering it costs latency and memory")
		}
		if s.extAuthz.GetIncludePeerCertificate() {
			return errors.New("include_peer_certificate is true")
		}
		return nil
	}},
	{"connection manager hardening", func(s *setup) error {
		h := s.hcm
		var errs []error
		if !h.GetNormalizePath().GetValue() {
			errs = append(errs, errors.New("normalize_path not true"))
		}
		if !h.GetMergeSlashes() {
			errs = append(errs, errors.New("merge_slashes not true"))
		}
		if got := h.GetPathWithEscapedSlashesAction(); got != hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT {
			errs = append(errs, fmt.Errorf("path_with_escaped_slashes_action %v", got))
		}
		if got := h.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); got != corev3.HttpProtocolOptions_REJECT_REQUEST {
			errs = append(errs, fmt.Errorf("headers_with_underscores_action %v", got))
		}
		if !h.GetUseRemoteAddress().GetValue() {
			errs = append(errs, errors.New("use_remote_address not true"))
		}
		return errors.Join(errs...)
	}},
	{"only /healthz skips keygate", func(s *setup) error {
		for _, cfg := range []map[string]*anypb.Any{
			s.hcm.GetRouteConfig().GetTypedPerFilterConfig(),
			s.vhost.GetTypedPerFilterConfig(),
		} {
			if pr, err := s.authzPerRoute(cfg); err != nil || pr.GetDisabled() {
				return fmt.Errorf("ext_authz disabled above the routes (%v)", err)
			}
		}
		var skipped []*routev3.RouteMatch
		for _, r := range s.routes {
			pr, err := s.authzPerRoute(r.GetTypedPerFilterConfig())
			if err != nil {
				return err
			}
			if pr.GetDisabled() {
				skipped = append(skipped, r.GetMatch())
			}
		}
		if len(skipped) != 1 || skipped[0].GetPath() != "/healthz" {
			return fmt.Errorf("routes with ext_authz disabled: %v, want only exact path /healthz", skipped)
		}
		return nil
	}},
	{"default route is authorized", func(s *setup) error {
		last := s.routes[len(s.routes)-1]
		pr, err := s.authzPerRoute(last.GetTypedPerFilterConfig())
		if err != nil {
			return err
		}
		if last.GetMatch().GetPrefix() != "/" || last.GetRoute().GetCluster() != upstreamCluster || pr.GetDisabled() {
			return fmt.Errorf("last route %v, want prefix / to %s with ext_authz on", last, upstreamCluster)
		}
		return nil
	}},
	{"keygate cluster limits", func(s *setup) error {
		c, err := s.cluster(keygateCluster)
		if err != nil {
			return err
		}
		if t := c.GetConnectTimeout().AsDuration(); t <= 0 || t > maxCheckTimeout {
			return fmt.Errorf("connect_timeout %v, want at most %v", t, maxCheckTimeout)
		}
		for _, t := range c.GetCircuitBreakers().GetThresholds() {
			if t.GetPriority() == corev3.RoutingPriority_DEFAULT {
				if t.GetMaxRequests().GetValue() <= envoyDefaultLimit {
					return fmt.Errorf("max_requests %d, want above Envoy's default %d", t.GetMaxRequests().GetValue(), envoyDefaultLimit)
				}
				return nil
			}
		}
		return errors.New("no DEFAULT circuit breaker thresholds")
	}},
	{"upstream cluster exists", func(s *setup) error {
		_, err := s.cluster(upstreamCluster)
		return err
	}},
	{"admin on loopback", func(s *setup) error {
		if got := s.bootstrap.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); got != "127.0.0.1" {
			return fmt.Errorf("admin address %q, want 127.0.0.1", got)
		}
		return nil
	}},
}
