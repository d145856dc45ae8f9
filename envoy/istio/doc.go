// Package istio holds the Kubernetes and Istio configuration users copy to
// run keygate as an Istio ext_authz provider; tests decode it strictly into
// the Kubernetes and Istio API types and check that the pieces fit together.
//
//   - keygate.yaml: Namespace, ServiceAccount, Deployment, Service,
//     PodDisruptionBudget and NetworkPolicy for keygate itself;
//   - mesh-config.yaml: the meshConfig extension providers (gRPC and HTTP);
//   - authorization-policy.yaml: the CUSTOM AuthorizationPolicy that sends
//     labelled workloads' requests to keygate;
//   - strip-headers.yaml: the EnvoyFilter that drops client-sent keygate
//     and record headers from those workloads' requests on every path, and
//     rejects header names with underscores.
package istio
