package envoy

import (
	"slices"
	"strings"
	"testing"
	"time"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	xffv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/original_ip_detection/xff/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/keygate/keygate/internal/docs"
)

// envoyFiles are the shipped bootstraps the invariants hold for.
var envoyFiles = []string{configFile, httpConfigFile, rateLimitConfigFile}

// A mutant breaks (or, in harmless, keeps) one invariant of the configs it
// applies to: every Envoy file unless only names one.
type mutant struct {
	name    string
	only    string
	mutate  func(*testing.T, *setup)
	wantErr string // "" for a harmless edit the invariant must accept
}

// invariantMutants are, per invariant (or existing policy), the edits it
// must catch and those it must not flag.
var invariantMutants = map[string][]mutant{
	"scoped routes match every case": {
		{"/orders case-sensitive", configFile, func(t *testing.T, s *setup) {
			route(t, s, "/orders").Match.CaseSensitive = wrapperspb.Bool(true)
		}, `"/ORDERS" falls through`},
		{"/orders case left to the default", configFile, func(t *testing.T, s *setup) {
			route(t, s, "/orders").Match.CaseSensitive = nil
		}, "matches case-sensitively"},
		{"scoped catch-all needs no case", "", func(t *testing.T, s *setup) {
			setScopes(t, s, s.routes[len(s.routes)-1], "api")
		}, ""},
	},
	"skipping routes match one path in one case": {
		{"/healthz any case", "", func(t *testing.T, s *setup) {
			route(t, s, "/healthz").Match.CaseSensitive = wrapperspb.Bool(false)
		}, "one exact path in one case"},
		{"/healthz prefix", "", func(t *testing.T, s *setup) {
			route(t, s, "/healthz").Match.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/healthz"}
		}, "one exact path in one case"},
		{"exemption by regex", "", func(t *testing.T, s *setup) {
			route(t, s, "/healthz").Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/healthz"}}
		}, "understand prefix, path_separated_prefix and path only"},
		{"exemption off on the virtual host", "", func(t *testing.T, s *setup) {
			s.vhost.TypedPerFilterConfig = map[string]*anypb.Any{s.extAuthzFilter.GetName(): pack(t, &extauthzv3.ExtAuthzPerRoute{
				Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})}
		}, "skips keygate for more than one exact path"},
	},
	"no route shadows a scoped route": {
		{"scope-less prefix first", configFile, func(t *testing.T, s *setup) {
			insertRoute(s, 0, plainRoute("/ord", false))
		}, "requires [orders:read]"},
		{"scope-less exact path first", configFile, func(t *testing.T, s *setup) {
			insertRoute(s, 0, plainRoute("/orders/export", true))
		}, "requires [orders:read]"},
		{"upper-case prefix first", configFile, func(t *testing.T, s *setup) {
			insertRoute(s, 0, plainRoute("/ORDERS", false))
		}, "requires [orders:read]"},
		{"catch-all first", configFile, func(t *testing.T, s *setup) {
			last := s.routes[len(s.routes)-1]
			s.vhost.Routes = slices.Insert(s.vhost.Routes[:len(s.routes)-1], 0, last)
			s.routes = s.vhost.Routes
		}, "requires [orders:read]"},
		{"another scope first", configFile, func(t *testing.T, s *setup) {
			r := plainRoute("/orders/", false)
			insertRoute(s, 0, r)
			setScopes(t, s, r, "orders:list")
		}, "requires [orders:read]"},
		{"keygate off on a sub-path first", configFile, func(t *testing.T, s *setup) {
			r := plainRoute("/orders/public", false)
			r.TypedPerFilterConfig = map[string]*anypb.Any{s.extAuthzFilter.GetName(): pack(t, &extauthzv3.ExtAuthzPerRoute{
				Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})}
			insertRoute(s, 0, r)
		}, "ext_authz disabled true"},
		{"stricter route first", configFile, func(t *testing.T, s *setup) {
			r := plainRoute("/orders/admin", false)
			insertRoute(s, 0, r)
			setScopes(t, s, r, "orders:read orders:admin")
		}, ""},
		{"disjoint scope-less route first", configFile, func(t *testing.T, s *setup) {
			insertRoute(s, 0, plainRoute("/status", true))
		}, ""},
	},
	"forwarding hops trusted as documented": {
		{"one trusted hop", "", func(t *testing.T, s *setup) { s.hcm.XffNumTrustedHops = 1 }, "xff_num_trusted_hops 1"},
		{"remote address off", "", func(t *testing.T, s *setup) { s.hcm.UseRemoteAddress = wrapperspb.Bool(false) }, "use_remote_address not true"},
		{"remote address unset", "", func(t *testing.T, s *setup) { s.hcm.UseRemoteAddress = nil }, "use_remote_address not true"},
		{"address from XFF extension", "", func(t *testing.T, s *setup) {
			s.hcm.OriginalIpDetectionExtensions = []*corev3.TypedExtensionConfig{{
				Name: "envoy.extensions.http.original_ip_detection.xff", TypedConfig: pack(t, &xffv3.XffConfig{XffNumTrustedHops: 1})}}
		}, "original_ip_detection_extensions"},
		{"no XFF append", "", func(t *testing.T, s *setup) { s.hcm.SkipXffAppend = true }, "skip_xff_append"},
		{"PROXY protocol from clients", "", func(t *testing.T, s *setup) {
			l := listenerOf(s)
			l.ListenerFilters = append(l.ListenerFilters, &listenerv3.ListenerFilter{
				Name:       "envoy.filters.listener.proxy_protocol",
				ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: pack(t, &proxyprotocolv3.ProxyProtocol{})}})
		}, "proxy_protocol listener filter"},
	},
	"keygate's header answer is applied": {
		{"all mutations refused", "", func(t *testing.T, s *setup) {
			s.extAuthz.DecoderHeaderMutationRules = &mutationrulesv3.HeaderMutationRules{DisallowAll: wrapperspb.Bool(true)}
		}, "forbid keygate to set or remove x-keygate-key-id"},
		{"x-keygate-* refused", "", func(t *testing.T, s *setup) {
			s.extAuthz.DecoderHeaderMutationRules = &mutationrulesv3.HeaderMutationRules{DisallowExpression: &matcherv3.RegexMatcher{Regex: "x-keygate-.*"}}
		}, "remove x-keygate-tenant"},
		{"credential removal refused", "", func(t *testing.T, s *setup) {
			s.extAuthz.DecoderHeaderMutationRules = &mutationrulesv3.HeaderMutationRules{DisallowExpression: &matcherv3.RegexMatcher{Regex: "x-api-key|authorization"}}
		}, "remove x-api-key"},
		{"record header refused", "", func(t *testing.T, s *setup) {
			s.extAuthz.DecoderHeaderMutationRules = &mutationrulesv3.HeaderMutationRules{DisallowExpression: &matcherv3.RegexMatcher{Regex: "x-plan"}}
		}, "remove x-plan"},
		{"credential hidden from keygate", "", func(t *testing.T, s *setup) {
			s.extAuthz.DisallowedHeaders = &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{
				{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "authorization"}}}}
		}, "disallowed_headers hides authorization"},
		{"route picked again after the check", "", func(t *testing.T, s *setup) { s.extAuthz.ClearRouteCache = true }, "clear_route_cache"},
		{"default rules", "", func(t *testing.T, s *setup) {
			s.extAuthz.DecoderHeaderMutationRules = &mutationrulesv3.HeaderMutationRules{}
		}, ""},
		{"only x-envoy-* refused", "", func(t *testing.T, s *setup) {
			s.extAuthz.DecoderHeaderMutationRules = &mutationrulesv3.HeaderMutationRules{DisallowExpression: &matcherv3.RegexMatcher{Regex: "x-envoy-.*"}, DisallowIsError: wrapperspb.Bool(true)}
		}, ""},
		{"cookies hidden from keygate", "", func(t *testing.T, s *setup) {
			s.extAuthz.DisallowedHeaders = &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{
				{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "cookie"}}}}
		}, ""},
	},
	"routes keep keygate's headers": {
		{"route removes tenant", "", func(t *testing.T, s *setup) {
			last(s).RequestHeadersToRemove = []string{"x-keygate-tenant"}
		}, "Route removes x-keygate-tenant"},
		{"virtual host removes record header", "", func(t *testing.T, s *setup) {
			s.vhost.RequestHeadersToRemove = []string{"X-Plan"}
		}, "VirtualHost removes X-Plan"},
		{"route config removes key id", "", func(t *testing.T, s *setup) {
			s.hcm.GetRouteConfig().RequestHeadersToRemove = []string{"x-keygate-key-id"}
		}, "RouteConfiguration removes x-keygate-key-id"},
		{"route removes another header", "", func(t *testing.T, s *setup) {
			last(s).RequestHeadersToRemove = []string{"x-debug"}
		}, ""},
	},
	"nothing but keygate adds its headers": {
		{"route appends key id", "", func(t *testing.T, s *setup) {
			last(s).RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-keygate-key-id", "kg_x", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)}
		}, "sets x-keygate-key-id"},
		{"virtual host overwrites tenant", "", func(t *testing.T, s *setup) {
			s.vhost.RequestHeadersToAdd = []*corev3.HeaderValueOption{header("X-Keygate-Tenant", "acme", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}
		}, "sets X-Keygate-Tenant"},
		{"route config adds record header", "", func(t *testing.T, s *setup) {
			s.hcm.GetRouteConfig().RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-plan", "gold", corev3.HeaderValueOption_ADD_IF_ABSENT)}
		}, "sets x-plan"},
		{"header_mutation appends scopes", "", func(t *testing.T, s *setup) {
			hm, _, err := filterOf[*headermutationv3.HeaderMutation](s)
			if err != nil {
				t.Fatal(err)
			}
			hm.Mutations.RequestMutations = append(hm.Mutations.RequestMutations, &mutationrulesv3.HeaderMutation{
				Action: &mutationrulesv3.HeaderMutation_Append{Append: header("x-keygate-scopes", "admin", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)}})
		}, "sets x-keygate-scopes"},
		{"route answers with a reason", "", func(t *testing.T, s *setup) {
			last(s).ResponseHeadersToAdd = []*corev3.HeaderValueOption{header("x-keygate-reason", "ok", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}
		}, "sets x-keygate-reason"},
		{"inside a per-route Any", "", func(t *testing.T, s *setup) {
			last(s).TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.header_mutation": pack(t, &headermutationv3.HeaderMutationPerRoute{
				Mutations: &headermutationv3.Mutations{RequestMutations: []*mutationrulesv3.HeaderMutation{{
					Action: &mutationrulesv3.HeaderMutation_Append{Append: header("x-keygate-key-id", "kg_x", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}}}}})}
		}, "sets x-keygate-key-id"},
		{"route adds another header", "", func(t *testing.T, s *setup) {
			last(s).RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-route", "default", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}
		}, ""},
	},
	"no per-route authorization service": {
		{"route asks another gRPC service", "", func(t *testing.T, s *setup) {
			last(s).TypedPerFilterConfig = map[string]*anypb.Any{s.extAuthzFilter.GetName(): pack(t, &extauthzv3.ExtAuthzPerRoute{
				Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{
					ServiceOverride: &extauthzv3.CheckSettings_GrpcService{GrpcService: &corev3.GrpcService{
						Timeout: durationpb.New(5 * time.Second)}}}}})}
		}, "overrides the authorization service"},
	},
	"ext_authz timeout within the documented bounds": {
		{"slower than documented", "", func(t *testing.T, s *setup) { setTimeout(s, 300e6) }, "at most the documented 250ms"},
		{"no slower than the store lookup", "", func(t *testing.T, s *setup) { setTimeout(s, 150e6) }, "above --lookup-timeout 150ms"},
		{"at the documented bound", "", func(t *testing.T, s *setup) { setTimeout(s, 250e6) }, ""},
	},
	"ext_authz fails closed": {
		{"fails open", "", func(t *testing.T, s *setup) { s.extAuthz.FailureModeAllow = true }, "failure_mode_allow is true"},
	},
	"ext_authz errors are 503": {
		{"403 on error", "", func(t *testing.T, s *setup) {
			s.extAuthz.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}
		}, "status_on_error Forbidden"},
		{"default status on error", "", func(t *testing.T, s *setup) { s.extAuthz.StatusOnError = nil }, "want ServiceUnavailable"},
	},
}

