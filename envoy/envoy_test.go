package envoy

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// The imports above also register every type named by an "@type" in
// envoy.yaml in protoregistry.GlobalTypes, which protojson and
// anypb.UnmarshalNew use to resolve Any. A new extension in envoy.yaml needs
// its package imported here, or loading fails with "unable to resolve".

const (
	configFile        = "envoy.yaml"
	keygateCluster    = "keygate"
	upstreamCluster   = "upstream"
	scopesKey         = "keygate.scopes"
	maxCheckTimeout   = 250 * time.Millisecond
	httpOptionsKey    = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	envoyDefaultLimit = 1024 // Envoy's default circuit breaker thresholds
)

// load parses an Envoy bootstrap written in YAML as strictly as Envoy does:
// unknown fields, bad enum values and unresolvable "@type"s are errors, and
// every message, including those packed in Any, must pass its validation
// rules.
func load(doc []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("protojson: %w", err)
	}
	if err := validate(&b); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return &b, nil
}

// validate runs m's validation rules, then those of every message packed in
// an Any below it. The generated ValidateAll treats an Any as opaque bytes,
// so on its own it would accept, say, an ExtAuthz with no grpc_service.
func validate(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return err
		}
	}
	return forEachAny(m.ProtoReflect(), func(a *anypb.Any) error {
		inner, err := a.UnmarshalNew()
		if err == nil {
			err = validate(inner)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
		}
		return nil
	})
}

// forEachAny calls fn for each Any in m's set fields, at any depth, without
// looking inside the Anys themselves.
func forEachAny(m protoreflect.Message, fn func(*anypb.Any) error) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		return fn(a)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = forEachAny(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = forEachAny(mv.Message(), fn)
				return err == nil
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			err = forEachAny(v.Message(), fn)
		}
		return err == nil
	})
	return err
}

// unpack returns the message in a, which must be of type T.
func unpack[T proto.Message](a *anypb.Any) (T, error) {
	var zero T
	m, err := a.UnmarshalNew()
	if err != nil {
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return zero, fmt.Errorf("got %s, want %T", a.GetTypeUrl(), zero)
	}
	return t, nil
}

// setup is the part of the bootstrap keygate depends on, unpacked from the
// Anys that hold it.
type setup struct {
	bootstrap *bootstrapv3.Bootstrap
	hcm       *hcmv3.HttpConnectionManager
	filters   []proto.Message // http_filters' typed_configs, in order
	extAuthz  *extauthzv3.ExtAuthz
	// extAuthzFilter is the http_filters entry holding extAuthz.
	extAuthzFilter *hcmv3.HttpFilter
	vhost          *routev3.VirtualHost // the only one
	routes         []*routev3.Route     // of vhost
	clusters       map[string]*clusterv3.Cluster
}

func newSetup(b *bootstrapv3.Bootstrap) (*setup, error) {
	s := &setup{bootstrap: b, clusters: map[string]*clusterv3.Cluster{}}
	listeners := b.GetStaticResources().GetListeners()
	if len(listeners) != 1 || len(listeners[0].GetFilterChains()) != 1 ||
		len(listeners[0].GetFilterChains()[0].GetFilters()) != 1 {
		return nil, errors.New("want one listener with one filter chain of one filter")
	}
	hcm, err := unpack[*hcmv3.HttpConnectionManager](
		listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
	if err != nil {
		return nil, fmt.Errorf("network filter: %w", err)
	}
	s.hcm = hcm
	for _, f := range hcm.GetHttpFilters() {
		m, err := f.GetTypedConfig().UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("http filter %s: %w", f.GetName(), err)
		}
		s.filters = append(s.filters, m)
		if ea, ok := m.(*extauthzv3.ExtAuthz); ok {
			if s.extAuthz != nil {
				return nil, errors.New("more than one ext_authz filter")
			}
			s.extAuthz, s.extAuthzFilter = ea, f
		}
	}
	if s.extAuthz == nil {
		return nil, errors.New("no ext_authz filter")
	}
	vhosts := hcm.GetRouteConfig().GetVirtualHosts()
	if len(vhosts) != 1 || len(vhosts[0].GetRoutes()) == 0 {
		return nil, errors.New("want one inline virtual host with routes")
	}
	s.vhost, s.routes = vhosts[0], vhosts[0].GetRoutes()
	for _, c := range b.GetStaticResources().GetClusters() {
		s.clusters[c.GetName()] = c
	}
	return s, nil
}

