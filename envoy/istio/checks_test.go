package istio

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	grpcPortName    = "grpc"
	httpPortName    = "http"
	metricsPortName = "metrics"
	// keygate serve's --shutdown-timeout when the flag is not given.
	defaultShutdownTimeout = 10 * time.Second
	// keygate serve's --warmup-timeout when the flag is not given.
	defaultWarmupTimeout = 30 * time.Second
	// loginAllowance is the part of the startup probe's window kept for
	// the first Vault login (retried with back-off) besides the warm-up.
	loginAllowance = time.Minute
)

// A check is one thing a reviewer verifies across the configs. It returns
// nil if the bundle passes.
type check struct {
	name string
	fn   func(*bundle) error
}

func (b *bundle) container() (*corev1.Container, error) {
	cs := b.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		return nil, fmt.Errorf("want one container, got %d", len(cs))
	}
	return &cs[0], nil
}

// containerPort returns the number of the keygate container's port name.
func (b *bundle) containerPort(name string) (int32, error) {
	c, err := b.container()
	if err != nil {
		return 0, err
	}
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("container has no port named %q", name)
}

// resolvePort returns the container port number p refers to, by number or
// by name.
func (b *bundle) resolvePort(p intstr.IntOrString) (int32, error) {
	if p.Type == intstr.Int {
		return p.IntVal, nil
	}
	return b.containerPort(p.StrVal)
}

// flag returns the value of --name=value in args.
func flag(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// durationFlag returns --name's value, or def if absent.
func durationFlag(args []string, name string, def time.Duration) (time.Duration, error) {
	v, ok := flag(args, name)
	if !ok {
		return def, nil
	}
	return time.ParseDuration(v)
}

// selects returns nil if sel is non-empty and matches lbls.
func selects(sel *metav1.LabelSelector, lbls map[string]string) error {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return errors.New("empty selector selects everything")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return err
	}
	if !s.Matches(labels.Set(lbls)) {
		return fmt.Errorf("selector %v does not match pod labels %v", s, lbls)
	}
	return nil
}

func (b *bundle) podLabels() map[string]string { return b.deployment.Spec.Template.Labels }

// serviceHost is the cluster DNS name of keygate's Service.
func (b *bundle) serviceHost() string {
	return b.service.Name + "." + b.service.Namespace + ".svc.cluster.local"
}

// servicePort returns the Service port with the given name.
func (b *bundle) servicePort(name string) (*corev1.ServicePort, error) {
	for i, p := range b.service.Spec.Ports {
		if p.Name == name {
			return &b.service.Spec.Ports[i], nil
		}
	}
	return nil, fmt.Errorf("Service has no port named %q", name)
}

// checkListen requires --flag to listen on all interfaces at the container
// port named portName. The host must be written out: keygate binds a
// host-less --metrics-addr or --admin-addr (":9090") to loopback.
func (b *bundle) checkListen(c *corev1.Container, flagName, portName string) error {
	addr, ok := flag(c.Args, flagName)
	if !ok {
		return fmt.Errorf("no --%s", flagName)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--%s: %w", flagName, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		return fmt.Errorf("--%s=%s: loopback is unreachable from other pods", flagName, addr)
	}
	if host == "" {
		return fmt.Errorf("--%s=%s: no host; write 0.0.0.0 (keygate binds a host-less metrics or admin address to loopback)", flagName, addr)
	}
	want, err := b.containerPort(portName)
	if err != nil {
		return err
	}
	if port != strconv.Itoa(int(want)) {
		return fmt.Errorf("--%s=%s, but container port %s is %d", flagName, addr, portName, want)
	}
	return nil
}

// checkProbe requires a native gRPC probe of health service "" on the
// container's grpc port.
func (b *bundle) checkProbe(kind string, p *corev1.Probe) error {
	if p == nil {
		return fmt.Errorf("no %s probe", kind)
	}
	if p.GRPC == nil || p.HTTPGet != nil || p.TCPSocket != nil || p.Exec != nil {
		return fmt.Errorf("%s probe is not (only) gRPC", kind)
	}
	want, err := b.containerPort(grpcPortName)
	if err != nil {
		return err
	}
	if p.GRPC.Port != want {
		return fmt.Errorf("%s probe on port %d, want the grpc port %d", kind, p.GRPC.Port, want)
	}
	if p.GRPC.Service != nil && *p.GRPC.Service != "" {
		return fmt.Errorf("%s probe asks health service %q, want \"\" (keygate's overall readiness)", kind, *p.GRPC.Service)
	}
	return nil
}
