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
	"google.golang.org/protobuf/proto"
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

// dialGRPC serves e's Server over bufconn with its GRPCOptions, registered
// by register, and returns a client that may send large messages.
func dialGRPC(t *testing.T, e *env, register func(g *grpc.Server)) authv3.AuthorizationClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer(e.srv.GRPCOptions()...)
	register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// sized is an allowed request for testKey padded to exactly n encoded bytes.
func sized(t *testing.T, n int) *authv3.CheckRequest {
	t.Helper()
	pad := func(k int) *authv3.CheckRequest {
		return newReq().key(testKey).header("x-pad", strings.Repeat("a", k)).build()
	}
	base := proto.Size(pad(0))
	for k := max(n-base-64, 0); k <= n-base; k++ {
		if req := pad(k); proto.Size(req) == n {
			return req
		}
	}
	t.Fatalf("no padding makes a request of %d bytes", n)
	return nil
}

// TestGRPCTooLarge: over gRPC, a CheckRequest over MaxRequestBytes is an
// explicit 413 deny (an error would be an allow where Envoy fails open),
// one of exactly MaxRequestBytes is decided as usual, and the connection
// keeps working, whether the Server is registered with Register (the lean
// decoder) or as the generated Authorization service (the full one).
// Past the transport limit (far beyond what Envoy sends) gRPC refuses it.
func TestGRPCTooLarge(t *testing.T) {
	const limit = 16 << 10
	for _, reg := range []struct {
		name     string
		register func(e *env) func(g *grpc.Server)
	}{
		{"Register", func(e *env) func(g *grpc.Server) { return e.srv.Register }},
		{"generated service", func(e *env) func(g *grpc.Server) {
			return func(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, e.srv) }
		}},
	} {
		t.Run(reg.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.MaxRequestBytes = limit })
			client := dialGRPC(t, e, reg.register(e))
			for _, tc := range []struct {
				name string
				req  *authv3.CheckRequest
				want string
			}{
				{"well within the limit", sized(t, 15<<10), "allowed"},
				{"exactly the limit", sized(t, limit), "allowed"},
				{"one byte over the limit", sized(t, limit+1), "request_too_large"},
				{"over the limit", sized(t, 17<<10), "request_too_large"},
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
			_, err := client.Check(context.Background(), sized(t, e.srv.cfg.GRPCTransportLimit()+1))
			if status.Code(err) != codes.ResourceExhausted {
				t.Errorf("past the transport limit: %v, want RESOURCE_EXHAUSTED", err)
			}
		})
	}
}

// TestGRPCTransportLimit: gRPC accepts messages up to twice
// MaxRequestBytes (at least 4 MiB), so that every request over
// MaxRequestBytes Envoy could send reaches the codec and gets its 413.
func TestGRPCTransportLimit(t *testing.T) {
	for _, tc := range []struct{ max, want int }{
		{16 << 10, 4 << 20},
		{2 << 20, 4 << 20},
		{3 << 20, 6 << 20},
		{maxRequestLimit, 2 * maxRequestLimit},
	} {
		c := DefaultConfig()
		c.MaxRequestBytes = tc.max
		if got := c.GRPCTransportLimit(); got != tc.want {
			t.Errorf("MaxRequestBytes %d: GRPCTransportLimit %d, want %d", tc.max, got, tc.want)
		}
	}

	e := newEnv(t, func(c *Config) { c.MaxRequestBytes = 3 << 20 })
	client := dialGRPC(t, e, e.srv.Register)
	resp, err := client.Check(context.Background(), sized(t, 6<<20))
	if err != nil {
		t.Fatalf("a request of twice MaxRequestBytes: %v, want a 413 deny", err)
	}
	checkInvariants(t, resp)
	if got := outcome(resp); got != "request_too_large" {
		t.Errorf("a request of twice MaxRequestBytes: outcome %q, want request_too_large", got)
	}
}
