package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// adminHandler serves the incident-response endpoints:
//
//	POST /v1/evict?id=<key id>   drop one key from the cache (next Check re-reads it)
//	POST /v1/purge               drop every cached key
//
// It is off unless --admin-addr is set; keep it on loopback or behind
// NetworkPolicy: anyone who can reach it can make keygate re-read Vault.
func adminHandler(srv *extauthz.Server, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/evict", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if !policy.ValidID(id) {
			// never echo the value: it may be a pasted key
			http.Error(w, "id: want a key id (12 letters and digits: the id, not the key)", http.StatusBadRequest)
			return
		}
		srv.Evict(id)
		log.Info("admin: evicted key from the cache", "key_id", id, "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/purge", func(w http.ResponseWriter, r *http.Request) {
		srv.Purge()
		log.Info("admin: dropped the whole cache", "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// serveAdmin runs the admin endpoint on lis until ctx ends.
func serveAdmin(ctx context.Context, lis net.Listener, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	}()
	log.Info("admin endpoint", "admin_addr", lis.Addr().String())
	if err := hs.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	return nil
}
