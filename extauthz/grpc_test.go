package extauthz

import (
	"context"
	"net"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// TestGRPCTransport runs Check through a real gRPC server and client.
func TestGRPCTransport(t *testing.T) {
	e := newEnv(t)
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer(e.srv.GRPCOptions()...)
	e.srv.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	defer func() {
		g.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	ctx := context.Background()

	tests := []struct {
		name       string
		req        *authv3.CheckRequest
		wantCode   codes.Code
		wantStatus int32 // HTTP status of a deny
	}{
		{"allow", newReq().key(testKey).header("x-keygate-tenant", "evil").build(), codes.OK, 0},
		{"deny unknown", newReq().key(otherKey).build(), codes.Unauthenticated, 401},
		{"deny scope", newReq().key(testKey).scopes("admin").build(), codes.PermissionDenied, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Check(ctx, tc.req)
			if err != nil {
				t.Fatalf("Check over gRPC: %v", err)
			}
			checkInvariants(t, resp)
			if got := codes.Code(resp.GetStatus().GetCode()); got != tc.wantCode {
				t.Errorf("status code %v, want %v", got, tc.wantCode)
			}
			if tc.wantCode == codes.OK {
				if headerSet(resp)["x-keygate-tenant"] != "acme" || !removed(resp)["x-api-key"] {
					t.Errorf("allow over gRPC: %v", resp)
				}
				return
			}
			if got := int32(resp.GetDeniedResponse().GetStatus().GetCode()); got != tc.wantStatus {
				t.Errorf("HTTP status %d, want %d", got, tc.wantStatus)
			}
		})
	}
}

// TestGRPCTooLarge: over gRPC, a CheckRequest over MaxRequestBytes is an
// explicit 413 deny (an error would be an allow where Envoy fails open),
// one within it is decided as usual, and the connection keeps working.
// Past the transport limit (far beyond what Envoy sends) gRPC refuses it.
func TestGRPCTooLarge(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRequestBytes = 16 << 10 })
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer(e.srv.GRPCOptions()...)
	e.srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	pad := func(n int) *authv3.CheckRequest {
		return newReq().key(testKey).header("x-pad", strings.Repeat("a", n)).build()
	}
	for _, tc := range []struct {
		name string
		req  *authv3.CheckRequest
		want string
	}{
		{"within the limit", pad(15 << 10), "allowed"},
		{"over the limit", pad(17 << 10), "request_too_large"},
		{"a second credential past the limit", newReq().key(testKey).header("x-pad", strings.Repeat("a", 17<<10)).header("authorization", "Bearer "+otherKey).build(), "request_too_large"},
		{"the connection still works", newReq().key(testKey).build(), "allowed"},
	} {
		resp, err := client.Check(context.Background(), tc.req)
		if err != nil {
			t.Fatalf("%s: Check over gRPC: %v", tc.name, err)
		}
		checkInvariants(t, resp)
		if got := outcome(resp); got != tc.want {
			t.Errorf("%s: outcome %q, want %q", tc.name, got, tc.want)
		}
		if tc.want == "request_too_large" && resp.GetDeniedResponse().GetStatus().GetCode() != 413 {
			t.Errorf("%s: HTTP status %v, want 413", tc.name, resp.GetDeniedResponse().GetStatus().GetCode())
		}
	}
	_, err = client.Check(context.Background(), pad(e.srv.cfg.GRPCTransportLimit()))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("past the transport limit: %v, want RESOURCE_EXHAUSTED", err)
	}
}
