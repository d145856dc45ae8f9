// Package bench holds the pieces of keygate's side-by-side benchmark
// (`make bench`, see BENCHMARKS.md) that need no running server: realistic
// CheckRequests, the protoset ghz loads, latency statistics, the result
// table and the SVG chart. The harness itself is bench/cmd/kgbench; the
// floor server it compares keygate with is bench/floor.
package bench

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// KeyHeader carries the key in every benchmark request, as keygate's and
// the floor's default.
const KeyHeader = "x-api-key"

// ScopesExtension is the context extension naming the route's scopes.
const ScopesExtension = "keygate.scopes"

// Request describes one benchmark CheckRequest.
type Request struct {
	Key    string // the raw API key, sent in x-api-key
	Scopes string // the route's required scopes (context_extensions), space-separated
	// LegacyHeaders sends the headers in the legacy `headers` string map
	// instead of `header_map` with raw values (Envoy's encode_raw_headers,
	// which envoy/envoy.yaml turns on).
	LegacyHeaders bool
}

// Headers is the header set a sidecar forwards for a typical API call: 16
// headers including the pseudo-headers and the key.
func (r Request) Headers() [][2]string {
	return [][2]string{
		{":authority", "api.example.com"},
		{":method", "GET"},
		{":path", "/orders/7?expand=items"},
		{":scheme", "https"},
		{"user-agent", "orders-client/2.3.1 (linux; go1.26)"},
		{"accept", "application/json"},
		{"accept-encoding", "gzip, deflate, br"},
		{"accept-language", "en-US,en;q=0.9"},
		{"x-request-id", "6f1c2a9e-0b7d-4c3e-9a51-2d8e4f7b1c30"},
		{"x-forwarded-for", "203.0.113.7, 10.1.2.3"},
		{"x-forwarded-proto", "https"},
		{"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"},
		{"x-b3-spanid", "e457b5a2e4d86bd1"},
		{"x-b3-parentspanid", "05e3ac9a4f6e3b90"},
		{"x-b3-sampled", "1"},
		{KeyHeader, r.Key},
	}
}

// Check builds the CheckRequest Envoy sends for r.
func (r Request) Check() *authv3.CheckRequest {
	http := &authv3.AttributeContext_HttpRequest{
		Id:       "13287594061251658221",
		Method:   "GET",
		Path:     "/orders/7?expand=items",
		Host:     "api.example.com",
		Scheme:   "https",
		Protocol: "HTTP/2",
	}
	if r.LegacyHeaders {
		http.Headers = map[string]string{}
		for _, h := range r.Headers() {
			http.Headers[h[0]] = h[1]
		}
	} else {
		http.HeaderMap = &corev3.HeaderMap{}
		for _, h := range r.Headers() {
			http.HeaderMap.Headers = append(http.HeaderMap.Headers, &corev3.HeaderValue{Key: h[0], RawValue: []byte(h[1])})
		}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      peer("10.1.2.3", 52814),
		Destination: peer("10.1.9.4", 8080),
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)),
			Http: http,
		},
		ContextExtensions: map[string]string{ScopesExtension: r.Scopes},
	}}
}

func peer(ip string, port uint32) *authv3.AttributeContext_Peer {
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}},
	}}}
}

// Marshal encodes r's CheckRequest (deterministically, so the same Request
// always gives the same bytes).
func (r Request) Marshal() ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r.Check())
	if err != nil {
		return nil, fmt.Errorf("marshal CheckRequest: %w", err)
	}
	return b, nil
}

// GhzFile frames an encoded request for ghz -B as one count-delimited
// message (a varint length, then the bytes). ghz first tries to read a -B
// file as a sequence of count-delimited messages and uses the file as one
// plain message only if that fails; a plain CheckRequest often "succeeds"
// as a delimited sequence of fragments, and ghz then sends those fragments
// (a CheckRequest without the key) instead of the request. Framed, the
// file always reads as exactly this one message.
func GhzFile(msg []byte) []byte {
	return append(protowire.AppendVarint(nil, uint64(len(msg))), msg...)
}
