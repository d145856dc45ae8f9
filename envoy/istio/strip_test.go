package istio

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

type (
	envoyFilterPatch = networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch
	patchContext     = networkingv1alpha3.EnvoyFilter_PatchContext
)

const (
	hcmFilterName      = "envoy.filters.network.http_connection_manager"
	extAuthzFilterName = "envoy.filters.http.ext_authz"
)

var (
	// identityHeaders are keygate's own headers: an upstream trusts them.
	identityHeaders = []string{"x-keygate-key-id", "x-keygate-tenant", "x-keygate-scopes", "x-keygate-reason"}
	// recordHeaders are the record header names the configs carry as their
	// example (keys ... --header x-plan=gold).
	recordHeaders = []string{"x-plan"}
	// stripContexts are where strip-headers.yaml must act: the sidecars of
	// protected workloads, and gateways labelled as protected.
	stripContexts = []patchContext{networkingv1alpha3.EnvoyFilter_SIDECAR_INBOUND, networkingv1alpha3.EnvoyFilter_GATEWAY}
)

// stripChecks cover strip-headers.yaml and the record header names it
// shares with keygate.yaml and mesh-config.yaml.
var stripChecks = []check{
	{"strip filter applies where the policy does", checkStripScope},
	{"client headers stripped before ext_authz on every request", checkStripPatches},
	{"header names with underscores rejected", checkUnderscorePatches},
	{"no other patches", func(b *bundle) error {
		if n, want := len(b.strip.GetConfigPatches()), 2*len(stripContexts); n != want {
			return fmt.Errorf("%d configPatches, want %d (a strip and an underscore patch per context): another patch could remove or reorder Istio's filters", n, want)
		}
		return nil
	}},
	{"record header names agree", checkRecordHeaders},
	{"no trusted proxies in the mesh", func(b *bundle) error {
		c, err := b.container()
		if err != nil {
			return err
		}
		if i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--trusted-proxies") }); i >= 0 {
			return fmt.Errorf("%s: a sidecar forwards X-Forwarded-For as any pod wrote it; trusting the pod network lets that pod choose its client address", c.Args[i])
		}
		return nil
	}},
}

// checkStripScope requires the EnvoyFilter to select the workloads the
// AuthorizationPolicy sends to keygate, from the same (root) namespace.
func checkStripScope(b *bundle) error {
	if b.stripMeta.Namespace != b.policyMeta.Namespace {
		return fmt.Errorf("EnvoyFilter in namespace %q, the policy in %q: they would apply to different workloads", b.stripMeta.Namespace, b.policyMeta.Namespace)
	}
	if len(b.strip.GetTargetRefs()) > 0 {
		return errors.New("targetRefs set: use workloadSelector, as the policy does")
	}
	if got, want := b.strip.GetWorkloadSelector().GetLabels(), b.policy.GetSelector().GetMatchLabels(); !maps.Equal(got, want) {
		return fmt.Errorf("workloadSelector %v, want the policy's selector %v", got, want)
	}
	return nil
}

// patchesFor returns the patches of kind applyTo in context ctx.
func (b *bundle) patchesFor(applyTo networkingv1alpha3.EnvoyFilter_ApplyTo, ctx patchContext) []*envoyFilterPatch {
	var out []*envoyFilterPatch
	for _, p := range b.strip.GetConfigPatches() {
		if p.GetApplyTo() == applyTo && p.GetMatch().GetContext() == ctx {
			out = append(out, p)
		}
	}
	return out
}

// onePatch returns the only patch of kind applyTo in ctx, and the name of
// the HTTP filter its match anchors on ("" if none). The match must select
// every HTTP connection manager of the context: no port, listener, filter
// chain or proxy version narrows it.
func (b *bundle) onePatch(applyTo networkingv1alpha3.EnvoyFilter_ApplyTo, ctx patchContext) (*envoyFilterPatch, string, error) {
	ps := b.patchesFor(applyTo, ctx)
	if len(ps) != 1 {
		return nil, "", fmt.Errorf("%d %v patches for context %v, want 1", len(ps), applyTo, ctx)
	}
	m := ps[0].GetMatch()
	l := proto.Clone(m.GetListener()).(*networkingv1alpha3.EnvoyFilter_ListenerMatch)
	fc := l.GetFilterChain()
	name, sub := fc.GetFilter().GetName(), fc.GetFilter().GetSubFilter().GetName()
	if name != hcmFilterName {
		return nil, "", fmt.Errorf("%v %v patch matches filter %q, want %s", ctx, applyTo, name, hcmFilterName)
	}
	if fc != nil {
		fc.Filter = nil
	}
	l.FilterChain = nil
	if proto.Size(l) != 0 || proto.Size(fc) != 0 || m.GetProxy() != nil {
		return nil, "", fmt.Errorf("%v %v patch match %v is narrower than every HTTP connection manager", ctx, applyTo, m)
	}
	return ps[0], sub, nil
}

// checkStripPatches requires, for each context, a header_mutation filter
// inserted before ext_authz that removes every identity and record header.
func checkStripPatches(b *bundle) error {
	for _, ctx := range stripContexts {
		p, sub, err := b.onePatch(networkingv1alpha3.EnvoyFilter_HTTP_FILTER, ctx)
		if err != nil {
			return err
		}
		switch op := p.GetPatch().GetOperation(); {
		case op == networkingv1alpha3.EnvoyFilter_Patch_INSERT_FIRST && sub == "":
		case op == networkingv1alpha3.EnvoyFilter_Patch_INSERT_BEFORE && sub == extAuthzFilterName:
		default:
			return fmt.Errorf("%v: operation %v (subFilter %q): the filter must run before %s, on paths it skips too (INSERT_FIRST)", ctx, op, sub, extAuthzFilterName)
		}
		removed, err := stripRemovals(p.GetPatch().GetValue())
		if err != nil {
			return fmt.Errorf("%v: %w", ctx, err)
		}
		for _, h := range slices.Concat(identityHeaders, recordHeaders) {
			if !slices.Contains(removed, h) {
				return fmt.Errorf("%v: header_mutation does not remove %s (removes %v)", ctx, h, removed)
			}
		}
	}
	return nil
}

