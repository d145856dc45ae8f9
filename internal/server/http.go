package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/field"
)

// httpIdleTimeout: keep-alive connections from the proxy are reused.
const httpIdleTimeout = 5 * time.Minute

// endpointShutdown bounds closing the admin and metrics endpoints.
const endpointShutdown = 5 * time.Second

// httpHandler is the HTTP authorization mode plus GET /healthz, which
// answers 200 exactly when gRPC health says SERVING (for proxies and probes
// that only speak HTTP).
func httpHandler(srv *extauthz.Server, hs *health.Server) http.Handler {
	mux := http.NewServeMux()
	authz := srv.HTTPHandler()
	mux.Handle("/", authz)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := hs.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// newHTTPServer is the HTTP authorization server: timeouts bound slow
// clients; keep-alive connections from the proxy are reused. maxHeader is
// the transport's cap, above MaxRequestBytes: headers between the two
// get keygate's 413 deny with a reason (extauthz), not Go's bare 431.
func newHTTPServer(h http.Handler, maxHeader int, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// newEndpoint is an admin or metrics server.
func newEndpoint(h http.Handler, writeTimeout time.Duration) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: writeTimeout}
}

// serveHTTP serves s on lis until s is shut down; errors name the
// listener's flag.
func serveHTTP(s *http.Server, lis net.Listener, name string) error {
	if err := s.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		var l field.List
		l.Addf(name, "%v", err)
		return l.Err()
	}
	return nil
}

// stopHTTP lets in-flight requests finish within timeout (or until ctx
// ends), then closes the connections still open, logging late.
func stopHTTP(ctx context.Context, s *http.Server, timeout time.Duration, log *slog.Logger, late string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		log.Warn(late)
		s.Close()
	}
}

// httpEndpoint is an admin or metrics server, named for logs.
type httpEndpoint struct {
	srv  *http.Server
	name string
}
