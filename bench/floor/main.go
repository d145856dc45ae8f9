// Command floor is the benchmark's floor: the least an Envoy ext_authz Check
// server must do. It decodes the CheckRequest, reads one header (x-api-key,
// from the headers map or Envoy's raw header_map), looks it up in a map of
// valid keys and answers OK with one header, or a plain 401 deny. keygate is
// measured against it (see BENCHMARKS.md).
//
//	floor --addr 127.0.0.1:9292 --keys keys.txt   # one key per line
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const keyHeader = "x-api-key"

type server struct {
	authv3.UnimplementedAuthorizationServer
	users map[string]string // key -> user name
	// same, if set, is the allow response to send instead of the one-header
	// answer: with keygate's own response (--response) the floor shows what
	// the response content costs, apart from keygate's logic.
	same *authv3.CheckResponse
}

func (s *server) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	user, ok := s.users[apiKey(req.GetAttributes().GetRequest().GetHttp())]
	if ok && s.same != nil {
		return s.same, nil
	}
	if !ok {
		return &authv3.CheckResponse{
			Status:       &status.Status{Code: int32(code.Code_UNAUTHENTICATED)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized}}},
		}, nil
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-user", Value: user}}},
		}},
	}, nil
}

// apiKey reads x-api-key from the headers map, else from header_map.
func apiKey(http *authv3.AttributeContext_HttpRequest) string {
	if k, ok := http.GetHeaders()[keyHeader]; ok {
		return k
	}
	for _, h := range http.GetHeaderMap().GetHeaders() {
		if h.GetKey() == keyHeader {
			if raw := h.GetRawValue(); len(raw) > 0 {
				return string(raw)
			}
			return h.GetValue()
		}
	}
	return ""
}

func loadKeys(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	users := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			users[k] = "user-" + strconv.Itoa(len(users)+1)
		}
	}
	return users, sc.Err()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9292", "gRPC listen address")
	keys := flag.String("keys", "", "file with one valid key per line (required)")
	response := flag.String("response", "", "optional: answer valid keys with this CheckResponse (JSON, e.g. from `keygate check --json`)")
	flag.Parse()
	if err := run(*addr, *keys, *response); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
}

func run(addr, keysPath, responsePath string) error {
	if keysPath == "" {
		return fmt.Errorf("--keys: required")
	}
	users, err := loadKeys(keysPath)
	if err != nil {
		return fmt.Errorf("--keys: %w", err)
	}
	srv := &server{users: users}
	if responsePath != "" {
		b, err := os.ReadFile(responsePath)
		if err != nil {
			return fmt.Errorf("--response: %w", err)
		}
		srv.same = &authv3.CheckResponse{}
		if err := protojson.Unmarshal(b, srv.same); err != nil {
			return fmt.Errorf("--response %s: %w", responsePath, err)
		}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, srv)
	healthpb.RegisterHealthServer(g, health.NewServer()) // SERVING
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); g.Stop() }()
	fmt.Fprintf(os.Stderr, "floor: serving on %s with %d keys\n", lis.Addr(), len(users))
	return g.Serve(lis)
}
