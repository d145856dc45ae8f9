package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keygate/keygate/extauthz"
)

// httpIdleTimeout: keep-alive connections from the proxy are reused.
const httpIdleTimeout = 5 * time.Minute

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
// the transport's cap, above --max-request-bytes: headers between the two
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

// serveHTTPMode serves until the server is shut down (by the shutdown
// sequence in serve).
func serveHTTPMode(s *http.Server, lis net.Listener, log *slog.Logger) error {
	log.Info("serving HTTP authorization", "http_addr", lis.Addr().String())
	if err := s.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("--http-addr: %w", err)
	}
	return nil
}

// stopHTTP lets in-flight HTTP checks finish within timeout, then closes.
func stopHTTP(s *http.Server, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		log.Warn("HTTP shutdown timeout: closing with checks in flight")
		s.Close()
	}
}
