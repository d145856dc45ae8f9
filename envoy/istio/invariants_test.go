package istio

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
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/keygate/keygate/internal/docs"

	// Resolves the original IP detection extension a mutant adds.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/http/original_ip_detection/xff/v3"
)

// The invariants a user of the Istio files relies on, as for the Envoy
// bootstraps (envoy/invariants_test.go): which address keygate judges,
// that only keygate sets its headers, and how long the mesh waits for it.
// Each quotes the sentence it keeps (istioInvariantDocs) and has mutants
// (invariants_mutants_test.go). Failing closed with 503 and the exact
// /healthz exemption are existing checks; the mutant tables exercise them
// too.
var istioInvariants = []check{
	{"the mesh trusts no forwarding hops", checkMeshHops},
	{"nothing but keygate sets its headers", checkNoKeygateHeaderSets},
	{"provider timeouts within the documented bounds", checkProviderTimeouts},
}

// istioInvariantDocs quotes, for each invariant and each existing check a
// mutant table exercises, the sentence of README.md or docs/ it protects.
var istioInvariantDocs = map[string]string{
	"the mesh trusts no forwarding hops":             "in gRPC mode, the source address Envoy reports (configure Envoy's `xff_num_trusted_hops` for proxies in front of it)",
	"nothing but keygate sets its headers":           "dropping client-sent `x-keygate-key-id`, `-tenant`, `-scopes`, `-reason` and `x-plan` on every request, `/healthz` included",
	"provider timeouts within the documented bounds": "`--lookup-timeout` (150ms — keep it under Envoy's ext_authz timeout)",
	"extension providers point at the Service":       "adding the `keygate` (gRPC) and `keygate-http` extension providers (0.2 s timeout, fail closed, 503 on error)",
	"authorization policy sends requests to keygate": "sending every request except exactly `/healthz`",
}

// isKeygateOwned reports whether name (any case) is a header only keygate
// may set: x-keygate-* and the example record header names.
func isKeygateOwned(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "x-keygate-") || slices.Contains(recordHeaders, n)
}

// checkMeshHops: no gateway trusts X-Forwarded-For hops or PROXY headers,
// and the EnvoyFilter's connection manager merges touch no address setting.
func checkMeshHops(b *bundle) error {
	var errs []error
	if t := b.mesh.GetDefaultConfig().GetGatewayTopology(); t != nil {
		if n := t.GetNumTrustedProxies(); n != 0 {
			errs = append(errs, fmt.Errorf("defaultConfig.gatewayTopology.numTrustedProxies %d: gateways take the client address from X-Forwarded-For", n))
		}
		if t.GetProxyProtocol() != nil {
			errs = append(errs, errors.New("defaultConfig.gatewayTopology.proxyProtocol: gateways take the client address from a PROXY header"))
		}
	}
	for _, ctx := range stripContexts {
		for _, p := range b.patchesFor(networkingv1alpha3.EnvoyFilter_NETWORK_FILTER, ctx) {
			var f listenerv3.Filter
			if err := decodeValue(p.GetPatch().GetValue(), &f); err != nil {
				return fmt.Errorf("%v: %w", ctx, err)
			}
			hcm, err := unpackHCM(f.GetTypedConfig())
			if err != nil {
				return fmt.Errorf("%v: %w", ctx, err)
			}
			if hcm.GetUseRemoteAddress() != nil || hcm.GetXffNumTrustedHops() != 0 ||
				len(hcm.GetOriginalIpDetectionExtensions()) > 0 || hcm.GetSkipXffAppend() {
				errs = append(errs, fmt.Errorf("%v: the connection manager merge sets use_remote_address, xff_num_trusted_hops, original_ip_detection_extensions or skip_xff_append: Istio's own address handling must stand", ctx))
			}
		}
	}
	return errors.Join(errs...)
}

func unpackHCM(a *anypb.Any) (*hcmv3.HttpConnectionManager, error) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, err
	}
	hcm, ok := m.(*hcmv3.HttpConnectionManager)
	if !ok {
		return nil, fmt.Errorf("typed_config is %s, want an HttpConnectionManager", a.GetTypeUrl())
	}
	return hcm, nil
}

