package bench

import (
	"bytes"
	"io"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// A stand-in key: not shaped like a real one, so nothing key-like is printed.
const testKey = "bench-test-key-0001"

func TestRequestDecodes(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		r := Request{Key: testKey, Scopes: "orders:read orders:write", LegacyHeaders: legacy}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var req authv3.CheckRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Fatalf("legacy=%v: request does not decode: %v", legacy, err)
		}
		headers := decodedHeaders(&req)
		if n := len(headers); n < 14 || n > 20 {
			t.Errorf("legacy=%v: %d headers, want about 15", legacy, n)
		}
		if headers[KeyHeader] != testKey {
			t.Errorf("legacy=%v: %s = %q, want the key", legacy, KeyHeader, headers[KeyHeader])
		}
		for _, h := range []string{":authority", ":method", ":path", "user-agent", "x-request-id", "x-forwarded-for", "x-b3-traceid"} {
			if headers[h] == "" {
				t.Errorf("legacy=%v: header %s missing", legacy, h)
			}
		}
		checkAttributes(t, &req, legacy)
		if again, _ := r.Marshal(); string(again) != string(b) {
			t.Errorf("legacy=%v: Marshal is not deterministic", legacy)
		}
	}
}

func decodedHeaders(req *authv3.CheckRequest) map[string]string {
	http := req.GetAttributes().GetRequest().GetHttp()
	headers := map[string]string{}
	for k, v := range http.GetHeaders() {
		headers[k] = v
	}
	for _, h := range http.GetHeaderMap().GetHeaders() {
		headers[h.GetKey()] = string(h.GetRawValue())
	}
	return headers
}

func checkAttributes(t *testing.T, req *authv3.CheckRequest, legacy bool) {
	t.Helper()
	a := req.GetAttributes()
	if got := a.GetContextExtensions()[ScopesExtension]; got != "orders:read orders:write" {
		t.Errorf("legacy=%v: context extension %s = %q", legacy, ScopesExtension, got)
	}
	if a.GetSource().GetAddress().GetSocketAddress().GetAddress() == "" || a.GetDestination().GetAddress().GetSocketAddress().GetPortValue() == 0 {
		t.Errorf("legacy=%v: source/destination addresses missing: %v", legacy, a)
	}
	http := a.GetRequest().GetHttp()
	if http.GetMethod() != "GET" || !strings.HasPrefix(http.GetPath(), "/orders/") || http.GetHost() == "" {
		t.Errorf("legacy=%v: method/path/host = %q %q %q", legacy, http.GetMethod(), http.GetPath(), http.GetHost())
	}
	if legacy != (http.GetHeaderMap() == nil) {
		t.Errorf("legacy=%v: header_map set = %v", legacy, http.GetHeaderMap() != nil)
	}
}

func TestProtosetHasCheck(t *testing.T) {
	b, err := Protoset()
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set) // fails if a dependency is missing
	if err != nil {
		t.Fatalf("protoset does not resolve: %v", err)
	}
	svc, method, _ := strings.Cut(CheckMethod, "/")
	d, err := files.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		t.Fatalf("service %s: %v", svc, err)
	}
	if d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method)) == nil {
		t.Errorf("method %s missing", CheckMethod)
	}
}

// ghzMessages approximates how ghz reads a -B file: count-delimited
// messages until the data runs out, else (on an error) one plain message.
// (ghz's decoder is more lenient than this one, which is how it mangles
// plain files; a framed file reads as one message under either.)
func ghzMessages(data []byte) [][]byte {
	var msgs [][]byte
	for rest := data; ; {
		m, n := protowire.ConsumeBytes(rest)
		if n < 0 {
			if protowire.ParseError(n) == io.ErrUnexpectedEOF && len(msgs) > 0 {
				return msgs
			}
			return [][]byte{data}
		}
		if err := proto.Unmarshal(m, &authv3.CheckRequest{}); err != nil {
			return [][]byte{data}
		}
		msgs, rest = append(msgs, m), rest[n:]
	}
}

func TestGhzFileIsOneMessage(t *testing.T) {
	for _, scopes := range []string{"orders:read", "orders:admin", "", "a b c d e f g"} {
		msg, err := Request{Key: testKey, Scopes: scopes}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got := ghzMessages(GhzFile(msg))
		if len(got) != 1 || !bytes.Equal(got[0], msg) {
			t.Errorf("scopes %q: ghz would read %d message(s) from the framed file, want exactly the request", scopes, len(got))
		}
	}
}
