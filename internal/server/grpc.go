package server

import (
	"context"
	"log/slog"
	"math"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// maxStreamWorkers bounds GRPCConfig.StreamWorkers: each kept goroutine
// holds its stack (a few KiB) for the life of the server.
const maxStreamWorkers = 4096

// options are the server's limits. Idle connections are kept (Envoy
// holds a few per upstream) but pinged; connections are recycled at max age.
func (g GRPCConfig) options() []grpc.ServerOption {
	age := g.MaxConnectionAge
	if age == 0 {
		age = time.Duration(math.MaxInt64)
	}
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(g.StreamWorkers)),
		grpc.MaxConcurrentStreams(uint32(g.MaxStreams)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: g.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     15 * time.Minute,
			MaxConnectionAge:      age,
			MaxConnectionAgeGrace: g.MaxConnectionAgeGrace,
			Time:                  g.KeepaliveTime,
			Timeout:               10 * time.Second,
		}),
	}
}

// newHealth is the health service, starting NOT_SERVING.
func newHealth() *health.Server {
	hs := health.NewServer()
	setHealth(hs, healthpb.HealthCheckResponse_NOT_SERVING)
	return hs
}

// newGRPC builds the gRPC server: Check, health (s.health) and reflection
// (for grpcurl). Run builds it, because a gRPC server holds goroutines
// (GRPCConfig.StreamWorkers) from its creation until it is stopped.
func (s *Server) newGRPC() *grpc.Server {
	opts := append(append(s.cfg.GRPC.options(), s.check.GRPCOptions()...), s.obs.grpcOptions()...)
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls.ServerConfig("h2"))))
	}
	g := grpc.NewServer(opts...)
	s.check.Register(g)
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
	if s.obs.metrics != nil {
		s.obs.metrics.GRPC.InitializeMetrics(g)
	}
	return g
}

// setHealth sets the overall status and the Authorization service's, which
// is what a health check naming the service asks for.
func setHealth(hs *health.Server, st healthpb.HealthCheckResponse_ServingStatus) {
	hs.SetServingStatus("", st)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, st)
}

// stopGRPC lets in-flight Checks finish, then forces the stop after
// timeout or when ctx ends, whichever is first.
func stopGRPC(ctx context.Context, g *grpc.Server, timeout time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		log.Info("stopped")
		return
	case <-t.C:
	case <-ctx.Done():
	}
	log.Warn("shutdown timeout: stopping with Checks in flight")
	g.Stop()
	<-done
}