// authzPerRoute returns the ext_authz entry of a typed_per_filter_config, or
// nil if it has none. Envoy finds the entry by the http filter's name, so a
// renamed filter would silently drop every per-route setting.
func (s *setup) authzPerRoute(cfg map[string]*anypb.Any) (*extauthzv3.ExtAuthzPerRoute, error) {
	a, ok := cfg[s.extAuthzFilter.GetName()]
	if !ok {
		return nil, nil
	}
	return unpack[*extauthzv3.ExtAuthzPerRoute](a)
}

// findRoute returns the route whose prefix or exact path is p.
func (s *setup) findRoute(p string) (*routev3.Route, error) {
	for _, r := range s.routes {
		if m := r.GetMatch(); m.GetPrefix() == p || m.GetPath() == p {
			return r, nil
		}
	}
	return nil, fmt.Errorf("no route for %s", p)
}

// headerAllowed reports whether the ext_authz allowed_headers list lets
// header name through to keygate. Only the matcher kinds envoy.yaml uses are
// understood; others are an error so the test is updated with the config.
func headerAllowed(l *matcherv3.ListStringMatcher, name string) (bool, error) {
	for _, p := range l.GetPatterns() {
		n, exact, prefix := name, p.GetExact(), p.GetPrefix()
		if p.GetIgnoreCase() {
			n, exact, prefix = strings.ToLower(n), strings.ToLower(exact), strings.ToLower(prefix)
		}
		switch p.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			if n == exact {
				return true, nil
			}
		case *matcherv3.StringMatcher_Prefix:
			if strings.HasPrefix(n, prefix) {
				return true, nil
			}
		default:
			return false, fmt.Errorf("test does not understand matcher %v", p)
		}
	}
	return false, nil
}

