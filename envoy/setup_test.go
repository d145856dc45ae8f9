package envoy

import (
	"errors"
	"fmt"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// setup is the part of a bootstrap keygate depends on, unpacked from the
// Anys that hold it.
type setup struct {
	bootstrap   *bootstrapv3.Bootstrap
	hcm         *hcmv3.HttpConnectionManager
	httpFilters []*hcmv3.HttpFilter // in order
	filters     []proto.Message     // httpFilters' typed_configs, in order
	extAuthz    *extauthzv3.ExtAuthz
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
		s.httpFilters, s.filters = append(s.httpFilters, f), append(s.filters, m)
	}
	s.extAuthz, s.extAuthzFilter, err = filterOf[*extauthzv3.ExtAuthz](s)
	if err != nil {
		return nil, err
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

// filterOf returns the only http filter whose typed_config is a T, and its
// http_filters entry.
func filterOf[T proto.Message](s *setup) (T, *hcmv3.HttpFilter, error) {
	var (
		found T
		entry *hcmv3.HttpFilter
	)
	for i, m := range s.filters {
		if t, ok := m.(T); ok {
			if entry != nil {
				return found, nil, fmt.Errorf("more than one %T filter", found)
			}
			found, entry = t, s.httpFilters[i]
		}
	}
	if entry == nil {
		return found, nil, fmt.Errorf("no %T filter", found)
	}
	return found, entry, nil
}

// perFilterConfigs returns every typed_per_filter_config map of the route
// config: its own, the virtual host's and each route's.
func (s *setup) perFilterConfigs() []map[string]*anypb.Any {
	cfgs := []map[string]*anypb.Any{
		s.hcm.GetRouteConfig().GetTypedPerFilterConfig(),
		s.vhost.GetTypedPerFilterConfig(),
	}
	for _, r := range s.routes {
		cfgs = append(cfgs, r.GetTypedPerFilterConfig())
	}
	return cfgs
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

// cluster returns the named cluster.
func (s *setup) cluster(name string) (*clusterv3.Cluster, error) {
	c, ok := s.clusters[name]
	if !ok {
		return nil, fmt.Errorf("no cluster %q", name)
	}
	return c, nil
}

// speaksHTTP2 returns nil if Envoy talks HTTP/2 to the named cluster, as
// gRPC needs. Without it Envoy would speak HTTP/1.1 and every call would fail.
func (s *setup) speaksHTTP2(name string) error {
	c, err := s.cluster(name)
	if err != nil {
		return err
	}
	a, ok := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]
	if !ok {
		return fmt.Errorf("cluster %s has no %s: Envoy would speak HTTP/1.1 to a gRPC server", name, httpOptionsKey)
	}
	o, err := unpack[*upstreamhttpv3.HttpProtocolOptions](a)
	if err != nil {
		return err
	}
	if o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		return fmt.Errorf("cluster %s: explicit_http_config is not http2_protocol_options", name)
	}
	return nil
}

// endpoint returns the host and port of the named cluster's only endpoint.
func (s *setup) endpoint(name string) (string, uint32, error) {
	c, err := s.cluster(name)
	if err != nil {
		return "", 0, err
	}
	eps := c.GetLoadAssignment().GetEndpoints()
	if len(eps) != 1 || len(eps[0].GetLbEndpoints()) != 1 {
		return "", 0, fmt.Errorf("cluster %s: want one endpoint", name)
	}
	a := eps[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	return a.GetAddress(), a.GetPortValue(), nil
}

// headerAllowed reports whether l matches header name. Only the matcher
// kinds the configs use are understood; others are an error so the test is
// updated with the config.
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

// headerCase is a header name and whether a header list must match it.
type headerCase struct {
	header string
	want   bool
}

// checkHeaders returns an error naming the first case l gets wrong; what
// says what the list is for.
func checkHeaders(l *matcherv3.ListStringMatcher, what string, cases []headerCase) error {
	if l == nil {
		return fmt.Errorf("%s: list unset", what)
	}
	for _, tc := range cases {
		got, err := headerAllowed(l, tc.header)
		if err != nil {
			return err
		}
		if got != tc.want {
			return fmt.Errorf("header %q %s: %v, want %v", tc.header, what, got, tc.want)
		}
	}
	return nil
}
