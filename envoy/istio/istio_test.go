package istio

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	typev1beta1 "istio.io/api/type/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var allChecks = slices.Concat(deploymentChecks, meshChecks, stripChecks)

func runChecks(b *bundle) error {
	var errs []error
	for _, c := range allChecks {
		if err := c.fn(b); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

func TestConfigs(t *testing.T) {
	b, err := loadBundle(readFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range allChecks {
		t.Run(c.name, func(t *testing.T) {
			if err := c.fn(b); err != nil {
				t.Error(err)
				if promise, ok := checkREADME[c.name]; ok {
					t.Errorf("README.md promises: %s", promise)
				}
			}
		})
	}
}

// A textEdit replaces old, which must occur once in file, with new; the
// edited configs must then be rejected with an error mentioning wantErr.
type textEdit struct {
	name, file, old, new, wantErr string
}

// textEdits break the files in ways that strict decoding or a check must
// catch.
var textEdits = []textEdit{
	// Strict decoding.
	{"unknown deployment field", manifestFile, "replicas: 2", "replica: 2", `unknown field "replica"`},
	{"unknown probe field", manifestFile, "failureThreshold: 60", "failureTreshold: 60", "failureTreshold"},
	{"old PDB API", manifestFile, "apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n", "policy/v1beta1"},
	{"quantity typo", manifestFile, "memory: 512Mi", "memory: 512MB", "quantities must match"},
	{"unknown policy spec field", policyFile, "action: CUSTOM", "actions: CUSTOM", "actions"},
	{"unknown policy action", policyFile, "action: CUSTOM", "action: EXTERNAL", "EXTERNAL"},
	{"unknown mesh field", meshFile, "pathPrefix: /ext_authz", "pathPrefx: /ext_authz", "pathPrefx"},
	{"bad mesh duration", meshFile, "timeout: 0.2s\n        # Fail closed", "timeout: fast\n        # Fail closed", "fast"},
	{"not Helm values", meshFile, "meshConfig:\n", "mesh:\n", `unknown field "mesh"`},
	// Checks.
	{"one replica", manifestFile, "replicas: 2", "replicas: 1", "fewer than 2 replicas"},
	{"loopback listener", manifestFile, "--grpc-addr=0.0.0.0:9191", "--grpc-addr=127.0.0.1:9191", "loopback"},
	{"metrics on loopback by default", manifestFile, "--metrics-addr=0.0.0.0:9090", "--metrics-addr=:9090", "no host; write 0.0.0.0"},
	{"metrics on loopback", manifestFile, "--metrics-addr=0.0.0.0:9090", "--metrics-addr=127.0.0.1:9090", "loopback is unreachable"},
	{"listener off its port", manifestFile, "--http-addr=0.0.0.0:9192", "--http-addr=0.0.0.0:8080", "container port http is 9192"},
	{"no shutdown delay", manifestFile, "            - --shutdown-delay=5s\n", "", "--shutdown-delay"},
	{"warm-up longer than the startup probe", manifestFile, "--warmup-timeout=30s", "--warmup-timeout=90s", "want at least --warmup-timeout 1m30s"},
	{"startup probe too short", manifestFile, "failureThreshold: 60", "failureThreshold: 30", "startup probe allows 1m0s"},
	{"rollout stops a ready replica first", manifestFile, "maxUnavailable: 0", "maxUnavailable: 1", "maxUnavailable 0"},
	{"grace too short", manifestFile, "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 15", "terminationGracePeriodSeconds 15"},
	{"longer shutdown timeout", manifestFile, "--shutdown-delay=5s", "--shutdown-delay=5s\n            - --shutdown-timeout=30s", "timeout 30s"},
	{"liveness on HTTP port", manifestFile, "              port: 9191\n              service: \"\"\n            periodSeconds: 10", "              port: 9192\n              service: \"\"\n            periodSeconds: 10", "liveness probe on port 9192"},
	{"probe of a named service", manifestFile, "              service: \"\"\n            periodSeconds: 5", "              service: envoy.service.auth.v3.Authorization\n            periodSeconds: 5", "readiness probe asks health service"},
	{"writable root", manifestFile, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
	{"root user", manifestFile, "            runAsUser: 65532\n", "            runAsUser: 0\n", "runAsUser not 65532"},
	{"token auth", manifestFile, "value: kubernetes", "value: token", "KEYGATE_VAULT_AUTH=kubernetes"},
	{"token path mismatch", manifestFile, "value: /var/run/secrets/vault/token", "value: /var/run/secrets/vault/jwt", "no mounted projected"},
	{"PDB blocks drains", manifestFile, "minAvailable: 1", "minAvailable: 2", "minAvailable 2"},
	{"gRPC port as HTTP", manifestFile, "appProtocol: grpc", "appProtocol: http", "appProtocol grpc"},
	{"service targets nothing", manifestFile, "targetPort: http\n", "targetPort: https\n", `no port named "https"`},
	{"service selects other pods", manifestFile, "  selector:\n    app.kubernetes.io/name: keygate", "  selector:\n    app.kubernetes.io/name: keygate-v2", "service selects the pods"},
	{"provider in wrong namespace", meshFile, "service: keygate.keygate.svc.cluster.local\n        port: 9191", "service: keygate.default.svc.cluster.local\n        port: 9191", "keygate.default.svc.cluster.local"},
	{"gRPC provider on HTTP port", meshFile, "port: 9191", "port: 9192", "port 9192, want the Service's grpc port 9191"},
	{"provider fails open", meshFile, "failOpen: false\n        # ...with 503", "failOpen: true\n        # ...with 503", "failOpen"},
	{"provider 403 on error", meshFile, "statusOnError: \"503\"\n        # keygate reads", "statusOnError: \"403\"\n        # keygate reads", "statusOnError \"403\""},
	{"no provider timeout", meshFile, "port: 9192\n        timeout: 0.2s\n", "port: 9192\n", "Istio's default is 600s"},
	{"HTTP provider prefix", meshFile, "pathPrefix: /ext_authz", "pathPrefix: /check", "pathPrefix"},
	{"identity lost upstream", meshFile, "          - x-keygate-tenant\n", "", "lacks x-keygate-tenant"},
	{"cookies to keygate", meshFile, "          - referer\n", "          - referer\n          - cookie\n", "includeRequestHeadersInCheck has cookie"},
	{"unknown provider", policyFile, "name: keygate\n  rules", "name: keygate-grpc\n  rules", "not a meshConfig extension provider"},
	{"ALLOW policy", policyFile, "action: CUSTOM", "action: ALLOW", "want CUSTOM"},
	{"health prefix exempt", policyFile, `notPaths: ["/healthz"]`, `notPaths: ["/healthz*"]`, "want only notPaths"},
	{"only GETs checked", policyFile, `notPaths: ["/healthz"]`, "notPaths: [\"/healthz\"]\n            methods: [GET]", "want only notPaths"},
	{"other label", policyFile, `      keygate.io/protected: "true"`, `      keygate.io/protect: "true"`, "selector"},
	{"ingress from anywhere", manifestFile, "              istio-injection: enabled\n", "              {}\n", "want a namespaceSelector"},
	{"monitoring reaches gRPC", manifestFile, "          port: 9090\n", "          port: 9191\n", "monitoring may reach only the metrics port"},
	{"HTTP port closed", manifestFile, "        - protocol: TCP\n          port: 9192\n", "", "no ingress rule admits {TCP 9192}"},
	{"egress to the API server", manifestFile, "          port: 8200\n", "          port: 8200\n        - protocol: TCP\n          port: 443\n", "egress port {TCP 443}"},
	{"policy outside the root namespace", policyFile, "namespace: istio-system", "namespace: default", "root namespace"},
	// strip-headers.yaml.
	{"unknown EnvoyFilter field", stripFile, "configPatches:", "configPatch:", "configPatch"},
	{"unknown patch context", stripFile, stripInbound, strings.Replace(stripInbound, "SIDECAR_INBOUND", "SIDECAR_IN", 1), "SIDECAR_IN"},
	{"strip on outbound instead", stripFile, stripInbound, strings.Replace(stripInbound, "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", 1), "0 HTTP_FILTER patches for context SIDECAR_INBOUND"},
	{"strip appended after ext_authz", stripFile, stripInbound, strings.Replace(stripInbound, "INSERT_FIRST", "ADD", 1), "must run before envoy.filters.http.ext_authz"},
	{"strip inserted after ext_authz", stripFile, stripInbound, strings.Replace(stripInbound,
		"http_connection_manager\n      patch:\n        operation: INSERT_FIRST",
		"http_connection_manager\n              subFilter:\n                name: envoy.filters.http.ext_authz\n      patch:\n        operation: INSERT_AFTER", 1),
		"must run before envoy.filters.http.ext_authz"},
	{"strip on one port only", stripFile, stripInbound, strings.Replace(stripInbound, "listener:\n", "listener:\n          portNumber: 8080\n", 1), "narrower than every HTTP connection manager"},
	{"strip filter elsewhere", stripFile, "namespace: istio-system", "namespace: default", "EnvoyFilter in namespace"},
	{"strip filter for other workloads", stripFile, `      keygate.io/protected: "true"`, `      keygate.io/protect: "true"`, "workloadSelector"},
	{"keygate forgets x-plan", manifestFile, "            - --strip-headers=x-plan\n", "", "keygate --strip-headers: record headers []"},
	{"HTTP provider drops x-plan", meshFile, "          - x-plan\n", "", "keygate-http headersToUpstreamOnAllow: record headers []"},
	{"HTTP provider copies an unstripped header", meshFile, "          - x-plan\n", "          - x-plan\n          - x-tier\n", "headersToUpstreamOnAllow: record headers [x-plan x-tier]"},
	{"trusted proxies in the mesh", manifestFile, "            - --strip-headers=x-plan\n", "            - --strip-headers=x-plan\n            - --trusted-proxies=10.0.0.0/8\n", "--trusted-proxies=10.0.0.0/8"},
}

// stripInbound is the start of strip-headers.yaml's SIDECAR_INBOUND strip
// patch, for edits aimed at it alone.
const stripInbound = "context: SIDECAR_INBOUND\n        listener:\n          filterChain:\n            filter:\n              name: envoy.filters.network.http_connection_manager\n      patch:\n        operation: INSERT_FIRST"

func TestBrokenTextIsRejected(t *testing.T) {
	for _, tc := range textEdits {
		t.Run(tc.name, func(t *testing.T) {
			fs := readFiles(t)
			doc := string(fs[tc.file])
			if n := strings.Count(doc, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want once", tc.old, n, tc.file)
			}
			fs[tc.file] = []byte(strings.Replace(doc, tc.old, tc.new, 1))
			b, err := loadBundle(fs)
			if err == nil {
				err = runChecks(b)
			}
			wantRejected(t, err, tc.wantErr)
		})
	}
}

// mutations change decoded objects where a text edit would be clumsy; the
// checks must then fail with an error mentioning wantErr.
var mutations = []struct {
	name    string
	mutate  func(*bundle)
	wantErr string
}{
	{"spread by another label", func(b *bundle) {
		b.deployment.Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels = map[string]string{"app": "keygate"}
	}, "topology spread on kubernetes.io/hostname"},
	{"no node spread", func(b *bundle) {
		b.deployment.Spec.Template.Spec.TopologySpreadConstraints = nil
	}, "different nodes"},
	{"HTTP readiness probe", func(b *bundle) {
		p := b.deployment.Spec.Template.Spec.Containers[0].ReadinessProbe
		p.GRPC, p.HTTPGet = nil, &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(9192)}
	}, "readiness probe is not (only) gRPC"},
	{"no startup probe", func(b *bundle) {
		b.deployment.Spec.Template.Spec.Containers[0].StartupProbe = nil
	}, "no startup probe"},
	{"privilege escalation", func(b *bundle) {
		b.deployment.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	}, "allowPrivilegeEscalation"},
	{"capability added", func(b *bundle) {
		b.deployment.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
	}, "capabilities"},
	{"unconfined seccomp", func(b *bundle) {
		b.deployment.Spec.Template.Spec.Containers[0].SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	}, "seccompProfile"},
	{"root allowed", func(b *bundle) {
		f := false
		b.deployment.Spec.Template.Spec.Containers[0].SecurityContext.RunAsNonRoot = &f
	}, "runAsNonRoot"},
	{"no resources", func(b *bundle) {
		b.deployment.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
	}, "memory requests"},
	{"PDB selects nothing", func(b *bundle) {
		b.pdb.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "other"}
	}, "disruption budget"},
	{"network policy for other pods", func(b *bundle) {
		b.netpol.Spec.PodSelector.MatchLabels = map[string]string{"app.kubernetes.io/name": "other"}
	}, "network policy"},
	{"egress unrestricted", func(b *bundle) {
		b.netpol.Spec.PolicyTypes = b.netpol.Spec.PolicyTypes[:1]
	}, "want Ingress and Egress"},
	{"service account elsewhere", func(b *bundle) {
		b.serviceAccount.Namespace = "default"
	}, "one namespace"},
	{"a second rule", func(b *bundle) {
		b.policy.Rules = append(b.policy.Rules, b.policy.Rules[0])
	}, "want one rule"},
	{"no gRPC provider", func(b *bundle) {
		b.mesh.ExtensionProviders = b.mesh.ExtensionProviders[1:]
	}, `no gRPC provider "keygate"`},
	{"strip filter keeps x-plan", func(b *bundle) {
		l := stripValue(b, 0, "typed_config", "mutations", "request_mutations").GetListValue()
		l.Values = l.Values[:len(l.Values)-1]
	}, "SIDECAR_INBOUND: header_mutation does not remove x-plan"},
	{"gateway strip filter keeps x-keygate-tenant", func(b *bundle) {
		l := stripValue(b, 1, "typed_config", "mutations", "request_mutations").GetListValue()
		l.Values = slices.Delete(l.Values, 1, 2)
	}, "GATEWAY: header_mutation does not remove x-keygate-tenant"},
	{"unknown field in a HeaderMutation", func(b *bundle) {
		m := stripValue(b, 0, "typed_config", "mutations").GetStructValue()
		m.Fields["request_mutation"] = m.Fields["request_mutations"]
	}, "request_mutation"},
	{"strip filter of another type", func(b *bundle) {
		stripValue(b, 0, "typed_config").GetStructValue().Fields["@type"] = structpb.NewStringValue("type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute")
	}, "want a HeaderMutation"},
	{"strip filter optional", func(b *bundle) {
		b.strip.ConfigPatches[0].Patch.Value.Fields["is_optional"] = structpb.NewBoolValue(true)
	}, "disabled or optional"},
	{"underscores allowed", func(b *bundle) {
		stripValue(b, 2, "typed_config", "common_http_protocol_options").GetStructValue().Fields["headers_with_underscores_action"] = structpb.NewStringValue("ALLOW")
	}, "SIDECAR_INBOUND: headers_with_underscores_action ALLOW"},
	{"underscore setting replaces Istio's", func(b *bundle) {
		b.strip.ConfigPatches[3].Patch.Operation = networkingv1alpha3.EnvoyFilter_Patch_REPLACE
	}, "GATEWAY: NETWORK_FILTER operation REPLACE"},
	{"a patch removing ext_authz", func(b *bundle) {
		p := proto.Clone(b.strip.ConfigPatches[0]).(*networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch)
		p.Match.Context = networkingv1alpha3.EnvoyFilter_SIDECAR_OUTBOUND
		p.Patch = &networkingv1alpha3.EnvoyFilter_Patch{Operation: networkingv1alpha3.EnvoyFilter_Patch_REMOVE}
		b.strip.ConfigPatches = append(b.strip.ConfigPatches, p)
	}, "5 configPatches, want 4"},
	{"strip filter by targetRefs", func(b *bundle) {
		b.strip.TargetRefs = []*typev1beta1.PolicyTargetReference{{Kind: "Gateway", Name: "ingress"}}
	}, "targetRefs"},
}

// stripValue returns the value at path in the patch value of
// strip-headers.yaml's patch i.
func stripValue(b *bundle, i int, path ...string) *structpb.Value {
	v := structpb.NewStructValue(b.strip.GetConfigPatches()[i].GetPatch().GetValue())
	for _, k := range path {
		v = v.GetStructValue().GetFields()[k]
	}
	return v
}

func TestBrokenObjectsAreRejected(t *testing.T) {
	for _, tc := range mutations {
		t.Run(tc.name, func(t *testing.T) {
			b, err := loadBundle(readFiles(t))
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(b)
			wantRejected(t, runChecks(b), tc.wantErr)
		})
	}
}

func wantRejected(t *testing.T, err error, wantErr string) {
	t.Helper()
	if err == nil {
		t.Fatal("config accepted")
	}
	if !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error does not mention %q: %v", wantErr, err)
	}
	t.Logf("rejected: %v", err)
}
