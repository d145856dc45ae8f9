package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"

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
// It is off unless Config.AdminAddr is set, and on loopback unless a host
// is given; keep it there or behind NetworkPolicy: anyone who can reach it can
// make keygate re-read Vault and read profiles. Browsers are kept out by
// adminGuard (loopback says the listener is on a loopback address): POSTs
// need X-Keygate-Admin: 1, pages' requests are refused, and on loopback so
// is a Host that is not a loopback name.
//
// settings is what GET /v1/config shows (Deps.Settings).
func adminHandler(srv *extauthz.Server, log *slog.Logger, settings func() map[string]string, loopback bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cache", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, srv.CacheStats()) })
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, settings()) })
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