// policyNamed returns the invariant or existing common policy called name.
func policyNamed(t *testing.T, name string) policy {
	t.Helper()
	i := slices.IndexFunc(slices.Concat(envoyInvariants, commonPolicies), func(p policy) bool { return p.name == name })
	if i < 0 {
		t.Fatalf("no policy %q", name)
	}
	return slices.Concat(envoyInvariants, commonPolicies)[i]
}

// TestInvariants checks every shipped Envoy bootstrap against the
// invariants.
func TestInvariants(t *testing.T) {
	for _, file := range envoyFiles {
		t.Run(file, func(t *testing.T) {
			testPolicies(t, file, envoyInvariants)
		})
	}
}

// TestInvariantMutants proves each invariant bites: every mutant breaks it
// with the expected complaint, and harmless edits pass.
func TestInvariantMutants(t *testing.T) {
	docs := map[string][]byte{}
	for _, f := range envoyFiles {
		docs[f] = readFile(t, f)
	}
	for _, inv := range slices.Concat(envoyInvariants, commonPolicies) {
		muts, ok := invariantMutants[inv.name]
		if !ok {
			continue
		}
		for _, m := range muts {
			for _, file := range envoyFiles {
				if m.only != "" && m.only != file {
					continue
				}
				t.Run(inv.name+"/"+m.name+"/"+file, func(t *testing.T) {
					s, err := loadSetup(docs[file])
					if err != nil {
						t.Fatal(err)
					}
					m.mutate(t, s)
					err = policyNamed(t, inv.name).check(s)
					if m.wantErr == "" {
						if err != nil {
							t.Fatalf("harmless edit rejected: %v", err)
						}
						return
					}
					wantRejected(t, err, m.wantErr)
				})
			}
		}
	}
}

