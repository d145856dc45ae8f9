package extauthz

import (
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
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if req, ok := v.(*authv3.CheckRequest); ok && data.Len() > c.limit {
		req.Attributes = c.tooLarge // a pointer no decoded message can hold
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// GRPCOptions are the options a gRPC server serving s needs: the codec
// that turns oversized CheckRequests into denies, and a message size limit
// above Config.MaxRequestBytes so that they reach it.
func (s *Server) GRPCOptions() []grpc.ServerOption {
	c := codec{CodecV2: encoding.GetCodecV2("proto"), limit: s.cfg.MaxRequestBytes, tooLarge: s.tooLarge}
	return []grpc.ServerOption{grpc.ForceServerCodecV2(c), grpc.MaxRecvMsgSize(s.cfg.GRPCTransportLimit())}
}
