package istio

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	providerName    = "keygate" // the provider authorization-policy.yaml names
	protectedLabel  = "keygate.io/protected"
	httpPathPrefix  = "/ext_authz"
	maxCheckTimeout = 250 * time.Millisecond
	healthPath      = "/healthz"
	// Istio's root namespace unless meshConfig.rootNamespace says otherwise:
	// a policy there applies to matching workloads in every namespace.
	defaultRootNamespace = "istio-system"
)

// clientNamespaceLabels are the namespace labels the NetworkPolicy admits
// (documented in keygate.yaml): sidecar-injected namespaces, and namespaces
// labelled as keygate clients (gateways, istio.io/rev injection).
var clientNamespaceLabels = []map[string]string{
	{"istio-injection": "enabled"},
	{"keygate.io/client": "true"},
}

// meshChecks cover how the mesh reaches keygate: Service, providers,
// AuthorizationPolicy and NetworkPolicy.
var meshChecks = []check{
	{"service selects the pods", func(b *bundle) error {
		return selects(&metav1.LabelSelector{MatchLabels: b.service.Spec.Selector}, b.podLabels())
	}},
	{"service ports match container ports", checkServicePorts},
	{"extension providers point at the Service", checkProviders},
	{"authorization policy sends requests to keygate", checkPolicy},
	{"network policy", func(b *bundle) error {
		n := b.netpol.Spec
		if err := selects(&n.PodSelector, b.podLabels()); err != nil {
			return err
		}
		if !slices.Contains(n.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(n.PolicyTypes, networkingv1.PolicyTypeEgress) {
			return fmt.Errorf("policyTypes %v, want Ingress and Egress", n.PolicyTypes)
		}
		return errors.Join(b.checkIngress(), b.checkEgress())
	}},
}

func checkServicePorts(b *bundle) error {
	for _, p := range b.service.Spec.Ports {
		if _, err := b.resolvePort(p.TargetPort); err != nil {
			return fmt.Errorf("service port %s: %w", p.Name, err)
		}
	}
	for _, name := range []string{grpcPortName, httpPortName} {
		p, err := b.servicePort(name)
		if err != nil {
			return err
		}
		target, _ := b.resolvePort(p.TargetPort)
		want, err := b.containerPort(name)
		if err != nil {
			return err
		}
		if target != want {
			return fmt.Errorf("service port %s targets %d, container port %s is %d", name, target, name, want)
		}
	}
	if p, _ := b.servicePort(grpcPortName); p.AppProtocol == nil || *p.AppProtocol != "grpc" {
		return errors.New("grpc service port lacks appProtocol grpc: Istio would speak HTTP/1.1 to keygate's gRPC server")
	}
	return nil
}

// checkProviders requires a gRPC provider named keygate, and each keygate
// provider to reach keygate's Service on the right port, failing closed.
func checkProviders(b *bundle) error {
	var names []string
	for _, p := range b.mesh.GetExtensionProviders() {
		names = append(names, p.GetName())
		var err error
		switch {
		case p.GetEnvoyExtAuthzGrpc() != nil:
			g := p.GetEnvoyExtAuthzGrpc()
			err = b.checkProvider(grpcPortName, g.GetService(), g.GetPort(), g.GetTimeout().AsDuration(), g.GetFailOpen(), g.GetStatusOnError())
		case p.GetEnvoyExtAuthzHttp() != nil:
			h := p.GetEnvoyExtAuthzHttp()
			err = errors.Join(
				b.checkProvider(httpPortName, h.GetService(), h.GetPort(), h.GetTimeout().AsDuration(), h.GetFailOpen(), h.GetStatusOnError()),
				checkHTTPProvider(h))
		default:
			err = errors.New("not an ext_authz provider")
		}
		if err != nil {
			return fmt.Errorf("provider %s: %w", p.GetName(), err)
		}
	}
	i := slices.Index(names, providerName)
	if i < 0 || b.mesh.GetExtensionProviders()[i].GetEnvoyExtAuthzGrpc() == nil {
		return fmt.Errorf("no gRPC provider %q among %v", providerName, names)
	}
	return nil
}

func (b *bundle) checkProvider(portName, service string, port uint32, timeout time.Duration, failOpen bool, status string) error {
	if service != b.serviceHost() {
		return fmt.Errorf("service %q, want %q", service, b.serviceHost())
	}
	sp, err := b.servicePort(portName)
	if err != nil {
		return err
	}
	if port != uint32(sp.Port) {
		return fmt.Errorf("port %d, want the Service's %s port %d", port, portName, sp.Port)
	}
	if timeout <= 0 || timeout > maxCheckTimeout {
		return fmt.Errorf("timeout %v, want set (Istio's default is 600s) and at most %v", timeout, maxCheckTimeout)
	}
	if failOpen {
		return errors.New("failOpen: a keygate outage lets every request through")
	}
	if status != "503" {
		return fmt.Errorf("statusOnError %q, want 503 so clients can tell an outage from a bad key", status)
	}
	return nil
}

func checkHTTPProvider(h *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider) error {
	if h.GetPathPrefix() != httpPathPrefix {
		return fmt.Errorf("pathPrefix %q, want %q", h.GetPathPrefix(), httpPathPrefix)
	}
	if h.GetIncludeRequestBodyInCheck() != nil {
		return errors.New("includeRequestBodyInCheck set: keygate never reads the body")
	}
	for _, l := range []struct {
		what       string
		got        []string
		want, deny []string
	}{
		{"includeRequestHeadersInCheck", h.GetIncludeRequestHeadersInCheck(), []string{"x-api-key", "authorization"}, []string{"cookie", "*"}},
		{"headersToUpstreamOnAllow", h.GetHeadersToUpstreamOnAllow(), []string{"x-keygate-key-id", "x-keygate-tenant", "x-keygate-scopes"}, []string{"x-keygate-*", "*"}},
		{"headersToDownstreamOnDeny", h.GetHeadersToDownstreamOnDeny(), []string{"www-authenticate", "x-keygate-reason"}, []string{"x-keygate-key-id", "x-keygate-*", "*"}},
	} {
		for _, w := range l.want {
			if !slices.Contains(l.got, w) {
				return fmt.Errorf("%s lacks %s", l.what, w)
			}
		}
		for _, d := range l.deny {
			if slices.Contains(l.got, d) {
				return fmt.Errorf("%s has %s", l.what, d)
			}
		}
	}
	return nil
}

// checkPolicy requires a CUSTOM policy naming a configured provider, for the
// labelled workloads, whose one rule exempts only the exact health path.
func checkPolicy(b *bundle) error {
	p := b.policy
	if p.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		return fmt.Errorf("action %v, want CUSTOM", p.GetAction())
	}
	name := p.GetProvider().GetName()
	if !slices.ContainsFunc(b.mesh.GetExtensionProviders(), func(e *meshv1alpha1.MeshConfig_ExtensionProvider) bool {
		return e.GetName() == name
	}) {
		return fmt.Errorf("provider %q is not a meshConfig extension provider", name)
	}
	root := b.mesh.GetRootNamespace()
	if root == "" {
		root = defaultRootNamespace
	}
	if b.policyMeta.Namespace != root {
		return fmt.Errorf("policy in namespace %q, not the root namespace %q: it would apply only there", b.policyMeta.Namespace, root)
	}
	if got := p.GetSelector().GetMatchLabels(); !maps.Equal(got, map[string]string{protectedLabel: "true"}) {
		return fmt.Errorf("selector %v, want %s: \"true\"", got, protectedLabel)
	}
	rules := p.GetRules()
	if len(rules) != 1 || len(rules[0].GetFrom()) > 0 || len(rules[0].GetWhen()) > 0 || len(rules[0].GetTo()) != 1 {
		return errors.New("want one rule with one `to` and no `from` or `when`: anything else skips keygate for some requests")
	}
	op := rules[0].GetTo()[0].GetOperation()
	rest := proto.Clone(op).(*securityv1beta1.Operation)
	rest.NotPaths = nil
	if proto.Size(rest) != 0 || !slices.Equal(op.GetNotPaths(), []string{healthPath}) {
		return fmt.Errorf("rule %v, want only notPaths [%s]", rules[0], healthPath)
	}
	return nil
}

