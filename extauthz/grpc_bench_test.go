package extauthz

import (
	"context"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// floorServer does only what every ext_authz server must: read one header,
// look it up, answer OK with one header. BenchmarkGRPCCheck compares
// keygate with it over real gRPC on loopback, client in the same process:
// the client's cost is the same for both, so the difference is keygate's.
type floorServer struct {
	authv3.UnimplementedAuthorizationServer
	keys map[string]string
}

func (f *floorServer) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	var key string
	for _, h := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
		if h.GetKey() == "x-api-key" {
			key = string(h.GetRawValue())
			break
		}
	}
	user, ok := f.keys[key]
	if !ok {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 16}}, nil
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-user", Value: user}}},
		}},
	}, nil
}

func BenchmarkGRPCCheck(b *testing.B) {
	e := benchEnv(b)
	req := sidecarRawRequest(testKey)
	kgResp, err := e.srv.Check(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	servers := []struct {
		name string
		srv  authv3.AuthorizationServer
		opts []grpc.ServerOption
	}{
		{"keygate", e.srv, e.srv.GRPCOptions()}, // as keygate serve registers it: the lean decoder, wireServer
		{"floor", &floorServer{keys: map[string]string{testKey: "acme"}}, nil},
		// the floor answering with keygate's response: what the response
		// content (identity headers, metadata, removals) costs by itself
		{"floor-same-response", fixedServer{resp: kgResp}, nil},
	}
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			client := startGRPC(b, s.srv, s.opts...)
			b.ReportAllocs()
			b.SetParallelism(32) // 64 concurrent calls on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					resp, err := client.Check(ctx, req)
					if err != nil || resp.GetStatus().GetCode() != 0 {
						b.Fatalf("Check: %v %v", resp.GetStatus(), err)
					}
				}
			})
		})
	}
}

type fixedServer struct {
	authv3.UnimplementedAuthorizationServer
	resp *authv3.CheckResponse
}

func (f fixedServer) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	for _, h := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
		if h.GetKey() == "x-api-key" {
			break
		}
	}
	return f.resp, nil
}

func startGRPC(b *testing.B, srv authv3.AuthorizationServer, opts ...grpc.ServerOption) authv3.AuthorizationClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	if s, ok := srv.(*Server); ok {
		s.Register(g)
	} else {
		authv3.RegisterAuthorizationServer(g, srv)
	}
	go g.Serve(lis)
	b.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}
