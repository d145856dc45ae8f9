package server

import (
	"context"
	"os"
)

// tasks are the server's long-running parts, in the order they start.
// Each says what it waits for; the shutdown sequence says how each stops.
func (s *Server) tasks() []task {
	loggedIn := gate{"the first store login", s.deps.LoggedIn}
	ts := []task{{name: "grpc", run: s.serveGRPC}} // Check, health, reflection; stopped by the drain
	if s.http != nil {
		ts = append(ts, task{name: "http", run: func(context.Context) error { // stopped by the drain
			lis := s.lis.http
			if s.tls != nil {
				lis = withTLS(lis, s.tls.ServerConfig("http/1.1"))
			}
			s.log.Info("serving HTTP authorization", "http_addr", s.lis.http.Addr().String())
			return serveHTTP(s.http, lis, "http-addr")
		}})
	}
	if s.admin != nil {
		ts = append(ts, task{name: "admin", run: func(context.Context) error { // stopped after the background tasks
			s.log.Info("admin endpoint", "admin_addr", s.lis.admin.Addr().String())
			return serveHTTP(s.admin, s.lis.admin, "admin-addr")
		}})
	}
	if s.metric != nil {
		ts = append(ts, task{name: "metrics", run: func(context.Context) error { // stopped after the background tasks
			s.log.Info("serving metrics", "metrics_addr", s.lis.metrics.Addr().String())
			return serveHTTP(s.metric, s.lis.metrics, "metrics-addr")
		}})
	}
	if s.obs.audit != nil { // writes until no Check runs, then what is queued
		ts = append(ts, task{name: "audit", run: func(context.Context) error { return s.obs.audit.Run(s.stopped) }})
	}
	return append(ts, s.backgroundTasks(loggedIn)...)
}

// backgroundTasks run until the shutdown sequence has drained the
// listeners (their ctx ends then), except the usage writer, which ends
// after its final flush.
func (s *Server) backgroundTasks(loggedIn gate) []task {
	var ts []task
	if s.tls != nil {
		ts = append(ts, task{name: "tls-reload", run: func(ctx context.Context) error { s.tls.Run(ctx); return nil }})
	}
	if s.deps.Watch != nil {
		ts = append(ts, task{name: "store-watch", run: s.deps.Watch})
	}
	if s.deps.Login != nil { // Vault login, renewal and re-login
		ts = append(ts, task{name: "store-login", run: s.deps.Login})
	}
	warmup, ready := s.warmupTasks(loggedIn) // SERVING after the peppers and any warm-up
	ts = append(ts, task{name: "peppers", after: []gate{loggedIn}, run: func(ctx context.Context) error {
		keepPeppers(ctx, s.log, s.deps.Store, s.check, s.cfg.PepperRefresh, s.peppersChanged, ready)
		return nil
	}})
	ts = append(ts, warmup...)
	if s.deps.Journal != nil && s.cfg.JournalPoll > 0 { // no "cannot read" noise before the first login
		ts = append(ts, task{name: "journal", after: []gate{loggedIn}, run: func(ctx context.Context) error {
			watchJournal(ctx, s.log, s.deps.Journal, s.check, s.cfg.JournalPoll, s.obs)
			return nil
		}})
	}
	if s.cfg.Check.TrackUsage {
		ts = append(ts, task{name: "usage", run: func(ctx context.Context) error {
			writeUsage(ctx, s.hurry, s.stopped.Done(), s.log, s.deps.Usage, s.check, s.cfg.UsageInterval)
			return nil
		}})
	}
	if s.cfg.GCMinHeapMiB > 0 {
		ts = append(ts, task{name: "gc-tune", run: func(ctx context.Context) error {
			tuneGC(ctx, s.log, uint64(s.cfg.GCMinHeapMiB)<<20, baseGCPercent(os.Getenv("GOGC")))
			return nil
		}})
	}
	return append(ts, task{name: "cache-sweep", run: func(ctx context.Context) error { sweepCache(ctx, s.log, s.check); return nil }})
}
