package extauthz

import (
	"context"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// leanCfg is the configuration the differential tests decode with.
func leanCfg() *Config {
	c := DefaultConfig()
	return &c
}

// leanSeeds are CheckRequests as Envoy sends them, and the shapes the
// decoders must agree on: header_map with raw values, duplicates, case
// variants, pseudo-headers, other oneof members, no attributes at all.
func leanSeeds() []*authv3.CheckRequest {
	reqs := []*authv3.CheckRequest{
		{},
		{Attributes: &authv3.AttributeContext{}},
		newReq().key(testKey).build(),
		newReq().key(testKey).scopes("orders:read orders:write").path("/v1/orders?x=1").host("api.example.com:8443").method("POST").build(),
		newReq().raw("x-api-key", []byte(testKey)).raw("origin", []byte("https://app.example.com")).build(),
		newReq().mapValue("x-api-key", testKey).mapValue("X-Request-Id", "r1").mapValue(":authority", "a.example.com").build(),
		newReq().key(testKey).header("authorization", "Bearer "+testKey).build(),
		newReq().key(testKey).header("authorization", "Basic abc").header("x-keygate-tenant", "evil").header("x_api_key", "x").build(),
		newReq().raw("origin", []byte("https://a.example.com")).raw("origin", []byte("https://b.example.com")).key(testKey).build(),
		newReq().mapValue("x-request-id", "a").mapValue("x-request-id", "b").mapValue("x-request-id", "").build(),
		newReq().host("").mapValue(":authority", "a.example.com").mapValue(":authority", "b.example.com").key(testKey).build(),
		newReq().header("Origin", "https://a.example.com").header("origin", "https://b.example.com").key(testKey).build(),
		newReq().key("kg_a,kg_b").build(),
		newReq().key(" ").header("authorization", "ApiKey "+testKey).build(),
		newReq().source("::ffff:10.0.0.1").key(testKey).build(),
	}
	pipe := newReq().key(testKey).build()
	pipe.Attributes.Source.Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/tmp/s"}}}
	reqs = append(reqs, pipe)
	noHTTP := newReq().build()
	noHTTP.Attributes.Request = &authv3.AttributeContext_Request{}
	reqs = append(reqs, noHTTP)
	return reqs
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// normalized makes two incomings comparable: the order of the header
// names readRequest collects follows Go's map order, which is random.
func normalized(in incoming) incoming {
	in.spoofed, in.underscored = slices.Clone(in.spoofed), slices.Clone(in.underscored)
	slices.Sort(in.spoofed)
	slices.Sort(in.underscored)
	if len(in.spoofed) == 0 {
		in.spoofed = nil
	}
	if len(in.underscored) == 0 {
		in.underscored = nil
	}
	return in
}

// agree checks the lean decoder against the full one on b: wherever the
// full decoder accepts b, the lean one either gives up (the full one then
// decides) or reads exactly what readRequest reads.
func agree(t *testing.T, b []byte, mustRead bool) {
	t.Helper()
	cfg := leanCfg()
	var req authv3.CheckRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		return // the full decoder rejects it: the lean one's answer is not compared
	}
	lean, ok := decodeLeanSafe(slices.Clone(b), cfg)
	if !ok {
		if mustRead {
			t.Errorf("the lean decoder gave up on a request Envoy sends")
		}
		return
	}
	full := readRequest(&req, cfg)
	if diff := cmp.Diff(normalized(full), normalized(lean), cmp.AllowUnexported(incoming{})); diff != "" {
		t.Errorf("lean and full decoders disagree (-full +lean):\n%s", diff)
	}
}

func TestLeanDecoderAgrees(t *testing.T) {
	seeds := leanSeeds()
	for i, r := range seeds {
		b := marshal(t, r)
		agree(t, b, true)
		// Concatenated encodings are one message merged: fields repeated,
		// sub-messages merged, map keys and oneof members overwritten.
		for _, o := range seeds[:i] {
			agree(t, append(slices.Clone(b), marshal(t, o)...), true)
		}
	}
}

// TestLeanDecoderOneof: a socket address, then a pipe, then a socket
// address without an address field: the oneof starts over, so the source
// is empty, not the first address.
func TestLeanDecoderOneof(t *testing.T) {
	first := marshal(t, newReq().key(testKey).source("10.9.9.9").build())
	pipe := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{
		Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/s"}}}}}}
	portOnly := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 1}}}}}}}
	b := append(append(first, marshal(t, pipe)...), marshal(t, portOnly)...)
	agree(t, b, true)
	if in, _ := decodeLean(b, leanCfg()); in.source != "" {
		t.Errorf("source %q, want none", in.source)
	}
}

