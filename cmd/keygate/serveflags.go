package main

import (
	"github.com/spf13/pflag"
)

// register binds every serve flag to its field of f.cfg: a flag's default
// is the field's value from server.DefaultConfig, so defaults are written
// once. The usage strings are also the README's flag table (see
// flagdoc.go): say what the flag means and what "0" or empty does.
func (f *serveFlags) register(fs *pflag.FlagSet) {
	fs.SortFlags = false // --help and the README list flags in this order
	f.registerListeners(fs)
	f.registerCheck(fs)
	f.registerCache(fs)
	f.registerRateLimit(fs)
	f.registerRuntime(fs)
	f.registerTLS(fs)
	f.registerGRPC(fs)
	fs.StringVar(&f.logLevel, "log-level", "info", `"debug", "info", "warn" or "error"`)
	f.store.register(fs)
	fs.BoolVar(&f.markdown, "help-markdown", false, "print the flag tables as Markdown, as in the README")
	_ = fs.MarkHidden("help-markdown")
}

func (f *serveFlags) registerListeners(fs *pflag.FlagSet) {
	c := &f.cfg
	fs.StringVar(&c.GRPCAddr, "grpc-addr", c.GRPCAddr, "gRPC listen address: Check, health and reflection (in a container, 0.0.0.0:9191)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP authorization listen address, for Envoy http_service (/ext_authz), nginx auth_request, "+
		"Caddy forward_auth, Traefik ForwardAuth (/auth), e.g. 127.0.0.1:9192")
	docs(fs, "http-addr", "off", "HTTP authorization mode|../README.md#http-authorization-mode")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "Prometheus /metrics listen address; :PORT binds loopback, 0.0.0.0:PORT every interface")
	docs(fs, "metrics-addr", "off", "Metrics|observability.md#metrics")
	fs.BoolVar(&c.Metrics.KeyRequests, "metrics-key-requests", c.Metrics.KeyRequests,
		"export keygate_key_requests_total{key_id,tenant,result}: shows key ids and tenants to whoever can scrape /metrics")
	fs.IntVar(&c.Metrics.MaxKeyIDs, "metrics-max-keys", c.Metrics.MaxKeyIDs, `distinct key ids in keygate_key_requests_total; later keys count as "_other"`)
	fs.StringVar(&c.AuditLog, "audit-log", c.AuditLog, `where audit lines go: "stdout", "stderr", a file path (appended, mode 0600), or "off"`)
	docs(fs, "audit-log", "", "Audit log|observability.md#audit-log")
	fs.Float64Var(&c.Audit.SampleAllows, "audit-sample-allows", c.Audit.SampleAllows, "fraction of allow decisions written to the audit log (denies always are)")
	fs.IntVar(&c.Audit.Buffer, "audit-buffer", c.Audit.Buffer, "audit lines that may wait to be written; past it lines are dropped and counted")
	fs.BoolVar(&c.Audit.KeepQuery, "audit-keep-query", c.Audit.KeepQuery, "keep the query string in audit lines' paths (dropped by default: it may carry secrets)")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "HTTP admin endpoint: cache evict and purge (POST with X-Keygate-Admin: 1), cache stats, "+
		"effective config, pprof; :PORT binds loopback, keep it there; browsers' requests are refused")
	docs(fs, "admin-addr", "off", "Serving|../README.md#serving-keygate-serve", "Debugging|observability.md#debugging")
}

func (f *serveFlags) registerCheck(fs *pflag.FlagSet) {
	c := &f.cfg.Check
	fs.Var(&routesFile{into: &c.Routes}, "routes-file", "routes file (YAML or JSON): the scopes each host, method and path prefix needs")
	docs(fs, "routes-file", "none", "Route requirements|../README.md#route-requirements")
	fs.StringVar(&c.KeyPrefix, "key-prefix", c.KeyPrefix, "API key prefix")
	fs.StringVar(&c.KeyHeader, "key-header", c.KeyHeader, "header carrying a bare key")
	fs.StringVar(&c.AuthHeader, "auth-header", c.AuthHeader, `header carrying "Bearer <key>" or "ApiKey <key>"`)
	fs.BoolVar(&c.ImportedKeys, "imported-keys", c.ImportedKeys, "also accept keys migrated with keygate keys import (credentials in no keygate format, found by hash)")
	docs(fs, "imported-keys", "", "Imported keys|../README.md#imported-keys")
	fs.Float64Var(&c.UnknownKeyRate, "unknown-key-rate", c.UnknownKeyRate, "unknown keys a second one caller may send; past it, that caller's keys "+
		"not cached as valid get 429 caller_rate_limited until its budget refills; negative: unlimited")
	docs(fs, "unknown-key-rate", "", "Who may call keygate|../README.md#who-may-call-keygate")
	fs.IntVar(&c.UnknownKeyBurst, "unknown-key-burst", c.UnknownKeyBurst, "burst over --unknown-key-rate")
	fs.Var(callerKeyValue{&c.UnknownKeyPer}, "unknown-key-per", `what --unknown-key-rate is counted per: "peer" (the calling proxy's address) `+
		"or \"client\" (the client address: the source Envoy reports, or in HTTP mode the one --trusted-proxies lead to; the peer when there is none)")
	fs.Var(&prefixList{into: &c.TrustedProxies}, "trusted-proxies", "HTTP mode: IPs or CIDRs of the proxies whose X-Forwarded-For is believed; "+
		"none: the connecting peer is the client")
	docs(fs, "trusted-proxies", "none", "Decisions|../README.md#the-request-keygate-judges-is-the-request-the-proxy-routes")
	fs.StringSliceVar(&c.StripHeaders, "strip-headers", c.StripHeaders, "header names removed from every allowed request whose key does not set them, "+
		"besides keygate's identity headers and every record header name already loaded: list the names your key records set")
	docs(fs, "strip-headers", "none")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "largest request decided on (the encoded CheckRequest; in HTTP mode "+
		"the header names and values); larger ones are denied 413 request_too_large; at least 64 KiB (Envoy's header limit is 60 KiB); "+
		"--grpc-max-message-bytes is its old, deprecated name")
	fs.IntVar(&c.MaxRequestBytes, "grpc-max-message-bytes", c.MaxRequestBytes, "")
	_ = fs.MarkDeprecated("grpc-max-message-bytes", "use --max-request-bytes (larger requests are now denied 413, not refused)")
}