// netPort is a protocol and port number.
type netPort struct {
	proto corev1.Protocol
	port  int32
}

// portOf returns the single port p admits (named ports resolved against
// keygate's container); a range or all ports is an error.
func (b *bundle) portOf(p networkingv1.NetworkPolicyPort) (netPort, error) {
	np := netPort{proto: corev1.ProtocolTCP}
	if p.Protocol != nil {
		np.proto = *p.Protocol
	}
	if p.Port == nil || p.EndPort != nil {
		return np, errors.New("all ports or a port range")
	}
	n, err := b.resolvePort(*p.Port)
	np.port = n
	return np, err
}

func (b *bundle) checkIngress() error {
	grpc, _ := b.containerPort(grpcPortName)
	http, _ := b.containerPort(httpPortName)
	var covered []netPort
	for _, r := range b.netpol.Spec.Ingress {
		if len(r.From) == 0 || len(r.Ports) == 0 {
			return errors.New("ingress rule without `from` or `ports` admits everyone or every port")
		}
		if scrape, err := b.scrapeRule(r); scrape || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		for _, peer := range r.From {
			if peer.IPBlock != nil || peer.NamespaceSelector == nil || len(peer.NamespaceSelector.MatchExpressions) > 0 ||
				!slices.ContainsFunc(clientNamespaceLabels, func(l map[string]string) bool { return maps.Equal(l, peer.NamespaceSelector.MatchLabels) }) {
				return fmt.Errorf("ingress peer %v: want a namespaceSelector with one of %v", peer, clientNamespaceLabels)
			}
		}
		for _, p := range r.Ports {
			np, err := b.portOf(p)
			if err != nil || np.port != grpc && np.port != http {
				return fmt.Errorf("ingress port %v: want only %d and %d (%v)", p.Port, grpc, http, err)
			}
			covered = append(covered, np)
		}
	}
	for _, want := range []netPort{{corev1.ProtocolTCP, grpc}, {corev1.ProtocolTCP, http}} {
		if !slices.Contains(covered, want) {
			return fmt.Errorf("no ingress rule admits %v", want)
		}
	}
	return nil
}

