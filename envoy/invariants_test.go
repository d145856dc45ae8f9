package envoy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/keygate/keygate/internal/docs"
)

// The invariants below are what a user of the shipped Envoy configs relies
// on without reading them: which requests keygate judges, with which
// scopes, on which client address, and that keygate's header answer is the
// one the upstream gets. Each names the documentation sentence it keeps
// (invariantDocs) and carries mutants that must break it
// (invariants_mutants_test.go).

// credentialHeaders are the headers keygate reads the key from and removes
// on allow (its defaults, as the configs' allowed_headers list them).
var credentialHeaders = []string{"x-api-key", "authorization"}

// keygateHeaders are every header name keygate sets or removes on allow:
// Envoy must apply its answer for each of them.
var keygateHeaders = slices.Concat(identityHeaders, recordHeaders, credentialHeaders)

// isKeygateOwned reports whether name (any case) is a header only keygate
// may set: x-keygate-* and the example record header names.
func isKeygateOwned(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "x-keygate-") || slices.Contains(recordHeaders, n)
}

// envoyInvariants hold for every shipped Envoy bootstrap.
var envoyInvariants = []policy{
	{"scoped routes match every case", checkScopedCase},
	{"skipping routes match one path in one case", checkSkipExact},
	{"no route shadows a scoped route", checkShadowing},
	{"forwarding hops trusted as documented", checkTrustedHops},
	{"keygate's header answer is applied", checkMutationRules},
	{"routes keep keygate's headers", checkRouteRemovals},
	{"nothing but keygate adds its headers", checkNoHeaderAdds},
	{"no per-route authorization service", checkNoServiceOverride},
	{"ext_authz timeout within the documented bounds", checkDocumentedTimeout},
}

// invariantDocs quotes, for each invariant and for each existing policy a
// mutant table here exercises, the sentence of README.md or docs/ it
// protects (whitespace aside, verbatim; TestInvariantsCiteDocs).
var invariantDocs = map[string]string{
	"scoped routes match every case":                 "if your upstream treats `/Admin` as `/admin`, add rules for both or add a `/` catch-all with the stricter scopes.",
	"skipping routes match one path in one case":     "sending every request except exactly `/healthz`",
	"no route shadows a scoped route":                "A route's required scopes come from two places, and both apply:",
	"forwarding hops trusted as documented":          "in gRPC mode, the source address Envoy reports (configure Envoy's `xff_num_trusted_hops` for proxies in front of it)",
	"keygate's header answer is applied":             "headers set with `append_action: OVERWRITE_IF_EXISTS_OR_ADD`",
	"routes keep keygate's headers":                  "so upstreams can trust them on every request",
	"nothing but keygate adds its headers":           "so upstreams can trust them on every request",
	"no per-route authorization service":             "It fails closed: every error is an explicit deny, never a gRPC error Envoy could turn into an allow.",
	"ext_authz timeout within the documented bounds": "`--lookup-timeout` (150ms — keep it under Envoy's ext_authz timeout)",
	"ext_authz fails closed":                         "`failure_mode_allow: false`",
	"ext_authz errors are 503":                       "`status_on_error: 503`",
}

// routeAuthz is how ext_authz treats requests a route takes.
type routeAuthz struct {
	disabled bool
	scopes   []string // keygate.scopes, merged from route config to route
}

// authzOf merges the ext_authz per-filter configs that apply to r: the
// route config's, the virtual host's, then the route's. Context extensions
// merge with the more specific winning per key; disabled is the most
// specific entry's.
func (s *setup) authzOf(r *routev3.Route) (routeAuthz, error) {
	var (
		a   routeAuthz
		ext = map[string]string{}
	)
	for _, cfg := range []map[string]*anypb.Any{
		s.hcm.GetRouteConfig().GetTypedPerFilterConfig(),
		s.vhost.GetTypedPerFilterConfig(),
		r.GetTypedPerFilterConfig(),
	} {
		pr, err := s.authzPerRoute(cfg)
		if err != nil {
			return a, err
		}
		if pr != nil {
			a.disabled = pr.GetDisabled()
			for k, v := range pr.GetCheckSettings().GetContextExtensions() {
				ext[k] = v
			}
		}
	}
	a.scopes = strings.Fields(ext[scopesKey])
	return a, nil
}