// stripRemovals decodes a strip patch value strictly into Envoy's
// HttpFilter and its HeaderMutation, and returns the request headers it
// removes.
func stripRemovals(v *structpb.Struct) ([]string, error) {
	var f hcmv3.HttpFilter
	if err := decodeValue(v, &f); err != nil {
		return nil, err
	}
	if err := f.ValidateAll(); err != nil {
		return nil, err
	}
	if f.GetDisabled() || f.GetIsOptional() {
		return nil, errors.New("filter is disabled or optional")
	}
	m, err := f.GetTypedConfig().UnmarshalNew()
	if err != nil {
		return nil, err
	}
	hm, ok := m.(*headermutationv3.HeaderMutation)
	if !ok {
		return nil, fmt.Errorf("typed_config is %s, want a HeaderMutation", f.GetTypedConfig().GetTypeUrl())
	}
	if err := hm.ValidateAll(); err != nil {
		return nil, err
	}
	var removed []string
	for _, m := range hm.GetMutations().GetRequestMutations() {
		if r := m.GetRemove(); r != "" {
			removed = append(removed, r)
		}
	}
	return removed, nil
}

// decodeValue decodes an EnvoyFilter patch value into an Envoy proto, as
// istiod does: unknown fields and unknown "@type"s are errors.
func decodeValue(v *structpb.Struct, into proto.Message) error {
	js, err := protojson.Marshal(v)
	if err != nil {
		return err
	}
	if err := strictProto.Unmarshal(js, into); err != nil {
		return fmt.Errorf("patch value: %w", err)
	}
	return nil
}

// checkUnderscorePatches requires, for each context, a MERGE into the HTTP
// connection manager that rejects header names with underscores.
func checkUnderscorePatches(b *bundle) error {
	for _, ctx := range stripContexts {
		p, sub, err := b.onePatch(networkingv1alpha3.EnvoyFilter_NETWORK_FILTER, ctx)
		if err != nil {
			return err
		}
		if op := p.GetPatch().GetOperation(); op != networkingv1alpha3.EnvoyFilter_Patch_MERGE || sub != "" {
			return fmt.Errorf("%v: NETWORK_FILTER operation %v (subFilter %q), want MERGE into the connection manager", ctx, op, sub)
		}
		// A merge fragment, not a whole filter: decoded strictly, but not
		// validated (its name, stat_prefix and the rest come from Istio).
		var f listenerv3.Filter
		if err := decodeValue(p.GetPatch().GetValue(), &f); err != nil {
			return fmt.Errorf("%v: %w", ctx, err)
		}
		m, err := f.GetTypedConfig().UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%v: %w", ctx, err)
		}
		hcm, ok := m.(*hcmv3.HttpConnectionManager)
		if !ok {
			return fmt.Errorf("%v: typed_config is %s, want an HttpConnectionManager", ctx, f.GetTypedConfig().GetTypeUrl())
		}
		if got := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); got != corev3.HttpProtocolOptions_REJECT_REQUEST {
			return fmt.Errorf("%v: headers_with_underscores_action %v, want REJECT_REQUEST", ctx, got)
		}
	}
	return nil
}

// checkRecordHeaders requires one list of record header names in the
// places that must agree: what strip-headers.yaml removes (in each
// context), keygate's --strip-headers, and what the HTTP provider copies
// upstream.
func checkRecordHeaders(b *bundle) error {
	c, err := b.container()
	if err != nil {
		return err
	}
	var flagged []string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--strip-headers="); ok {
			flagged = append(flagged, strings.Split(v, ",")...)
		}
	}
	lists := map[string][]string{"keygate --strip-headers": flagged}
	for _, ctx := range stripContexts {
		if p, _, err := b.onePatch(networkingv1alpha3.EnvoyFilter_HTTP_FILTER, ctx); err == nil {
			removed, err := stripRemovals(p.GetPatch().GetValue())
			if err != nil {
				return err
			}
			lists[fmt.Sprintf("%s removes (%v)", stripFile, ctx)] = removed
		}
	}
	for _, p := range b.mesh.GetExtensionProviders() {
		if h := p.GetEnvoyExtAuthzHttp(); h != nil {
			lists[p.GetName()+" headersToUpstreamOnAllow"] = h.GetHeadersToUpstreamOnAllow()
		}
	}
	var want []string
	wantFrom := fmt.Sprintf("%s removes (%v)", stripFile, stripContexts[0])
	for i, where := range slices.Insert(slices.Sorted(maps.Keys(lists)), 0, wantFrom) {
		var got []string
		for _, h := range lists[where] {
			if !slices.Contains(identityHeaders, h) {
				got = append(got, strings.ToLower(strings.TrimSpace(h)))
			}
		}
		slices.Sort(got)
		got = slices.Compact(got)
		if i == 0 {
			want = got
		} else if !slices.Equal(got, want) {
			return fmt.Errorf("%s: record headers %v, but %s: %v; list the same names in each", where, got, wantFrom, want)
		}
	}
	return nil
}
