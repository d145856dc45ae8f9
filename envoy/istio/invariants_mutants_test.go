package istio

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"

	"github.com/keygate/keygate/internal/docs"
)

// An istioMutant breaks (or, with wantErr "", keeps) one invariant or
// existing check.
type istioMutant struct {
	name    string
	mutate  func(*testing.T, *bundle)
	wantErr string
}

var istioMutants = map[string][]istioMutant{
	"the mesh trusts no forwarding hops": {
		{"gateways trust a hop", func(t *testing.T, b *bundle) {
			b.mesh.DefaultConfig = &meshv1alpha1.ProxyConfig{GatewayTopology: &meshv1alpha1.Topology{NumTrustedProxies: 1}}
		}, "numTrustedProxies 1"},
		{"gateways read PROXY headers", func(t *testing.T, b *bundle) {
			b.mesh.DefaultConfig = &meshv1alpha1.ProxyConfig{GatewayTopology: &meshv1alpha1.Topology{ProxyProtocol: &meshv1alpha1.Topology_ProxyProtocolConfiguration{}}}
		}, "proxyProtocol"},
		{"merge trusts a hop", func(t *testing.T, b *bundle) {
			mergeField(t, b, networkingv1alpha3.EnvoyFilter_GATEWAY, "xff_num_trusted_hops", structpb.NewNumberValue(1))
		}, "GATEWAY: the connection manager merge sets"},
		{"merge drops the remote address", func(t *testing.T, b *bundle) {
			mergeField(t, b, networkingv1alpha3.EnvoyFilter_SIDECAR_INBOUND, "use_remote_address", structpb.NewBoolValue(false))
		}, "SIDECAR_INBOUND: the connection manager merge sets"},
		{"merge reads the address from XFF", func(t *testing.T, b *bundle) {
			ext, err := structpb.NewValue([]any{map[string]any{
				"name":         "envoy.extensions.http.original_ip_detection.xff",
				"typed_config": map[string]any{"@type": "type.googleapis.com/envoy.extensions.http.original_ip_detection.xff.v3.XffConfig", "xff_num_trusted_hops": 1},
			}})
			if err != nil {
				t.Fatal(err)
			}
			mergeField(t, b, networkingv1alpha3.EnvoyFilter_GATEWAY, "original_ip_detection_extensions", ext)
		}, "original_ip_detection_extensions"},
		{"no XFF append", func(t *testing.T, b *bundle) {
			mergeField(t, b, networkingv1alpha3.EnvoyFilter_GATEWAY, "skip_xff_append", structpb.NewBoolValue(true))
		}, "skip_xff_append"},
		{"merge names the server", func(t *testing.T, b *bundle) {
			mergeField(t, b, networkingv1alpha3.EnvoyFilter_GATEWAY, "server_name", structpb.NewStringValue("api"))
		}, ""},
		{"gateway topology without trust", func(t *testing.T, b *bundle) {
			b.mesh.DefaultConfig = &meshv1alpha1.ProxyConfig{GatewayTopology: &meshv1alpha1.Topology{}}
		}, ""},
	},
	"nothing but keygate sets its headers": {
		{"strip filter appends tenant", func(t *testing.T, b *bundle) {
			appendStripMutation(t, b, "x-keygate-tenant")
		}, "sets x-keygate-tenant"},
		{"strip filter appends record header", func(t *testing.T, b *bundle) {
			appendStripMutation(t, b, "X-Plan")
		}, "sets X-Plan"},
		{"merge adds a route header", func(t *testing.T, b *bundle) {
			rc, err := structpb.NewValue(map[string]any{"request_headers_to_add": []any{
				map[string]any{"header": map[string]any{"key": "x-keygate-scopes", "value": "admin"}}}})
			if err != nil {
				t.Fatal(err)
			}
			mergeField(t, b, networkingv1alpha3.EnvoyFilter_SIDECAR_INBOUND, "route_config", rc)
		}, "sets x-keygate-scopes"},
		{"check request carries an identity", func(t *testing.T, b *bundle) {
			httpProvider(t, b).IncludeAdditionalHeadersInCheck = map[string]string{"x-keygate-key-id": "kg_x"}
		}, "includeAdditionalHeadersInCheck sets x-keygate-key-id"},
		{"strip filter appends another header", func(t *testing.T, b *bundle) {
			appendStripMutation(t, b, "x-request-start")
		}, "does more than remove"},
		{"check request carries a tag", func(t *testing.T, b *bundle) {
			httpProvider(t, b).IncludeAdditionalHeadersInCheck = map[string]string{"x-mesh": "prod"}
		}, ""},
	},
	"provider timeouts within the documented bounds": {
		{"gRPC provider slower than documented", func(t *testing.T, b *bundle) {
			grpcProvider(t, b).Timeout = durationpb.New(250e6)
		}, "provider keygate: timeout 250ms"},
		{"HTTP provider no slower than the lookup", func(t *testing.T, b *bundle) {
			httpProvider(t, b).Timeout = durationpb.New(150e6)
		}, "provider keygate-http: timeout 150ms, want above keygate's --lookup-timeout 150ms"},
		{"lookup slower than the provider", func(t *testing.T, b *bundle) {
			c, _ := b.container()
			c.Args = append(c.Args, "--lookup-timeout=250ms")
		}, "--lookup-timeout 250ms"},
		{"faster provider", func(t *testing.T, b *bundle) {
			grpcProvider(t, b).Timeout = durationpb.New(180e6)
		}, ""},
	},
	"extension providers point at the Service": {
		{"gRPC provider fails open", func(t *testing.T, b *bundle) { grpcProvider(t, b).FailOpen = true }, "provider keygate: failOpen"},
		{"HTTP provider fails open", func(t *testing.T, b *bundle) { httpProvider(t, b).FailOpen = true }, "provider keygate-http: failOpen"},
		{"gRPC provider Istio's 403", func(t *testing.T, b *bundle) { grpcProvider(t, b).StatusOnError = "" }, `statusOnError ""`},
		{"HTTP provider 403", func(t *testing.T, b *bundle) { httpProvider(t, b).StatusOnError = "403" }, `statusOnError "403"`},
	},
	"authorization policy sends requests to keygate": {
		{"health prefix", func(t *testing.T, b *bundle) { setNotPaths(b, "/healthz*") }, "want only notPaths"},
		{"health in any case", func(t *testing.T, b *bundle) { setNotPaths(b, "/healthz", "/HEALTHZ") }, "want only notPaths"},
		{"health suffix", func(t *testing.T, b *bundle) { setNotPaths(b, "*/healthz") }, "want only notPaths"},
		{"another exemption", func(t *testing.T, b *bundle) { setNotPaths(b, "/healthz", "/public") }, "want only notPaths"},
		{"checked on one host only", func(t *testing.T, b *bundle) {
			b.policy.GetRules()[0].GetTo()[0].GetOperation().Hosts = []string{"api.example.com"}
		}, "want only notPaths"},
	},
}