// monitoringLabels select the namespace Prometheus scrapes from.
var monitoringLabels = map[string]string{"kubernetes.io/metadata.name": "monitoring"}

// scrapeRule reports whether r is the Prometheus rule: from the monitoring
// namespace only, to the metrics port only.
func (b *bundle) scrapeRule(r networkingv1.NetworkPolicyIngressRule) (bool, error) {
	if len(r.From) != 1 || r.From[0].NamespaceSelector == nil || !maps.Equal(r.From[0].NamespaceSelector.MatchLabels, monitoringLabels) {
		return false, nil
	}
	metrics, err := b.containerPort(metricsPortName)
	if err != nil {
		return true, fmt.Errorf("monitoring ingress rule, but no metrics container port: %w", err)
	}
	for _, p := range r.Ports {
		if np, err := b.portOf(p); err != nil || np.port != metrics {
			return true, fmt.Errorf("monitoring may reach only the metrics port %d, not %v (%v)", metrics, p.Port, err)
		}
	}
	return true, nil
}

func (b *bundle) checkEgress() error {
	allowed := []netPort{{corev1.ProtocolUDP, 53}, {corev1.ProtocolTCP, 53}, {corev1.ProtocolTCP, 8200}}
	var covered []netPort
	for _, r := range b.netpol.Spec.Egress {
		if len(r.To) == 0 || len(r.Ports) == 0 {
			return errors.New("egress rule without `to` or `ports` lets keygate reach anything")
		}
		for _, p := range r.Ports {
			np, err := b.portOf(p)
			if err != nil || p.Port.Type != intstr.Int || !slices.Contains(allowed, np) {
				return fmt.Errorf("egress port %v: want only DNS and Vault (8200) (%v)", np, err)
			}
			covered = append(covered, np)
		}
	}
	for _, want := range []netPort{allowed[0], allowed[2]} {
		if !slices.Contains(covered, want) {
			return fmt.Errorf("no egress rule allows %v", want)
		}
	}
	return nil
}
