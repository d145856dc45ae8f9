package extauthz

import (
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
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

// TestResponderChosenAtEntry: the gRPC service answers with the
// pre-encoded responses (their fixed parts are unknown-field bytes, nothing
// left for gRPC to encode), Check with plain messages. Either mixed up
// still decodes the same (TestWireResponseMatchesCheck), so only this
// catches a lost encoding saving.
func TestResponderChosenAtEntry(t *testing.T) {
	e := newEnv(t)
	sent := make(chan *authv3.CheckResponse, 1)
	g := grpc.NewServer(append(e.srv.GRPCOptions(), grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		sent <- resp.(*authv3.CheckResponse)
		return resp, err
	}))...)
	e.srv.Register(g)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)

	for name, req := range map[string]*authv3.CheckRequest{
		"allow": newReq().key(testKey).build(),
		"deny":  newReq().key(otherKey).build(),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := client.Check(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			wire := <-sent
			if !preEncodedResponse(wire) {
				t.Errorf("gRPC sent a response with its fixed parts as messages: %v", wire)
			}
			plain, _ := e.srv.Check(context.Background(), req)
			if preEncodedResponse(plain) {
				t.Errorf("Check returned encoded bytes, not messages: %v", plain)
			}
		})
	}
}

// preEncodedResponse reports whether resp carries its headers and dynamic
// metadata (allow) or everything (deny) as encoded bytes.
func preEncodedResponse(resp *authv3.CheckResponse) bool {
	if ok := resp.GetOkResponse(); ok != nil {
		return len(ok.GetHeaders()) == 0 && len(ok.ProtoReflect().GetUnknown()) > 0 &&
			resp.GetDynamicMetadata() == nil && len(resp.ProtoReflect().GetUnknown()) > 0
	}
	return resp.GetStatus() == nil && resp.GetHttpResponse() == nil && len(resp.ProtoReflect().GetUnknown()) > 0
}

// BenchmarkCheckMarshal is a cache-hit allow decided and encoded, per entry
// point: the server's share of a gRPC Check without the transport, whose
// cost and noise dominate BenchmarkGRPCCheck.
func BenchmarkCheckMarshal(b *testing.B) {
	e := benchEnv(b)
	req := sidecarRawRequest(testKey)
	for name, srv := range map[string]authv3.AuthorizationServer{"plain": e.srv, "wire": wireServer{s: e.srv}} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, _ := srv.Check(ctx, req)
				if _, err := proto.Marshal(resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