func (f *serveFlags) registerCache(fs *pflag.FlagSet) {
	c := &f.cfg.Check
	fs.IntVar(&c.CacheSize, "cache-size", c.CacheSize, "max cached key records")
	fs.IntVar(&c.NegativeCacheSize, "negative-cache-size", c.NegativeCacheSize, "max cached unknown key ids")
	fs.DurationVar(&c.FoundTTL, "found-ttl", c.FoundTTL, "how long a key record is used before it is re-read while no change feed vouches for it "+
		"(the Vault change journal unread for 3 --journal-poll, or off)")
	fs.DurationVar(&c.MaxRecordAge, "max-record-age", c.MaxRecordAge, "how long a key record is used before it is re-read while a change feed "+
		"vouches for it (the Vault change journal, the file store), ±10% per key; a change written straight to Vault takes this long; "+
		`"0": every --found-ttl`)
	docs(fs, "max-record-age", "", "Cache|../README.md#cache")
	fs.DurationVar(&c.NotFoundTTL, "not-found-ttl", c.NotFoundTTL, "how long an unknown key id is remembered")
	fs.DurationVar(&c.StaleTTL, "stale-ttl", c.StaleTTL, `how long a record is still served while the store fails, from when it stopped being fresh; "0" disables`)
	fs.DurationVar(&c.LookupTimeout, "lookup-timeout", c.LookupTimeout, "timeout of one store read on the Check path; keep it under Envoy's ext_authz timeout")
	fs.Float64Var(&c.StoreReadRate, "store-read-rate", c.StoreReadRate, "store reads a second caused by cache misses; past it such misses are denied 503; "+
		"negative: unlimited")
	fs.IntVar(&c.StoreReadBurst, "store-read-burst", c.StoreReadBurst, "burst over --store-read-rate")
}

func (f *serveFlags) registerRateLimit(fs *pflag.FlagSet) {
	c := &f.cfg.RateLimit
	fs.StringVar(&c.Service, "ratelimit-service", c.Service, "envoyproxy/ratelimit gRPC address (HOST:PORT) that counts keys' global_rate_limit "+
		"and global_quota across replicas; without it, keys that have either are denied 503 ratelimit_unavailable")
	docs(fs, "ratelimit-service", "off", "Global limits|../README.md#global-limits")
	fs.DurationVar(&c.Timeout, "ratelimit-timeout", c.Timeout, "timeout of one call to the rate limit service, at most 1s; "+
		"keep it well under Envoy's ext_authz timeout")
	fs.Var(failureValue{&c.Failure}, "ratelimit-failure", `what keys with global limits get when the rate limit service fails or times out: `+
		`"deny" (503 ratelimit_unavailable), "allow" (not counted meanwhile), or "auto": deny keys with a global_quota, `+
		"allow keys with only a global_rate_limit")
	fs.StringVar(&c.CAFile, "ratelimit-tls-ca", c.CAFile, "PEM CA of the rate limit service's certificate: connect with TLS (plain text when empty)")
	docs(fs, "ratelimit-tls-ca", "none")
	fs.StringVar(&c.CertFile, "ratelimit-tls-cert", c.CertFile, "PEM client certificate for mutual TLS to the rate limit service "+
		"(with --ratelimit-tls-key and --ratelimit-tls-ca); read at start")
	docs(fs, "ratelimit-tls-cert", "none")
	fs.StringVar(&c.KeyFile, "ratelimit-tls-key", c.KeyFile, "PEM key of --ratelimit-tls-cert")
	docs(fs, "ratelimit-tls-key", "none")
}

