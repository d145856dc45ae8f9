package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/internal/leakendpoint"
)

// leakEndpointFlags are `keygate leak-endpoint`'s flags, bound to the
// package's DefaultConfig values.
type leakEndpointFlags struct {
	cfg             leakendpoint.Config
	keys            leakendpoint.KeysConfig
	store           storeFlags
	addr            string
	tlsCert, tlsKey string
	plaintext       bool
	maxBody         byteSize
	logLevel        string
	shutdownTimeout time.Duration
	markdown        bool // --help-markdown
	fs              *pflag.FlagSet
}

// newLeakEndpointCmd is `keygate leak-endpoint`: GitHub's secret scanning
// partner endpoint (issue 16).
func newLeakEndpointCmd(e *env) *cobra.Command {
	f := &leakEndpointFlags{cfg: leakendpoint.DefaultConfig(), keys: leakendpoint.DefaultKeysConfig("")}
	cmd := &cobra.Command{
		Use:   "leak-endpoint",
		Short: "Serve GitHub's secret scanning partner endpoint: answer whether leaked tokens are keygate keys, and --revoke the live ones",
		Long: "GitHub POSTs the tokens its secret scanning found in public repositories, gists, issues and npm packages.\n" +
			"Each signed report (ECDSA P-256, keys from --public-keys) is answered with GitHub's token-status feedback:\n" +
			"true_positive for keys the store holds (active, revoked or expired), false_positive for anything else.\n" +
			`With --revoke, active keys are revoked with reason "leaked" (journaled with Vault: replicas deny within ~1 s).` + "\n" +
			"Unsigned, badly signed, oversized, malformed and replayed requests are refused with a 4xx and change nothing.\n" +
			"See docs/leaks.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), e) },
	}
	fs := cmd.Flags()
	f.store.register(fs)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8443", "listen address")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM server certificate (chain): serve HTTPS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.BoolVar(&f.plaintext, "plaintext", false, "serve plain HTTP on a non-loopback address (behind a TLS proxy); without it (and without --tls-cert) "+
		"the endpoint refuses to start on anything but loopback")
	fs.StringVar(&f.keys.Source, "public-keys", "", "GitHub's signing keys: a file, or the URL "+
		`"`+leakendpoint.GitHubPublicKeysURL+`" (required)`)
	fs.DurationVar(&f.keys.Refresh, "public-keys-refresh", f.keys.Refresh, "re-read --public-keys this often (and on a request naming an unknown key, at most once a minute)")
	fs.BoolVar(&f.cfg.Revoke, "revoke", false, `revoke the active keys reported, with reason "leaked" (the store token then needs write on keys)`)
	f.maxBody = byteSize(f.cfg.MaxBody)
	fs.Var(&f.maxBody, "max-body", "refuse (413) a request body larger than this")
	fs.IntVar(&f.cfg.MaxTokens, "max-tokens", f.cfg.MaxTokens, "refuse (413) a report of more tokens than this")
	fs.DurationVar(&f.cfg.ReplayWindow, "replay-window", f.cfg.ReplayWindow, "refuse (409) a report received again within this window")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "grace for in-flight requests on shutdown")
	fs.BoolVar(&f.markdown, "help-markdown", false, "print the flag table as Markdown, as in docs/leaks.md")
	_ = fs.MarkHidden("help-markdown")
	f.fs = fs
	return cmd
}

// leakEndpointDocs is docs/leaks.md's table; the store flags are
// docs/configuration.md's.
var leakEndpointDocs = flagDocs{
	intro: "Each flag can also be set by its `KEYGATE_*` variable (`--public-keys` ↔ `KEYGATE_PUBLIC_KEYS`). " +
		"The store flags (`--store`, `--vault-*`) are those of `keygate serve` ([configuration](configuration.md)).",
	tables: []flagTable{{}},
}

func (f *leakEndpointFlags) run(ctx context.Context, e *env) error {
	if f.markdown {
		return writeFlagDocs(e.stdout, f.fs, leakEndpointDocs)
	}
	log, err := newLogger(e.stderr, f.logLevel)
	if err != nil {
		return err
	}
	if err := f.validate(e); err != nil {
		return err
	}
	f.cfg.Log, f.keys.Log = log, log
	f.cfg.MaxBody = int64(f.maxBody)
	store, err := f.store.open(ctx, e, log, false)
	if err != nil {
		return err
	}
	svc, err := keyadmin.New(keyadmin.Config{}, store.keyStore) // the store itself: keyadmin finds its journal
	if err != nil {
		return err
	}
	pub, err := leakendpoint.LoadPublicKeys(ctx, f.keys)
	if err != nil {
		return fmt.Errorf("%s: %w", e.flagName("public-keys"), err)
	}
	ep, err := leakendpoint.New(f.cfg, leakendpoint.Store{Keys: svc, Peppers: store.Peppers}, pub)
	if err != nil {
		return err
	}
	ln, scheme, err := f.listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "keygate leak-endpoint: %s://%s/\n", scheme, ln.Addr())
	log.Info("leak endpoint listening", "addr", ln.Addr().String(), "tls", scheme == "https", "revoke", f.cfg.Revoke,
		"store", store.name, "public_keys", f.keys.Source, "key_identifiers", len(pub.IDs()))
	return serveLeakEndpoint(ctx, log, ln, ep, pub, store, f.shutdownTimeout)
}

// validate reports every flag problem at once.
func (f *leakEndpointFlags) validate(e *env) error {
	errs := []error{e.envErr}
	if f.keys.Source == "" {
		errs = append(errs, fmt.Errorf("%s: required: a file, or %s", e.flagName("public-keys"), leakendpoint.GitHubPublicKeysURL))
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key: give both or neither"))
	}
	if f.tlsCert == "" && !f.plaintext && !loopbackAddr(f.addr) {
		errs = append(errs, fmt.Errorf("--addr %q is not loopback: serve it with --tls-cert/--tls-key, or pass --plaintext behind a TLS proxy", f.addr))
	}
	if f.shutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout: must be > 0"))
	}
	cfg := f.cfg
	cfg.MaxBody = int64(f.maxBody)
	keys := f.keys
	keys.Source = "set" // reported above, with the flag's name
	errs = append(errs, flagErrors(cfg.Validate()), flagErrors(keys.Validate()))
	return errors.Join(errs...)
}

// flagErrors prefixes each of the package's joined errors, which start
// with the field's name ("max-tokens: ..."), with "--", as the flags are
// named.
func flagErrors(err error) error {
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("--%w", err)
	}
	var out []error
	for _, e := range joined.Unwrap() {
		out = append(out, fmt.Errorf("--%w", e))
	}
	return errors.Join(out...)
}

func (f *leakEndpointFlags) listen() (net.Listener, string, error) {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, "", fmt.Errorf("--addr: %w", err)
	}
	if f.tlsCert == "" {
		return ln, "http", nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), "https", nil
}

// serveLeakEndpoint serves ep on ln until ctx ends, with the public keys'
// refresh and the store's Vault login alongside, then shuts down with
// grace for in-flight reports.
func serveLeakEndpoint(ctx context.Context, log *slog.Logger, ln net.Listener, ep http.Handler, pub *leakendpoint.PublicKeys, store *openedStore,
	grace time.Duration) error {
	srv := &http.Server{Handler: ep, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)} // TLS handshake noise from the internet
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return pub.Run(gctx) })
	if store.run != nil {
		g.Go(func() error { return store.run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}
