// Package envoy holds the Envoy configuration users copy; tests validate it
// against Envoy's protos.
//
// envoy.yaml is a complete Envoy v3 bootstrap that sends every request to
// keygate through the ext_authz HTTP filter. The tests load it with
// go-control-plane's generated types, run their validation rules, and check
// the settings keygate depends on, such as failing closed.
package envoy