func (f *serveFlags) registerRuntime(fs *pflag.FlagSet) {
	c := &f.cfg
	fs.DurationVar(&c.PepperRefresh, "pepper-refresh", c.PepperRefresh, "how often HMAC peppers are re-read (file store: also as soon as the file's pepper section changes)")
	fs.DurationVar(&c.JournalPoll, "journal-poll", c.JournalPoll, `(Vault) how often the change journal is read to evict keys the CLI changed; "0" disables`)
	fs.DurationVar(&c.UsageInterval, "usage-interval", c.UsageInterval, "(Vault) how often when keys were last used is written back, "+
		`at most once per key per interval per replica; "0" disables`)
	docs(fs, "usage-interval", "", "Key use|vault.md#key-use")
	fs.DurationVar(&c.WarmupTimeout, "warmup-timeout", c.WarmupTimeout, "(Vault) on start, stay NOT_SERVING until the records of the keys "+
		`the replicas served lately are cached, or this long after the first Vault login; "0" disables`)
	docs(fs, "warmup-timeout", "", "Warm-up|vault.md#warm-up")
	fs.DurationVar(&c.HotKeysInterval, "hot-keys-interval", c.HotKeysInterval, "(Vault) about how often this replica records the ids "+
		`of the keys it served lately, for starting replicas to warm up with; at most 5m; "0" disables`)
	docs(fs, "hot-keys-interval", "", "Warm-up|vault.md#warm-up")
	fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", c.ShutdownDelay, "keep serving (health NOT_SERVING) this long after SIGTERM, so Envoy drains first")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "grace for in-flight Checks on shutdown")
	fs.IntVar(&c.GCMinHeapMiB, "gc-min-heap-mib", c.GCMinHeapMiB, "heap size (MiB) below which Go's garbage collector does not run: "+
		"with few keys cached it would run tens of times a second under load; GOGC applies above it (GOGC=off: never tuned); \"0\": Go's default")
}

func (f *serveFlags) registerTLS(fs *pflag.FlagSet) {
	c := &f.cfg.TLS
	fs.StringVar(&c.CertFile, "tls-cert", c.CertFile, "PEM server certificate (chain) for the gRPC and HTTP listeners")
	docs(fs, "tls-cert", "none", "Who may call keygate|../README.md#who-may-call-keygate")
	fs.StringVar(&c.KeyFile, "tls-key", c.KeyFile, "PEM key of --tls-cert")
	docs(fs, "tls-key", "none")
	fs.StringVar(&c.ClientCAFile, "tls-client-ca", c.ClientCAFile, "PEM CA bundle: require and verify client certificates (mutual TLS)")
	docs(fs, "tls-client-ca", "none")
	fs.StringSliceVar(&c.AllowedPeers, "tls-allowed-peers", c.AllowedPeers, "client certificate SANs allowed to call: URIs (SPIFFE ids, "+
		"e.g. spiffe://cluster.local/ns/istio-system/sa/*) or DNS names, exact or ending in * (a prefix)")
	docs(fs, "tls-allowed-peers", "any")
	fs.DurationVar(&c.Reload, "tls-reload", c.Reload, "how often the TLS files are checked; changed files are loaded without a restart, "+
		"a file that does not load keeps the last good one")
	fs.BoolVar(&f.cfg.Plaintext, "plaintext", f.cfg.Plaintext, "serve without TLS on a non-loopback address; without it (and without --tls-cert) "+
		"keygate refuses to start on anything but loopback")
}

func (f *serveFlags) registerGRPC(fs *pflag.FlagSet) {
	c := &f.cfg.GRPC
	fs.IntVar(&c.MaxStreams, "grpc-max-streams", c.MaxStreams, "concurrent Checks per connection (HTTP/2 streams)")
	fs.DurationVar(&c.MaxConnectionAge, "grpc-max-connection-age", c.MaxConnectionAge, "recycle connections (GOAWAY) after this long, "+
		`so load spreads over new replicas; "0": never`)
	fs.DurationVar(&c.MaxConnectionAgeGrace, "grpc-max-connection-age-grace", c.MaxConnectionAgeGrace, "how long in-flight Checks may finish on a recycled connection")
	fs.DurationVar(&c.KeepaliveMinTime, "grpc-keepalive-min-time", c.KeepaliveMinTime, "shortest client ping interval accepted "+
		"(Envoy's HTTP/2 keepalive, when configured, must not be refused with too_many_pings)")
	fs.DurationVar(&c.KeepaliveTime, "grpc-keepalive-time", c.KeepaliveTime, "ping a connection idle this long, to detect dead peers")
	fs.IntVar(&c.StreamWorkers, "grpc-stream-workers", c.StreamWorkers, "goroutines kept to run Checks, so each Check does not grow a new "+
		`goroutine's stack (a Check finding all busy gets its own); "0": a new goroutine per Check`)
}

// flagAliases are deprecated flags bound to the same field as another:
// an error about the field names the one the user set.
var flagAliases = map[string]string{"max-request-bytes": "grpc-max-message-bytes"}
