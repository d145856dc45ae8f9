package main

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// grpcFlags are the gRPC server's limits, sized for Envoy. The message
// size limit is extauthz's MaxRequestBytes (--max-request-bytes): requests
// over it are denied, not refused (see extauthz.Server.GRPCOptions).
type grpcFlags struct {
	maxStreams    int
	maxConnAge    time.Duration
	maxConnGrace  time.Duration
	keepaliveMin  time.Duration
	keepaliveTime time.Duration
}

func (g *grpcFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&g.maxStreams, "grpc-max-streams", 1024, "concurrent Checks per connection (HTTP/2 streams)")
	fs.DurationVar(&g.maxConnAge, "grpc-max-connection-age", 30*time.Minute, "close connections after this long (GOAWAY) so Envoy's load spreads over new replicas; 0: never")
	fs.DurationVar(&g.maxConnGrace, "grpc-max-connection-age-grace", time.Minute, "how long in-flight Checks may finish after a connection's max age")
	fs.DurationVar(&g.keepaliveMin, "grpc-keepalive-min-time", 5*time.Second, "shortest client keepalive ping interval accepted (Envoy's pings must not be refused with too_many_pings)")
	fs.DurationVar(&g.keepaliveTime, "grpc-keepalive-time", 30*time.Second, "ping an idle connection after this long to detect dead peers")
}

func (g *grpcFlags) check() error {
	var errs []error
	if g.maxStreams < 1 {
		errs = append(errs, fmt.Errorf("--grpc-max-streams: must be >= 1, got %d", g.maxStreams))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
		min  time.Duration
	}{{"--grpc-max-connection-age", g.maxConnAge, 0}, {"--grpc-max-connection-age-grace", g.maxConnGrace, 0},
		{"--grpc-keepalive-min-time", g.keepaliveMin, time.Second}, {"--grpc-keepalive-time", g.keepaliveTime, time.Second}} {
		if d.v < d.min {
			errs = append(errs, fmt.Errorf("%s: must be >= %s, got %s", d.flag, d.min, d.v))
		}
	}
	if g.maxConnAge > 0 && g.maxConnAge < time.Minute {
		errs = append(errs, errors.New("--grpc-max-connection-age: under 1m makes Envoy reconnect constantly (0 disables)"))
	}
	return errors.Join(errs...)
}

// options are the server's limits. Idle connections are kept (Envoy
// holds a few per upstream) but pinged; connections are recycled at max age.
func (g *grpcFlags) options() []grpc.ServerOption {
	age := g.maxConnAge
	if age == 0 {
		age = time.Duration(math.MaxInt64)
	}
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(uint32(g.maxStreams)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: g.keepaliveMin, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     15 * time.Minute,
			MaxConnectionAge:      age,
			MaxConnectionAgeGrace: g.maxConnGrace,
			Time:                  g.keepaliveTime,
			Timeout:               10 * time.Second,
		}),
	}
}