// covers reports whether every scope of b is in a: a route with a's
// requirements may take b's requests.
func (a routeAuthz) covers(b routeAuthz) bool {
	if a.disabled && !b.disabled {
		return false
	}
	for _, sc := range b.scopes {
		if !slices.Contains(a.scopes, sc) {
			return false
		}
	}
	return true
}

// pathMatch is a route's path matcher: a prefix, or an exact path, either
// case-sensitive or not.
type pathMatch struct {
	value       string
	exact, fold bool
}

// matchOf returns m's path matcher. Only the matcher kinds a path can be
// compared by are understood; others are an error, so the test grows with
// the configs.
func matchOf(m *routev3.RouteMatch) (pathMatch, error) {
	pm := pathMatch{fold: m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()}
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		pm.value = p.Prefix
	case *routev3.RouteMatch_PathSeparatedPrefix:
		pm.value = p.PathSeparatedPrefix // a prefix, at most: enough to find overlaps
	case *routev3.RouteMatch_Path:
		pm.value, pm.exact = p.Path, true
	default:
		return pm, fmt.Errorf("route match %v: the invariant tests understand prefix, path_separated_prefix and path only; extend them", m)
	}
	return pm, nil
}

// overlaps reports whether some path matches both a and b. A route's
// header or query matchers only narrow it, so they are ignored: an overlap
// found here may be narrower in Envoy, never wider.
func overlaps(a, b pathMatch) bool {
	x, y := a.value, b.value
	if a.fold || b.fold {
		x, y = strings.ToLower(x), strings.ToLower(y)
	}
	switch {
	case a.exact && b.exact:
		return x == y
	case a.exact:
		return strings.HasPrefix(x, y)
	case b.exact:
		return strings.HasPrefix(y, x)
	}
	return strings.HasPrefix(x, y) || strings.HasPrefix(y, x)
}

// hasCase reports whether s has letters, so that case can matter.
func hasCase(s string) bool { return strings.ToLower(s) != strings.ToUpper(s) }

// checkScopedCase: a scoped route must match /ORDERS as /orders, or the
// request falls through to a later route that asks for fewer scopes while
// an upstream that ignores case serves /orders.
func checkScopedCase(s *setup) error {
	for _, r := range s.routes {
		a, err := s.authzOf(r)
		if err != nil {
			return err
		}
		pm, err := matchOf(r.GetMatch())
		if err != nil {
			return err
		}
		if len(a.scopes) > 0 && hasCase(pm.value) && !pm.fold {
			return fmt.Errorf("route %q requires %v but matches case-sensitively: %q falls through to a route without them (set case_sensitive: false)", pm.value, a.scopes, strings.ToUpper(pm.value))
		}
	}
	return nil
}

// checkSkipExact: a route where ext_authz is off matches one exact path,
// case-sensitively, so the exemption is no wider than documented.
func checkSkipExact(s *setup) error {
	for _, r := range s.routes {
		a, err := s.authzOf(r)
		if err != nil {
			return err
		}
		if !a.disabled {
			continue
		}
		pm, err := matchOf(r.GetMatch())
		if err != nil {
			return err
		}
		if !pm.exact || pm.fold {
			return fmt.Errorf("route %v skips keygate for more than one exact path in one case", r.GetMatch())
		}
	}
	return nil
}