// TestEveryInvariantHasMutants keeps the tables complete.
func TestEveryInvariantHasMutants(t *testing.T) {
	for _, inv := range envoyInvariants {
		n := 0
		for _, m := range invariantMutants[inv.name] {
			if m.wantErr != "" {
				n++
			}
		}
		if n == 0 {
			t.Errorf("invariant %q has no mutant it must reject", inv.name)
		}
	}
	for name := range invariantMutants {
		if _, ok := invariantDocs[name]; !ok {
			t.Errorf("mutants for %q, which quotes no documentation", name)
		}
	}
}

// TestInvariantsCiteDocs requires each quoted sentence in the docs.
func TestInvariantsCiteDocs(t *testing.T) {
	text, err := docs.Text("..")
	if err != nil {
		t.Fatal(err)
	}
	all := collapseSpace(text)
	for _, inv := range envoyInvariants {
		if _, ok := invariantDocs[inv.name]; !ok {
			t.Errorf("invariant %q quotes no documentation", inv.name)
		}
	}
	for name, sentence := range invariantDocs {
		if !strings.Contains(all, collapseSpace(sentence)) {
			t.Errorf("%q: the documentation (README.md, docs/) does not say %q", name, sentence)
		}
	}
}

func pack(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func route(t *testing.T, s *setup, p string) *routev3.Route {
	t.Helper()
	r, err := s.findRoute(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func last(s *setup) *routev3.Route { return s.routes[len(s.routes)-1] }

// plainRoute is a route to the upstream with no per-filter config.
func plainRoute(p string, exact bool) *routev3.Route {
	m := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p}}
	if exact {
		m.PathSpecifier = &routev3.RouteMatch_Path{Path: p}
	}
	return &routev3.Route{Match: m, Action: &routev3.Route_Route{Route: &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: upstreamCluster}}}}
}

func insertRoute(s *setup, at int, r *routev3.Route) {
	s.vhost.Routes = slices.Insert(s.vhost.Routes, at, r)
	s.routes = s.vhost.Routes
}

func setScopes(t *testing.T, s *setup, r *routev3.Route, scopes string) {
	r.TypedPerFilterConfig = map[string]*anypb.Any{s.extAuthzFilter.GetName(): pack(t, &extauthzv3.ExtAuthzPerRoute{
		Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{
			ContextExtensions: map[string]string{scopesKey: scopes}}}})}
}

func header(k, v string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: action}
}

// setTimeout sets the time Envoy gives keygate for one check, nanoseconds.
func setTimeout(s *setup, ns int64) {
	if g := s.extAuthz.GetGrpcService(); g != nil {
		g.Timeout = durationpb.New(time.Duration(ns))
		return
	}
	s.extAuthz.GetHttpService().GetServerUri().Timeout = durationpb.New(time.Duration(ns))
}
