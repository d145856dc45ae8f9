package istio

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	manifestFile = "keygate.yaml"
	meshFile     = "mesh-config.yaml"
	policyFile   = "authorization-policy.yaml"
	stripFile    = "strip-headers.yaml"
)

// files are the configs under test, by name.
type files map[string][]byte

func readFiles(t *testing.T) files {
	t.Helper()
	fs := files{}
	for _, name := range []string{manifestFile, meshFile, policyFile, stripFile} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fs[name] = b
	}
	return fs
}

// bundle is every object in the configs, decoded.
type bundle struct {
	namespace      *corev1.Namespace
	serviceAccount *corev1.ServiceAccount
	deployment     *appsv1.Deployment
	service        *corev1.Service
	pdb            *policyv1.PodDisruptionBudget
	netpol         *networkingv1.NetworkPolicy
	policyMeta     metav1.ObjectMeta
	policy         *securityv1beta1.AuthorizationPolicy
	mesh           *meshv1alpha1.MeshConfig
	stripMeta      metav1.ObjectMeta
	strip          *networkingv1alpha3.EnvoyFilter
}

func loadBundle(fs files) (*bundle, error) {
	b := &bundle{}
	if err := b.decodeManifests(fs[manifestFile]); err != nil {
		return nil, fmt.Errorf("%s: %w", manifestFile, err)
	}
	if err := b.decodePolicy(fs[policyFile]); err != nil {
		return nil, fmt.Errorf("%s: %w", policyFile, err)
	}
	if err := b.decodeMesh(fs[meshFile]); err != nil {
		return nil, fmt.Errorf("%s: %w", meshFile, err)
	}
	if err := b.decodeEnvoyFilter(fs[stripFile]); err != nil {
		return nil, fmt.Errorf("%s: %w", stripFile, err)
	}
	return b, nil
}

// docSeparator is a YAML document separator line.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeManifests decodes each document of a multi-document YAML file into
// its Kubernetes API type, rejecting unknown fields, and requires exactly
// one object of each kind keygate needs.
func (b *bundle) decodeManifests(doc []byte) error {
	for i, part := range docSeparator.Split(string(doc), -1) {
		if isBlank(part) {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(part), &tm); err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		target, err := b.slot(tm)
		if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if err := yaml.UnmarshalStrict([]byte(part), target); err != nil {
			return fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
	}
	if b.namespace == nil || b.serviceAccount == nil || b.deployment == nil ||
		b.service == nil || b.pdb == nil || b.netpol == nil {
		return errors.New("want one each of Namespace, ServiceAccount, Deployment, Service, PodDisruptionBudget, NetworkPolicy")
	}
	return nil
}

// slot returns a new object of the type tm names, stored in b.
func (b *bundle) slot(tm metav1.TypeMeta) (any, error) {
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		return claim(&b.namespace)
	case "v1 ServiceAccount":
		return claim(&b.serviceAccount)
	case "apps/v1 Deployment":
		return claim(&b.deployment)
	case "v1 Service":
		return claim(&b.service)
	case "policy/v1 PodDisruptionBudget":
		return claim(&b.pdb)
	case "networking.k8s.io/v1 NetworkPolicy":
		return claim(&b.netpol)
	}
	return nil, fmt.Errorf("unexpected apiVersion %q kind %q", tm.APIVersion, tm.Kind)
}

// claim sets *p to a new T and returns it, unless *p is already set.
func claim[T any](p **T) (any, error) {
	if *p != nil {
		return nil, fmt.Errorf("more than one %T", *p)
	}
	*p = new(T)
	return *p, nil
}

// isBlank reports whether a YAML document holds only comments and space.
func isBlank(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// strictProto is how Istio's own tooling should read a spec: unknown fields
// are errors, not silently dropped.
var strictProto = protojson.UnmarshalOptions{DiscardUnknown: false}

// istioObject is an Istio resource as a file holds it: the Kubernetes
// envelope, and the spec left for protojson.
type istioObject struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            json.RawMessage   `json:"spec"`
}

// decodeIstio decodes an Istio resource: the envelope strictly, the spec
// with protojson into spec; kind and one of apiVersions must match.
func decodeIstio(doc []byte, kind string, apiVersions []string, spec proto.Message) (metav1.ObjectMeta, error) {
	var obj istioObject
	if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
		return obj.Metadata, err
	}
	if obj.Kind != kind || !slices.Contains(apiVersions, obj.APIVersion) {
		return obj.Metadata, fmt.Errorf("apiVersion %q kind %q, want %s %s", obj.APIVersion, obj.Kind, apiVersions[0], kind)
	}
	if err := strictProto.Unmarshal(obj.Spec, spec); err != nil {
		return obj.Metadata, fmt.Errorf("spec: %w", err)
	}
	return obj.Metadata, nil
}

// decodePolicy decodes an AuthorizationPolicy.
func (b *bundle) decodePolicy(doc []byte) error {
	b.policy = &securityv1beta1.AuthorizationPolicy{}
	var err error
	b.policyMeta, err = decodeIstio(doc, "AuthorizationPolicy", []string{"security.istio.io/v1", "security.istio.io/v1beta1"}, b.policy)
	return err
}

// decodeEnvoyFilter decodes an EnvoyFilter; its patch values (free-form
// Structs in Istio's proto) are decoded by the checks, into Envoy's types.
func (b *bundle) decodeEnvoyFilter(doc []byte) error {
	b.strip = &networkingv1alpha3.EnvoyFilter{}
	var err error
	b.stripMeta, err = decodeIstio(doc, "EnvoyFilter", []string{"networking.istio.io/v1alpha3"}, b.strip)
	return err
}

// decodeMesh decodes the meshConfig of istiod Helm values into Istio's
// MeshConfig proto.
func (b *bundle) decodeMesh(doc []byte) error {
	var values struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	if err := yaml.UnmarshalStrict(doc, &values); err != nil {
		return err
	}
	if len(values.MeshConfig) == 0 {
		return errors.New("no meshConfig")
	}
	b.mesh = &meshv1alpha1.MeshConfig{}
	if err := strictProto.Unmarshal(values.MeshConfig, b.mesh); err != nil {
		return fmt.Errorf("meshConfig: %w", err)
	}
	return nil
}