// checkShadowing: Envoy takes the first matching route, so no earlier
// route may take requests a later route requires more scopes for.
func checkShadowing(s *setup) error {
	authz := make([]routeAuthz, len(s.routes))
	matches := make([]pathMatch, len(s.routes))
	for i, r := range s.routes {
		var err error
		if authz[i], err = s.authzOf(r); err != nil {
			return err
		}
		if matches[i], err = matchOf(r.GetMatch()); err != nil {
			return err
		}
	}
	for i := range s.routes {
		if len(authz[i].scopes) == 0 {
			continue
		}
		for j := range i {
			if overlaps(matches[j], matches[i]) && !authz[j].covers(authz[i]) {
				return fmt.Errorf("route %d %+v (scopes %v, ext_authz disabled %v) comes first and takes requests for route %d %+v, which requires %v",
					j, matches[j], authz[j].scopes, authz[j].disabled, i, matches[i], authz[i].scopes)
			}
		}
	}
	return nil
}

// proxyProtocolType is the listener filter that takes the client address
// from a PROXY protocol header, which a direct client can write.
const proxyProtocolType = "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"

// checkTrustedHops: the shipped listeners face clients directly, so the
// address Envoy reports (and appends to X-Forwarded-For) is the TCP peer's
// and nothing a client wrote.
func checkTrustedHops(s *setup) error {
	h := s.hcm
	var errs []error
	if !h.GetUseRemoteAddress().GetValue() {
		errs = append(errs, errors.New("use_remote_address not true: Envoy reports an address from X-Forwarded-For"))
	}
	if n := h.GetXffNumTrustedHops(); n != 0 {
		errs = append(errs, fmt.Errorf("xff_num_trusted_hops %d: a direct client writes the last %d X-Forwarded-For entries", n, n))
	}
	if exts := h.GetOriginalIpDetectionExtensions(); len(exts) > 0 {
		errs = append(errs, fmt.Errorf("original_ip_detection_extensions %v: the client address would come from a header", exts[0].GetName()))
	}
	if h.GetSkipXffAppend() {
		errs = append(errs, errors.New("skip_xff_append: the peer address is no longer appended to X-Forwarded-For"))
	}
	for _, l := range s.bootstrap.GetStaticResources().GetListeners() {
		for _, f := range l.GetListenerFilters() {
			if f.GetTypedConfig().GetTypeUrl() == proxyProtocolType || strings.Contains(f.GetName(), "proxy_protocol") {
				errs = append(errs, fmt.Errorf("listener %s: proxy_protocol listener filter: a direct client sends its own PROXY header", l.GetName()))
			}
		}
		if l.GetUseOriginalDst().GetValue() {
			errs = append(errs, fmt.Errorf("listener %s: use_original_dst", l.GetName()))
		}
	}
	return errors.Join(errs...)
}

// mutationAllowed reports whether rules let ext_authz set or remove name,
// as Envoy's HeaderMutationChecker decides for a non-system header.
func mutationAllowed(rules *mutationrulesv3.HeaderMutationRules, name string) (bool, error) {
	if rules == nil {
		return true, nil // unset: no checking at all
	}
	if rules.GetDisallowAll().GetValue() {
		return false, nil
	}
	full := func(m interface{ GetRegex() string }) (bool, error) {
		re, err := regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
		if err != nil {
			return false, err
		}
		return re.MatchString(name), nil
	}
	if d := rules.GetDisallowExpression(); d != nil {
		if hit, err := full(d); err != nil || hit {
			return false, err
		}
	}
	if a := rules.GetAllowExpression(); a != nil {
		if hit, err := full(a); err != nil || hit {
			return hit, err
		}
	}
	if strings.HasPrefix(name, "x-envoy-") {
		return rules.GetAllowEnvoy().GetValue(), nil
	}
	return true, nil
}