// TestIstioInvariants checks the Istio files against the invariants.
func TestIstioInvariants(t *testing.T) {
	b, err := loadBundle(readFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range istioInvariants {
		t.Run(c.name, func(t *testing.T) {
			if err := c.fn(b); err != nil {
				t.Errorf("%v\nthe documentation promises: %s", err, istioInvariantDocs[c.name])
			}
		})
	}
}

// TestIstioInvariantMutants proves each invariant, and the existing checks
// for failing closed and the exemption, bite.
func TestIstioInvariantMutants(t *testing.T) {
	fs := readFiles(t)
	checks := slices.Concat(istioInvariants, allChecks)
	for name, muts := range istioMutants {
		i := slices.IndexFunc(checks, func(c check) bool { return c.name == name })
		if i < 0 {
			t.Fatalf("no check %q", name)
		}
		for _, m := range muts {
			t.Run(name+"/"+m.name, func(t *testing.T) {
				b, err := loadBundle(fs)
				if err != nil {
					t.Fatal(err)
				}
				m.mutate(t, b)
				err = checks[i].fn(b)
				switch {
				case m.wantErr == "" && err != nil:
					t.Fatalf("harmless edit rejected: %v", err)
				case m.wantErr == "":
				case err == nil:
					t.Fatal("mutant accepted")
				case !strings.Contains(err.Error(), m.wantErr):
					t.Fatalf("error does not mention %q: %v", m.wantErr, err)
				default:
					t.Logf("rejected: %v", err)
				}
			})
		}
	}
	for _, c := range istioInvariants {
		if !slices.ContainsFunc(istioMutants[c.name], func(m istioMutant) bool { return m.wantErr != "" }) {
			t.Errorf("invariant %q has no mutant it must reject", c.name)
		}
	}
}

// TestIstioInvariantsCiteDocs requires each quoted sentence in the docs.
func TestIstioInvariantsCiteDocs(t *testing.T) {
	text, err := docs.Text("../..")
	if err != nil {
		t.Fatal(err)
	}
	all := collapseSpace(text)
	for name := range istioMutants {
		if _, ok := istioInvariantDocs[name]; !ok {
			t.Errorf("%q quotes no documentation", name)
		}
	}
	for name, s := range istioInvariantDocs {
		if !strings.Contains(all, collapseSpace(s)) {
			t.Errorf("%q: the documentation (README.md, docs/) does not say %q", name, s)
		}
	}
}

func grpcProvider(t *testing.T, b *bundle) *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider {
	t.Helper()
	for _, p := range b.mesh.GetExtensionProviders() {
		if g := p.GetEnvoyExtAuthzGrpc(); g != nil {
			return g
		}
	}
	t.Fatal("no gRPC provider")
	return nil
}

func httpProvider(t *testing.T, b *bundle) *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider {
	t.Helper()
	for _, p := range b.mesh.GetExtensionProviders() {
		if h := p.GetEnvoyExtAuthzHttp(); h != nil {
			return h
		}
	}
	t.Fatal("no HTTP provider")
	return nil
}

// mergeField sets a field of the connection manager fragment the
// NETWORK_FILTER patch of ctx merges.
func mergeField(t *testing.T, b *bundle, ctx patchContext, field string, v *structpb.Value) {
	t.Helper()
	ps := b.patchesFor(networkingv1alpha3.EnvoyFilter_NETWORK_FILTER, ctx)
	if len(ps) != 1 {
		t.Fatalf("%d NETWORK_FILTER patches for %v", len(ps), ctx)
	}
	ps[0].GetPatch().GetValue().GetFields()["typed_config"].GetStructValue().Fields[field] = v
}

// appendStripMutation adds an append of header to the SIDECAR_INBOUND
// strip filter's request mutations.
func appendStripMutation(t *testing.T, b *bundle, header string) {
	t.Helper()
	ps := b.patchesFor(networkingv1alpha3.EnvoyFilter_HTTP_FILTER, networkingv1alpha3.EnvoyFilter_SIDECAR_INBOUND)
	if len(ps) != 1 {
		t.Fatalf("%d strip patches", len(ps))
	}
	muts := ps[0].GetPatch().GetValue().GetFields()["typed_config"].GetStructValue().
		GetFields()["mutations"].GetStructValue().GetFields()["request_mutations"].GetListValue()
	v, err := structpb.NewValue(map[string]any{"append": map[string]any{"header": map[string]any{"key": header, "value": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	muts.Values = append(muts.Values, v)
}

func setNotPaths(b *bundle, paths ...string) {
	b.policy.GetRules()[0].GetTo()[0].Operation = &securityv1beta1.Operation{NotPaths: paths}
}
