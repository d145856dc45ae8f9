// Package envoy holds the Envoy configuration users copy; tests validate it
// against Envoy's protos.
//
//   - envoy.yaml: a complete Envoy v3 bootstrap that sends every request to
//     keygate's gRPC Authorization service through the ext_authz HTTP filter;
//   - envoy-http.yaml: the same for keygate's HTTP mode (ext_authz
//     http_service);
//   - ratelimit.yaml and ratelimit-service.yaml: keygate plus global per-key
//     rate limits with envoyproxy/ratelimit, driven by the dynamic metadata
//     keygate returns.
//
// The tests load each bootstrap with go-control-plane's generated types, run
// their validation rules, and check the settings keygate depends on, such as
// failing closed; each check is also shown to fail on a broken copy.
// Kubernetes and Istio configuration is in the istio subdirectory.
//
// nginx/keygate.conf and caddy/Caddyfile put keygate's HTTP mode (GET /auth)
// in front of an API with nginx auth_request and Caddy forward_auth;
// cmd/keygate/proxy_e2e_test.go runs them in real nginx and Caddy
// (installed by scripts/proxies.sh).
package envoy
