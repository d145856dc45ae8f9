package istio

import (
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// deploymentChecks cover keygate's own workload in keygate.yaml.
var deploymentChecks = []check{
	{"one namespace", func(b *bundle) error {
		ns := b.namespace.Name
		for _, m := range []string{b.serviceAccount.Namespace, b.deployment.Namespace, b.service.Namespace,
			b.pdb.Namespace, b.netpol.Namespace} {
			if m != ns {
				return fmt.Errorf("object in namespace %q, want %q", m, ns)
			}
		}
		if got := b.deployment.Spec.Template.Spec.ServiceAccountName; got != b.serviceAccount.Name {
			return fmt.Errorf("pods run as service account %q, want %q", got, b.serviceAccount.Name)
		}
		return nil
	}},
	{"replicas spread out", func(b *bundle) error {
		d := b.deployment.Spec
		if d.Replicas == nil || *d.Replicas < 2 {
			return errors.New("fewer than 2 replicas: every request in the mesh waits on keygate")
		}
		if err := selects(d.Selector, b.podLabels()); err != nil {
			return fmt.Errorf("deployment selector: %w", err)
		}
		spread := false
		for _, c := range d.Template.Spec.TopologySpreadConstraints {
			if err := selects(c.LabelSelector, b.podLabels()); err != nil {
				return fmt.Errorf("topology spread on %s: %w", c.TopologyKey, err)
			}
			spread = spread || c.TopologyKey == "kubernetes.io/hostname" && c.WhenUnsatisfiable == corev1.DoNotSchedule
		}
		if a := d.Template.Spec.Affinity; !spread && (a == nil || a.PodAntiAffinity == nil) {
			return errors.New("nothing keeps replicas on different nodes")
		}
		return nil
	}},
	{"listen addresses match container ports", func(b *bundle) error {
		c, err := b.container()
		if err != nil {
			return err
		}
		return errors.Join(b.checkListen(c, "grpc-addr", grpcPortName), b.checkListen(c, "http-addr", httpPortName),
			b.checkListen(c, "metrics-addr", metricsPortName))
	}},
	{"probes use gRPC health on the grpc port", func(b *bundle) error {
		c, err := b.container()
		if err != nil {
			return err
		}
		return errors.Join(b.checkProbe("startup", c.StartupProbe),
			b.checkProbe("readiness", c.ReadinessProbe), b.checkProbe("liveness", c.LivenessProbe))
	}},
	{"shutdown fits the grace period", func(b *bundle) error {
		c, err := b.container()
		if err != nil {
			return err
		}
		delay, err := durationFlag(c.Args, "shutdown-delay", 0)
		if err != nil || delay <= 0 {
			return fmt.Errorf("--shutdown-delay %v (%v): want one, so Envoys stop sending before keygate stops", delay, err)
		}
		timeout, err := durationFlag(c.Args, "shutdown-timeout", defaultShutdownTimeout)
		if err != nil {
			return err
		}
		grace := b.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds
		if grace == nil {
			return errors.New("terminationGracePeriodSeconds unset")
		}
		if float64(*grace) <= (delay + timeout).Seconds() {
			return fmt.Errorf("terminationGracePeriodSeconds %d, want more than shutdown delay %v + timeout %v", *grace, delay, timeout)
		}
		return nil
	}},
	{"startup probe outlasts the warm-up", func(b *bundle) error {
		c, err := b.container()
		if err != nil {
			return err
		}
		warmup, err := durationFlag(c.Args, "warmup-timeout", defaultWarmupTimeout)
		if err != nil {
			return err
		}
		p := c.StartupProbe
		if p == nil {
			return errors.New("no startup probe")
		}
		window := time.Duration(p.InitialDelaySeconds+p.PeriodSeconds*p.FailureThreshold) * time.Second
		if window < warmup+loginAllowance {
			return fmt.Errorf("startup probe allows %v, want at least --warmup-timeout %v + %v for the Vault login", window, warmup, loginAllowance)
		}
		return nil
	}},
	{"rollouts keep every ready replica", func(b *bundle) error {
		s := b.deployment.Spec.Strategy
		if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
			s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.IntValue() != 0 ||
			s.RollingUpdate.MaxSurge == nil || s.RollingUpdate.MaxSurge.IntValue() < 1 {
			return fmt.Errorf("strategy %+v: want a RollingUpdate with maxUnavailable 0 and maxSurge of at least 1, so an old replica stops only once a new one is warm", s)
		}
		return nil
	}},
	{"security context", checkSecurityContext},
	{"resources", func(b *bundle) error {
		c, err := b.container()
		if err != nil {
			return err
		}
		r := c.Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
			return fmt.Errorf("want cpu and memory requests and a memory limit, got %v", r)
		}
		if r.Limits.Memory().Cmp(*r.Requests.Memory()) < 0 {
			return errors.New("memory limit below request")
		}
		return nil
	}},
	{"vault kubernetes login", checkVaultLogin},
	{"disruption budget", func(b *bundle) error {
		s := b.pdb.Spec
		if err := selects(s.Selector, b.podLabels()); err != nil {
			return err
		}
		if s.MinAvailable == nil || s.MinAvailable.IntValue() < 1 || s.MinAvailable.IntValue() >= int(*b.deployment.Spec.Replicas) {
			return fmt.Errorf("minAvailable %v: want at least 1 and below the %d replicas (or drains block)", s.MinAvailable, *b.deployment.Spec.Replicas)
		}
		return nil
	}},
}

