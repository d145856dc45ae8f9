package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keygate/keygate/internal/field"
)

// Run serves until ctx ends, Shutdown is called or a task fails, then
// shuts down in order (see Shutdown) and returns once every task has
// ended: nil, or the first task's error. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.state.CompareAndSwap(0, 1) {
		return errors.New("server: Run called twice")
	}
	defer close(s.done)
	defer s.release()
	s.grpc = s.newGRPC()
	g, gctx := errgroup.WithContext(s.bg)
	tasks := append(s.tasks(), task{name: "shutdown", run: func(context.Context) error {
		select {
		case <-ctx.Done():
		case <-gctx.Done(): // a task failed
		case <-s.stopReq:
		}
		s.shutdown(s.hurry)
		return nil
	}})
	// Logged before any task starts, so it always precedes "ready" (the
	// listener is bound since New: connections wait for Serve).
	s.log.Info("serving", "grpc_addr", s.lis.grpc.Addr().String(), "store", s.deps.StoreName)
	start(gctx, g, tasks, s.log)
	return g.Wait()
}

// Shutdown stops a running server and waits for Run to return: health
// NOT_SERVING at once; answering Checks for Config.ShutdownDelay so the
// proxies drain it; in-flight HTTP and gRPC Checks get
// Config.ShutdownTimeout, then their connections are closed; the audit log
// is written out and pending key uses flushed (once no Check can run);
// then the background tasks and the admin and metrics endpoints stop.
// When ctx ends first, the rest is hurried (no more delay, a forced stop,
// flushes cut short) and ctx's error is returned once Run has returned.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.state.Load() == 0 {
		return errors.New("server: Shutdown before Run")
	}
	s.stopOnce.Do(func() { close(s.stopReq) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cut()
		<-s.done
		return ctx.Err()
	}
}

// shutdown is the sequence Shutdown describes; ctx ending hurries it.
func (s *Server) shutdown(ctx context.Context) {
	s.setNotServing()
	if d := s.cfg.ShutdownDelay; d > 0 {
		s.log.Info("draining", "delay", d.String())
		s.pause(ctx, d)
	}
	var wg sync.WaitGroup
	if s.http != nil {
		wg.Go(func() {
			stopHTTP(ctx, s.http, s.cfg.ShutdownTimeout, s.log, "HTTP shutdown timeout: closing with checks in flight")
		})
	}
	stopGRPC(ctx, s.grpc, s.cfg.ShutdownTimeout, s.log)
	wg.Wait()
	s.markStopped() // no Check runs any more: the audit log drains, key uses are flushed
	s.stopBG()
	for _, e := range []*httpEndpoint{{s.admin, "admin endpoint"}, {s.metric, "metrics endpoint"}} {
		if e.srv != nil {
			wg.Go(func() { stopHTTP(ctx, e.srv, endpointShutdown, s.log, e.name+" shutdown timeout: closing") })
		}
	}
	wg.Wait()
}

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// release closes what New opened and Run did not already close.
func (s *Server) release() {
	s.markStopped()
	s.stopBG()
	s.cut()
	s.lis.close()
	s.obs.close()
	if s.rl != nil { // no Check runs any more
		s.rl.Close()
	}
}

// setReady reports SERVING, unless shutdown has begun.
func (s *Server) setReady() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return
	}
	setHealth(s.health, healthpb.HealthCheckResponse_SERVING)
	s.obs.setReady(true)
	s.log.Info("ready")
}

// setNotServing reports NOT_SERVING for good, so Envoy stops sending
// before the server stops answering.
func (s *Server) setNotServing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	s.health.Shutdown()
	s.obs.setReady(false)
}

// serveGRPC serves Checks until the shutdown sequence stops the server.
func (s *Server) serveGRPC(context.Context) error {
	if err := s.grpc.Serve(s.lis.grpc); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		var l field.List
		l.Addf("grpc-addr", "%v", err)
		return l.Err()
	}
	return nil
}