// TestLeanDecoderGivesUp: what the lean decoder cannot read with certainty
// is left to the full decoder, never guessed.
func TestLeanDecoderGivesUp(t *testing.T) {
	valid := marshal(t, newReq().key(testKey).build())
	tests := map[string][]byte{
		"truncated":              valid[:len(valid)-3],
		"bad varint":             {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"group":                  protowire.AppendTag(nil, 7, protowire.StartGroupType),
		"attributes as a varint": protowire.AppendVarint(protowire.AppendTag(nil, fCheckAttributes, protowire.VarintType), 1),
		"field number 0":         {0x02, 0x00},
		"path not UTF-8": marshalRaw(t, func(h []byte) []byte {
			return protowire.AppendBytes(protowire.AppendTag(h, fHTTPPath, protowire.BytesType), []byte{0xff, 0xfe})
		}),
	}
	for name, b := range tests {
		if _, ok := decodeLeanSafe(b, leanCfg()); ok {
			t.Errorf("%s: the lean decoder read it", name)
		}
		agree(t, b, false)
	}
}

// marshalRaw builds a CheckRequest whose HttpRequest is the bytes http
// appends, wrapped in Request and AttributeContext.
func marshalRaw(t *testing.T, http func([]byte) []byte) []byte {
	t.Helper()
	wrap := func(num protowire.Number, inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
	}
	return wrap(fCheckAttributes, wrap(fAttrRequest, wrap(fRequestHTTP, http(nil))))
}

// TestDuplicateSingleHeaders: a header that should appear once, sent twice
// with different values, is ambiguous whatever the order: origin, referer
// and :authority match nothing (a key restricting them is denied), the
// request id is dropped.
func TestDuplicateSingleHeaders(t *testing.T) {
	cfg := leanCfg()
	for _, order := range [][2]string{{"https://a.example.com", "https://b.example.com"}, {"https://b.example.com", "https://a.example.com"}} {
		in := readRequest(newReq().key(testKey).raw("origin", []byte(order[0])).raw("origin", []byte(order[1])).build(), cfg)
		if in.origin != ambiguous {
			t.Errorf("two origins %v: %q, want ambiguous", order, in.origin)
		}
	}
	in := readRequest(newReq().key(testKey).raw("origin", []byte("https://a.example.com")).raw("origin", []byte("https://a.example.com")).build(), cfg)
	if in.origin != "https://a.example.com" {
		t.Errorf("the same origin twice: %q", in.origin)
	}
	in = readRequest(newReq().key(testKey).host("").mapValue(":authority", "a.example.com").mapValue(":authority", "b.example.com").build(), cfg)
	if in.host != ambiguous {
		t.Errorf("two :authority: %q, want ambiguous", in.host)
	}
	in = readRequest(newReq().key(testKey).host("api.example.com").mapValue(":authority", "b.example.com").build(), cfg)
	if in.host != "api.example.com" {
		t.Errorf("host attribute and another :authority: %q, want the attribute", in.host)
	}
}

// leanSeedBytes are FuzzLeanDecoder's seeds: each of leanSeeds encoded,
// and each appended to the one before (one message, merged).
func leanSeedBytes() [][]byte {
	seeds := leanSeeds()
	var out [][]byte
	for i, r := range seeds {
		b, _ := proto.Marshal(r)
		out = append(out, b)
		if i > 0 {
			prev, _ := proto.Marshal(seeds[i-1])
			out = append(out, append(b, prev...))
		}
	}
	return out
}

// FuzzLeanDecoder: on any bytes the full decoder accepts, the lean decoder
// reads exactly what readRequest reads, or gives up, and Check decides the
// same either way. It never panics (decodeLeanSafe would hide a panic: the
// fuzzer calls decodeLean).
func FuzzLeanDecoder(f *testing.F) {
	for _, b := range leanSeedBytes() {
		f.Add(b)
	}
	l := newLeanFuzz(f)
	f.Fuzz(func(t *testing.T, b []byte) { l.decide(t, b) })
}

// leanFuzz decides FuzzLeanDecoder's inputs with a server that knows
// testKey and loads the routes file.
type leanFuzz struct{ e *env }

func newLeanFuzz(t testing.TB) *leanFuzz {
	e := newEnv(t, withRoutes(t))
	e.srv.OnDecision = nil
	return &leanFuzz{e: e}
}

// decide checks FuzzLeanDecoder's properties on b; its class is Check's
// outcome for the fully decoded request ("undecodable" if there is none).
func (l *leanFuzz) decide(t *testing.T, b []byte) string {
	decodeLean(slices.Clone(b), leanCfg()) // must not panic
	agree(t, b, false)
	var req authv3.CheckRequest
	if proto.Unmarshal(b, &req) != nil {
		return "undecodable"
	}
	ctx := context.Background()
	full, err := l.e.srv.Check(ctx, &req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	got := outcome(full)
	lb := slices.Clone(b)
	if in, ok := decodeLeanSafe(lb, &l.e.srv.cfg); ok {
		// As the gRPC handler decides on it, answering with the plain
		// responder (the wire one's messages are pre-encoded).
		if lean := outcome(l.e.srv.check(ctx, nil, &leanRequest{in: in}, &l.e.srv.plain)); lean != got {
			t.Fatalf("Check decides %s on the lean decoder's reading, %s on the full one's", lean, got)
		}
	}
	return got
}
