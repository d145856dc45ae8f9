package server_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/server"
)

// A server on the embedded file store: the configuration starts from
// DefaultConfig, the store is opened by the caller and passed in Deps with
// what runs beside it, and Run serves until SIGTERM, then shuts down in
// order.
func ExampleNew() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	store, err := filestore.Open("keys.yaml", log)
	if err != nil {
		log.Error("open the store", "err", err)
		return
	}
	cfg := server.DefaultConfig()
	cfg.HTTPAddr = "127.0.0.1:9192"
	cfg.ShutdownDelay = 5 * time.Second
	srv, err := server.New(cfg, server.Deps{
		Log: log, Store: store, StoreName: "file", Stdout: os.Stdout, Stderr: os.Stderr,
		Watch: func(ctx context.Context) error { return store.Watch(ctx, time.Second) },
	})
	if err != nil {
		log.Error("configuration", "err", err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		log.Error("serve", "err", err)
	}
}
