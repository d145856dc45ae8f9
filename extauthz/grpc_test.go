package extauthz

import (
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// TestGRPCTransport runs Check through a real gRPC server and client.
func TestGRPCTransport(t *testing.T) {
	e := newEnv(t)
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
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