// effective returns the container's setting if set, else the pod's.
func effective[T any](container, pod *T) *T {
	if container != nil {
		return container
	}
	return pod
}

func checkSecurityContext(b *bundle) error {
	c, err := b.container()
	if err != nil {
		return err
	}
	pod := b.deployment.Spec.Template.Spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		return errors.New("container has no securityContext")
	}
	var errs []error
	if v := effective(sc.RunAsNonRoot, pod.RunAsNonRoot); v == nil || !*v {
		errs = append(errs, errors.New("runAsNonRoot not true"))
	}
	if v := effective(sc.RunAsUser, pod.RunAsUser); v == nil || *v != 65532 {
		errs = append(errs, errors.New("runAsUser not 65532 (the image's nonroot user)"))
	}
	if v := sc.ReadOnlyRootFilesystem; v == nil || !*v {
		errs = append(errs, errors.New("readOnlyRootFilesystem not true"))
	}
	if v := sc.AllowPrivilegeEscalation; v == nil || *v {
		errs = append(errs, errors.New("allowPrivilegeEscalation not false"))
	}
	if sc.Privileged != nil && *sc.Privileged {
		errs = append(errs, errors.New("privileged"))
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		errs = append(errs, errors.New("capabilities: want drop [ALL] and none added"))
	}
	if v := effective(sc.SeccompProfile, pod.SeccompProfile); v == nil || v.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errs = append(errs, errors.New("seccompProfile not RuntimeDefault"))
	}
	return errors.Join(errs...)
}

// checkVaultLogin requires Kubernetes auth with a role, and a token file
// that is actually mounted: with automounting off, the JWT file must be a
// projected service-account token.
func checkVaultLogin(b *bundle) error {
	c, err := b.container()
	if err != nil {
		return err
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["VAULT_ADDR"] == "" || env["KEYGATE_VAULT_AUTH"] != "kubernetes" || env["KEYGATE_VAULT_K8S_ROLE"] == "" {
		return errors.New("want VAULT_ADDR, KEYGATE_VAULT_AUTH=kubernetes and KEYGATE_VAULT_K8S_ROLE")
	}
	jwt := env["KEYGATE_VAULT_K8S_JWT_FILE"]
	if jwt == "" {
		if p := b.deployment.Spec.Template.Spec.AutomountServiceAccountToken; p != nil && !*p {
			return errors.New("service-account token not mounted and no KEYGATE_VAULT_K8S_JWT_FILE")
		}
		return nil
	}
	for _, m := range c.VolumeMounts {
		for _, v := range b.deployment.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Projected == nil {
				continue
			}
			for _, src := range v.Projected.Sources {
				if t := src.ServiceAccountToken; t != nil && m.MountPath+"/"+t.Path == jwt {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("KEYGATE_VAULT_K8S_JWT_FILE %s is no mounted projected service-account token", jwt)
}
