package extauthz

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// What gRPC sends (pre-encoded metadata) decodes to exactly what Check
// returns in-process.
func TestWireResponseMatchesCheck(t *testing.T) {
	e := newEnv(t)
	k2, _ := e.newKey(nil)
	reqs := map[string]*authv3.CheckRequest{
		"allow":          newReq().key(testKey).build(),
		"allow spoofed":  newReq().key(testKey).header("x-keygate-tenant", "evil").header("x-keygate-x", "1").build(),
		"allow raw":      sidecarRawRequest(k2),
		"deny malformed": newReq().key("kg_nope").build(),
		"deny scope":     newReq().key(testKey).scopes("admin").build(),
	}
	for name, req := range reqs {
		t.Run(name, func(t *testing.T) {
			want, err := e.srv.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			sent, err := wireServer{s: e.srv}.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := proto.Marshal(sent)
			if err != nil {
				t.Fatal(err)
			}
			var got authv3.CheckResponse
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, &got, protocmp.Transform()); diff != "" {
				t.Errorf("wire response differs from Check's (-Check +wire):\n%s", diff)
			}
			if len(got.ProtoReflect().GetUnknown()) != 0 {
				t.Error("wire response decodes with unknown fields")
			}
		})
	}
}

// BenchmarkAllowMarshal is the encoding of one allow response, as Check
// returns it and as gRPC sends it.
func BenchmarkAllowMarshal(b *testing.B) {
	e := benchEnv(b)
	req := sidecarRawRequest(testKey)
	for name, srv := range map[string]authv3.AuthorizationServer{"struct": e.srv, "wire": wireServer{s: e.srv}} {
		b.Run(name, func(b *testing.B) {
			resp, _ := srv.Check(context.Background(), req)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := proto.Marshal(resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