// policies are what a keygate reviewer checks in envoy.yaml. Each returns
// nil if the setup follows it.
var policies = []struct {
	name  string
	check func(*setup) error
}{
	{"ext_authz runs before router", func(s *setup) error {
		authz, router := -1, -1
		for i, f := range s.filters {
			switch f.(type) {
			case *extauthzv3.ExtAuthz:
				authz = i
			case *routerv3.Router:
				router = i
			}
		}
		if authz < 0 || router != len(s.filters)-1 || authz > router {
			return fmt.Errorf("ext_authz at %d, router at %d of %d filters", authz, router, len(s.filters))
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
	{"ext_authz calls keygate over gRPC", func(s *setup) error {
		if got := s.extAuthz.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != keygateCluster {
			return fmt.Errorf("envoy_grpc cluster %q, want %q", got, keygateCluster)
		}
		return nil
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
	{"ext_authz sends raw headers", func(s *setup) error {
		if !s.extAuthz.GetEncodeRawHeaders() {
			return errors.New("encode_raw_headers is false: keygate gets sanitized, merged headers")
		}
		return nil
	}},
	{"ext_authz timeout", func(s *setup) error {
		t := s.extAuthz.GetGrpcService().GetTimeout()
		if t == nil || t.AsDuration() <= 0 || t.AsDuration() > maxCheckTimeout {
			return fmt.Errorf("grpc_service timeout %v, want set and at most %v", t.AsDuration(), maxCheckTimeout)
		}
		return nil
	}},
	{"ext_authz transport V3", func(s *setup) error {
		if got := s.extAuthz.GetTransportApiVersion(); got != corev3.ApiVersion_V3 {
			return fmt.Errorf("transport_api_version %v, want V3", got)
		}
		return nil
	}},
	{"ext_authz omits peer certificate", func(s *setup) error {
		if s.extAuthz.GetIncludePeerCertificate() {
			return errors.New("include_peer_certificate is true")
		}
		return nil
	}},
	{"ext_authz allowed_headers", func(s *setup) error {
		l := s.extAuthz.GetAllowedHeaders()
		if l == nil {
			return errors.New("allowed_headers unset: every header, cookies included, goes to keygate")
		}
		for _, tc := range []struct {
			header string
			want   bool
		}{
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
		} {
			got, err := headerAllowed(l, tc.header)
			if err != nil {
				return err
			}
			if got != tc.want {
				return fmt.Errorf("header %q sent to keygate: %v, want %v", tc.header, got, tc.want)
			}
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
	{"keygate cluster speaks HTTP/2", func(s *setup) error {
		c, ok := s.clusters[keygateCluster]
		if !ok {
			return fmt.Errorf("no cluster %q", keygateCluster)
		}
		a, ok := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]
		if !ok {
			return fmt.Errorf("no %s: Envoy would speak HTTP/1.1 to a gRPC server", httpOptionsKey)
		}
		o, err := unpack[*upstreamhttpv3.HttpProtocolOptions](a)
		if err != nil {
			return err
		}
		if o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
			return errors.New("explicit_http_config is not http2_protocol_options")
		}
		return nil
	}},
	{"keygate cluster limits", func(s *setup) error {
		c := s.clusters[keygateCluster]
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
		if _, ok := s.clusters[upstreamCluster]; !ok {
			return fmt.Errorf("no cluster %q", upstreamCluster)
		}
		return nil
	}},
	{"admin on loopback", func(s *setup) error {
		if got := s.bootstrap.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); got != "127.0.0.1" {
			return fmt.Errorf("admin address %q, want 127.0.0.1", got)
		}
		return nil
	}},
}

// check loads doc and returns every way it is broken or breaks a policy.
func check(doc []byte) error {
	b, err := load(doc)
	if err != nil {
		return err
	}
	s, err := newSetup(b)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range policies {
		if err := p.check(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

func readConfig(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestConfig(t *testing.T) {
	b, err := load(readConfig(t))
	if err != nil {
		t.Fatalf("%s does not load: %v", configFile, err)
	}
	s, err := newSetup(b)
	if err != nil {
		t.Fatalf("%s: %v", configFile, err)
	}
	for _, p := range policies {
		t.Run(p.name, func(t *testing.T) {
			if err := p.check(s); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestBrokenConfigIsRejected edits envoy.yaml in ways that must be caught, so
// a passing TestConfig means something.
func TestBrokenConfigIsRejected(t *testing.T) {
	doc := string(readConfig(t))
	for _, tc := range []struct {
		name     string
		old, new string
		wantErr  string // in the error from check
	}{
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
		{"slow timeout", " timeout: 0.25s", " timeout: 2s", "ext_authz timeout"},
		{"too many headers sent", "- prefix: x-keygate-", "- prefix: x-", "x-forwarded-for"},
		{"scope key typo", "keygate.scopes:", "keygate.scope:", "keygate.scopes"},
		{"health prefix", "path: /healthz", "prefix: /healthz", "only /healthz skips keygate"},
		{"no protocol options", httpOptionsKey + ":", "HttpProtocolOptions:", "HTTP/1.1"},
		{"downstream protocol to keygate", "explicit_http_config:", "use_downstream_protocol_config:", "http2_protocol_options"},
		{"ext_authz filter renamed", "- name: envoy.filters.http.ext_authz\n", "- name: keygate\n", "keygate.scopes"},
		{"no path normalization", "normalize_path: true", "normalize_path: false", "normalize_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := strings.Count(doc, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want once", tc.old, n, configFile)
			}
			err := check([]byte(strings.Replace(doc, tc.old, tc.new, 1)))
			if err == nil {
				t.Fatalf("replacing %q with %q: config accepted", tc.old, tc.new)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error does not mention %q: %v", tc.wantErr, err)
			}
			t.Logf("rejected: %v", err)
		})
	}
}
