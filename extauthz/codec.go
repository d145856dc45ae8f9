package extauthz

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	// The proto codec registers itself; its name is "proto".
	_ "google.golang.org/grpc/encoding/proto"
)

// codec is gRPC's proto codec, except that a CheckRequest over
// Config.MaxRequestBytes is not decoded: it becomes a request whose
// attributes are the server's tooLarge marker, which Check answers with an
// explicit 413 deny. gRPC's own size limit would answer with an error
// instead, which Envoy turns into an allow where failure_mode_allow is set.
type codec struct {
	encoding.CodecV2
	limit    int
	tooLarge *authv3.AttributeContext
	cfg      *Config
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch req := v.(type) {
	case *authv3.CheckRequest:
		if data.Len() > c.limit {
			req.Attributes = c.tooLarge // a pointer no decoded message can hold
			return nil
		}
	case *leanRequest:
		if data.Len() > c.limit {
			req.tooLarge = true
			return nil
		}
		// A copy of its own: data's buffers go back to gRPC's pool when
		// Unmarshal returns, and the decoded strings share these bytes.
		b := data.Materialize()
		if in, ok := decodeLeanSafe(b, c.cfg); ok {
			req.in = in
			return nil
		}
		req.full = new(authv3.CheckRequest)
		return c.CodecV2.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, req.full)
	}
	return c.CodecV2.Unmarshal(data, v)
}

// leanRequest is what the gRPC Check handler decodes a CheckRequest into:
// what readRequest would read (decodeLean), or, when the lean decoder
// cannot be certain, the fully decoded message.
type leanRequest struct {
	in       incoming
	full     *authv3.CheckRequest // non-nil: decoded fully
	tooLarge bool                 // over Config.MaxRequestBytes: not decoded
}

// decodeLeanSafe is decodeLean, with a panic (a bug: it never should)
// turned into a give-up, so that the full decoder decides instead of the
// process dying.
func decodeLeanSafe(b []byte, cfg *Config) (in incoming, ok bool) {
	defer func() {
		if recover() != nil {
			in, ok = incoming{}, false
		}
	}()
	return decodeLean(b, cfg)
}

// GRPCOptions are the options a gRPC server serving s needs: the codec
// that turns oversized CheckRequests into denies, and a message size limit
// above Config.MaxRequestBytes so that they reach it.
func (s *Server) GRPCOptions() []grpc.ServerOption {
	c := codec{CodecV2: encoding.GetCodecV2("proto"), limit: s.cfg.MaxRequestBytes, tooLarge: s.tooLarge, cfg: &s.cfg}
	return []grpc.ServerOption{grpc.ForceServerCodecV2(c), grpc.MaxRecvMsgSize(s.cfg.GRPCTransportLimit())}
}

// checkService is envoy.service.auth.v3.Authorization as the generated
// code describes it, except that Check's request is decoded into a
// leanRequest (by the codec) rather than a generated CheckRequest.
var checkService = grpc.ServiceDesc{
	ServiceName: "envoy.service.auth.v3.Authorization",
	HandlerType: (*leanChecker)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: leanCheckHandler}},
	Streams:     []grpc.StreamDesc{},
	Metadata:    "envoy/service/auth/v3/external_auth.proto",
}

// leanChecker is what checkService's handler calls.
type leanChecker interface {
	checkLean(ctx context.Context, req *leanRequest) *authv3.CheckResponse
}

const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

func leanCheckHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	req := new(leanRequest)
	if err := dec(req); err != nil {
		return nil, err
	}
	c := srv.(leanChecker)
	if interceptor == nil {
		return c.checkLean(ctx, req), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: checkMethod}
	return interceptor(ctx, req, info, func(ctx context.Context, r any) (any, error) {
		return c.checkLean(ctx, r.(*leanRequest)), nil
	})
}