// checkNoKeygateHeaderSets: no EnvoyFilter patch adds, appends or
// overwrites an x-keygate-* or record header; the strip filter only
// removes; the HTTP provider adds none to the check request.
func checkNoKeygateHeaderSets(b *bundle) error {
	var errs []error
	for _, p := range b.strip.GetConfigPatches() {
		var m proto.Message = &listenerv3.Filter{}
		if p.GetApplyTo() == networkingv1alpha3.EnvoyFilter_HTTP_FILTER {
			m = &hcmv3.HttpFilter{}
		}
		if err := decodeValue(p.GetPatch().GetValue(), m); err != nil {
			return err
		}
		err := walkMessages(m.ProtoReflect(), func(m proto.Message) error {
			switch v := m.(type) {
			case *corev3.HeaderValue:
				if isKeygateOwned(v.GetKey()) {
					return fmt.Errorf("%v patch sets %s: %q", p.GetMatch().GetContext(), v.GetKey(), v.GetValue())
				}
			case *headermutationv3.Mutations:
				for _, rm := range v.GetRequestMutations() {
					if _, ok := rm.GetAction().(*mutationrulesv3.HeaderMutation_Remove); ok {
						continue
					}
					if h := rm.GetAppend().GetHeader(); isKeygateOwned(h.GetKey()) {
						return fmt.Errorf("%v strip filter sets %s: %q", p.GetMatch().GetContext(), h.GetKey(), h.GetValue())
					}
					return fmt.Errorf("%v strip filter does more than remove: %v", p.GetMatch().GetContext(), rm)
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range b.mesh.GetExtensionProviders() {
		for h := range p.GetEnvoyExtAuthzHttp().GetIncludeAdditionalHeadersInCheck() {
			if isKeygateOwned(h) {
				errs = append(errs, fmt.Errorf("provider %s: includeAdditionalHeadersInCheck sets %s", p.GetName(), h))
			}
		}
	}
	return errors.Join(errs...)
}

// walkMessages calls fn for m and every message below it, Anys unpacked.
func walkMessages(m protoreflect.Message, fn func(proto.Message) error) error {
	if err := fn(m.Interface()); err != nil {
		return err
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return err
		}
		return walkMessages(inner.ProtoReflect(), fn)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = walkMessages(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = walkMessages(mv.Message(), fn)
				return err == nil
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			err = walkMessages(v.Message(), fn)
		}
		return err == nil
	})
	return err
}

// documentedBounds reads keygate's --lookup-timeout default (README) and
// the documented provider timeout (docs/deploy.md), in that order.
var documentedBounds = sync.OnceValues(func() ([2]time.Duration, error) {
	var out [2]time.Duration
	text, err := docs.Text("../..")
	if err != nil {
		return out, err
	}
	text = collapseSpace(text)
	for i, re := range []*regexp.Regexp{
		regexp.MustCompile("`--lookup-timeout` \\((\\d+ms) — keep it under Envoy's ext_authz timeout"),
		regexp.MustCompile(`extension providers \(([0-9.]+) s timeout, fail closed, 503 on error\)`),
	} {
		m := re.FindStringSubmatch(text)
		if m == nil {
			return out, fmt.Errorf("the documentation no longer matches %q", re)
		}
		v := m[1]
		if !strings.HasSuffix(v, "ms") {
			v += "s"
		}
		if out[i], err = time.ParseDuration(v); err != nil {
			return out, err
		}
	}
	return out, nil
})

// checkProviderTimeouts: each provider waits at most the documented time,
// and longer than keygate's own store lookup, so a slow store is keygate's
// 503 answer, not the mesh's timeout.
func checkProviderTimeouts(b *bundle) error {
	bounds, err := documentedBounds()
	if err != nil {
		return err
	}
	defLookup, max := bounds[0], bounds[1]
	c, err := b.container()
	if err != nil {
		return err
	}
	lookup, err := durationFlag(c.Args, "lookup-timeout", defLookup)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range b.mesh.GetExtensionProviders() {
		var t time.Duration
		switch {
		case p.GetEnvoyExtAuthzGrpc() != nil:
			t = p.GetEnvoyExtAuthzGrpc().GetTimeout().AsDuration()
		case p.GetEnvoyExtAuthzHttp() != nil:
			t = p.GetEnvoyExtAuthzHttp().GetTimeout().AsDuration()
		}
		if t <= lookup || t > max {
			errs = append(errs, fmt.Errorf("provider %s: timeout %v, want above keygate's --lookup-timeout %v and at most the documented %v", p.GetName(), t, lookup, max))
		}
	}
	return errors.Join(errs...)
}
