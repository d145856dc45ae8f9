package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// adminHandler serves the incident-response and debugging endpoints:
//
//	POST /v1/evict?id=<key id>   drop one key from the cache (next Check re-reads it)
//	POST /v1/purge               drop every cached key
//	GET  /v1/cache               cache sizes and evictions (JSON)
//	GET  /v1/config              the effective configuration, secrets redacted (JSON)
//	GET  /debug/pprof/...        Go profiles (net/http/pprof)
//
// It is off unless --admin-addr is set, and on loopback unless a host is
// given; keep it there or behind NetworkPolicy: anyone who can reach it can
// make keygate re-read Vault and read profiles. Browsers are kept out by
// adminGuard (loopback says the listener is on a loopback address): POSTs
// need X-Keygate-Admin: 1, pages' requests are refused, and on loopback so
// is a Host that is not a loopback name.
func adminHandler(srv *extauthz.Server, log *slog.Logger, config func() map[string]string, loopback bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cache", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, srv.CacheStats()) })
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, config()) })
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
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
	return adminGuard(mux, loopback, log)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
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

// effectiveConfig is every serve flag's value after flags and KEYGATE_*
// variables were applied, plus the Vault variables keygate reads. Secrets
// never appear: keygate takes them only from the environment or files, and
// only whether they are set is shown.
func (f *serveFlags) effectiveConfig(getenv func(string) string) map[string]string {
	out := map[string]string{}
	f.fs.VisitAll(func(fl *pflag.Flag) { out["--"+fl.Name] = fl.Value.String() })
	out["VAULT_ADDR"], out["VAULT_NAMESPACE"] = getenv("VAULT_ADDR"), getenv("VAULT_NAMESPACE")
	for _, secret := range []string{"VAULT_TOKEN", "KEYGATE_VAULT_APPROLE_SECRET_ID"} {
		out[secret] = "(unset)"
		if getenv(secret) != "" {
			out[secret] = "(set, redacted)"
		}
	}
	return out
}

// loopbackDefault puts an address without a host (":9901") on loopback:
// the admin and metrics endpoints listen on every interface only when
// asked to ("0.0.0.0:9901"). (--grpc-addr and --http-addr instead refuse
// an address off loopback without TLS or --plaintext.)
func loopbackDefault(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