// checkMutationRules: Envoy must apply every set and removal keygate
// answers with, and must send keygate the credential headers it removes.
func checkMutationRules(s *setup) error {
	var errs []error
	for _, h := range keygateHeaders {
		ok, err := mutationAllowed(s.extAuthz.GetDecoderHeaderMutationRules(), h)
		if err != nil {
			return err
		}
		if !ok {
			errs = append(errs, fmt.Errorf("decoder_header_mutation_rules forbid keygate to set or remove %s", h))
		}
	}
	if d := s.extAuthz.GetDisallowedHeaders(); d != nil {
		for _, h := range credentialHeaders {
			if hit, err := headerAllowed(d, h); err != nil || hit {
				errs = append(errs, fmt.Errorf("disallowed_headers hides %s from keygate, which then cannot remove it (%v)", h, err))
			}
		}
	}
	if s.extAuthz.GetClearRouteCache() {
		errs = append(errs, errors.New("clear_route_cache: Envoy would pick a route again after keygate judged the request, by the headers keygate set"))
	}
	return errors.Join(errs...)
}

// headersToRemover is a route config, virtual host, route or weighted
// cluster: the router removes these after ext_authz has answered.
type headersToRemover interface {
	GetRequestHeadersToRemove() []string
}

// checkRouteRemovals: no route-level removal takes away a header keygate
// set; the router applies them after ext_authz.
func checkRouteRemovals(s *setup) error {
	return s.visit(func(m proto.Message) error {
		r, ok := m.(headersToRemover)
		if !ok {
			return nil
		}
		for _, h := range r.GetRequestHeadersToRemove() {
			if isKeygateOwned(h) {
				return fmt.Errorf("%s removes %s after keygate set it", m.ProtoReflect().Descriptor().Name(), h)
			}
		}
		return nil
	})
}

// checkNoHeaderAdds: no part of the config adds, appends or overwrites an
// x-keygate-* or record header itself (request_headers_to_add,
// header_mutation appends, response_headers_to_add, ...).
func checkNoHeaderAdds(s *setup) error {
	return s.visit(func(m proto.Message) error {
		if hv, ok := m.(*corev3.HeaderValue); ok && isKeygateOwned(hv.GetKey()) {
			return fmt.Errorf("the config itself sets %s: %q", hv.GetKey(), hv.GetValue())
		}
		return nil
	})
}

// checkNoServiceOverride: no route asks another authorization service,
// with its own timeout and failure handling.
func checkNoServiceOverride(s *setup) error {
	for _, cfg := range s.perFilterConfigs() {
		pr, err := s.authzPerRoute(cfg)
		if err != nil {
			return err
		}
		if pr.GetCheckSettings().GetServiceOverride() != nil {
			return errors.New("check_settings overrides the authorization service on a route")
		}
	}
	return nil
}

// documentedTimeouts reads the bounds the documentation gives the
// ext_authz timeout: at most what docs/deploy.md says envoy.yaml uses, and
// above keygate's --lookup-timeout default.
var documentedTimeouts = sync.OnceValues(func() ([2]time.Duration, error) {
	var bounds [2]time.Duration
	text, err := docs.Text("..")
	if err != nil {
		return bounds, err
	}
	text = collapseSpace(text)
	for i, re := range []*regexp.Regexp{
		regexp.MustCompile("`--lookup-timeout` \\((\\d+ms) — keep it under Envoy's ext_authz timeout"),
		regexp.MustCompile("`status_on_error: 503`, a ([0-9.]+s) timeout"),
	} {
		m := re.FindStringSubmatch(text)
		if m == nil {
			return bounds, fmt.Errorf("the documentation no longer matches %q", re)
		}
		if bounds[i], err = time.ParseDuration(m[1]); err != nil {
			return bounds, err
		}
	}
	return bounds, nil
})

func checkDocumentedTimeout(s *setup) error {
	b, err := documentedTimeouts()
	if err != nil {
		return err
	}
	if t := checkTimeout(s); t <= b[0] || t > b[1] {
		return fmt.Errorf("ext_authz timeout %v, want above --lookup-timeout %v (so keygate answers 503 itself) and at most the documented %v", t, b[0], b[1])
	}
	return nil
}
