package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/console"
	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/vault"
)

// consoleFlags are `keygate console`'s flags.
type consoleFlags struct {
	cfg             console.Config
	store           storeFlags
	addr            string
	tlsCert, tlsKey string
	plaintext       bool
	userpass, ldap  string
	oidc, oidcRole  string
	keyPrefix, hash string
	logLevel        string
	linkTTL         time.Duration
	shutdownTimeout time.Duration
	markdown        bool // --help-markdown
	fs              *pflag.FlagSet
}

func newConsoleCmd(e *env) *cobra.Command {
	f := &consoleFlags{cfg: console.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the web console: security teams sign in with their own Vault identity to see, issue, rotate, revoke and import keys",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), e) },
	}
	fs := cmd.Flags()
	f.store.register(fs)
	for _, name := range consoleIgnored {
		_ = fs.MarkHidden(name)
	}
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address of the console")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM server certificate (chain): serve HTTPS (cookies then Secure and __Host-)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.BoolVar(&f.plaintext, "plaintext", false, "serve plain HTTP on a non-loopback address; without it (and without --tls-cert) "+
		"the console refuses to start on anything but loopback")
	fs.StringVar(&f.userpass, "userpass-mount", "userpass", "Vault userpass auth mount offered at sign-in; empty leaves it out")
	fs.StringVar(&f.ldap, "ldap-mount", "", `Vault LDAP auth mount offered at sign-in (e.g. "ldap"); empty leaves it out`)
	fs.StringVar(&f.oidc, "oidc-mount", "", `Vault OIDC auth mount: a "Sign in with single sign-on" button (e.g. "oidc"); empty leaves it out`)
	fs.StringVar(&f.oidcRole, "oidc-role", "", "role of --oidc-mount (its allowed_redirect_uris must include https://<console>/login/oidc/callback); empty: the mount's default_role")
	fs.StringVar(&f.keyPrefix, "key-prefix", policy.DefaultPrefix, "API key prefix for new keys")
	fs.StringVar(&f.hash, "hash", policy.AlgSHA256, "hash for new keys: sha256 or hmac-sha256 (needs a pepper in the store)")
	fs.DurationVar(&f.cfg.SessionMax, "session-max", f.cfg.SessionMax, "longest session, whatever its Vault token's TTL (the token's TTL bounds it too)")
	fs.DurationVar(&f.cfg.IdleTimeout, "idle-timeout", f.cfg.IdleTimeout, "a session unused this long ends and its Vault token is revoked")
	fs.IntVar(&f.cfg.PageSize, "page-size", f.cfg.PageSize, "keys per page")
	fs.StringVar(&f.cfg.PrometheusURL, "prometheus-url", f.cfg.PrometheusURL, "Prometheus scraping keygate serve: pages chart request rates "+
		`per key and tenant (serve --metrics-key-requests) and of all Checks, e.g. "http://prometheus:9090"`)
	docs(fs, "prometheus-url", "off")
	fs.DurationVar(&f.linkTTL, "link-ttl", 15*time.Minute, "(file store) how long the one-time sign-in link printed at start works")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "grace for in-flight requests on shutdown")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.markdown, "help-markdown", false, "print the flag table as Markdown, as in docs/console.md")
	_ = fs.MarkHidden("help-markdown")
	f.fs = fs
	return cmd
}

// consoleIgnored are the store flags for keygate's own Vault login, which
// the console has none of: hidden, and refused if given.
var consoleIgnored = []string{"vault-auth", "vault-token-file", "vault-approle-role-id", "vault-approle-secret-id-file",
	"vault-approle-mount", "vault-k8s-role", "vault-k8s-jwt-file", "vault-k8s-mount"}

var consoleDocs = flagDocs{
	intro: "Each flag can also be set by its `KEYGATE_*` variable (`--session-max` ↔ `KEYGATE_SESSION_MAX`).",
	tables: []flagTable{{}, {
		intro: "The store flags, as for `keygate serve`, but none for keygate's own Vault login: the console has no " +
			"Vault token of its own (`VAULT_TOKEN` is ignored; `--vault-auth` and its login flags are refused); people sign in with theirs:",
		group: storeGroup,
	}},
}

func (f *consoleFlags) run(ctx context.Context, e *env) error {
	if f.markdown {
		return writeFlagDocs(e.stdout, f.fs, consoleDocs)
	}
	log, err := newLogger(e.stderr, f.logLevel)
	if err != nil {
		return err
	}
	f.cfg.Log = log
	f.cfg.Secure = f.tlsCert != ""
	var errs []error
	format, err := policy.NewFormat(f.keyPrefix)
	if err != nil {
		errs = append(errs, fmt.Errorf("--key-prefix: %w", err))
	}
	if f.hash != policy.AlgSHA256 && f.hash != policy.AlgHMACSHA256 {
		errs = append(errs, fmt.Errorf("--hash %q: want %s or %s", f.hash, policy.AlgSHA256, policy.AlgHMACSHA256))
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key: give both or neither"))
	}
	if f.tlsCert == "" && !f.plaintext && !loopbackAddr(f.addr) {
		errs = append(errs, fmt.Errorf("--addr %q is not loopback: serve it with --tls-cert/--tls-key, or pass --plaintext behind a TLS proxy", f.addr))
	}
	for _, name := range consoleIgnored {
		if f.fs.Changed(name) {
			errs = append(errs, fmt.Errorf("%s: the console logs in to Vault as no one: people sign in with their own credentials", e.flagName(name)))
		}
	}
	if f.linkTTL <= 0 || f.shutdownTimeout <= 0 {
		errs = append(errs, errors.New("--link-ttl and --shutdown-timeout: must be > 0"))
	}
	errs = append(errs, e.envErr, renameConsole(f.cfg.Validate()))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	keys := keyadmin.Config{Format: format, Hash: f.hash}
	auth, link, err := f.authenticator(e, log, keys)
	if err != nil {
		return err
	}
	c, err := console.New(f.cfg, auth)
	if err != nil {
		return err
	}
	ln, err := f.listen()
	if err != nil {
		return err
	}
	scheme := "http"
	if f.cfg.Secure {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	if link != nil {
		tok, err := link.NewLink()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "keygate console: %s\nsign in (once, within %s): %s/login/link?t=%s\n", base, f.linkTTL, base, tok)
	} else {
		fmt.Fprintf(e.stdout, "keygate console: %s\n", base)
	}
	log.Info("console listening", "addr", ln.Addr().String(), "tls", f.cfg.Secure)
	return serveConsole(ctx, ln, c, f.shutdownTimeout)
}

// authenticator: Vault sign-in for the Vault store; one-time links for the
// file store (it has no identities).
func (f *consoleFlags) authenticator(e *env, log *slog.Logger, keys keyadmin.Config) (console.Authenticator, *console.LinkAuth, error) {
	spec := f.store.spec
	if spec == "" && e.getenv(envVaultAddr) != "" {
		spec = "vault"
	}
	if path, ok := strings.CutPrefix(spec, "file:"); ok && path != "" {
		s, err := filestore.Open(path, log)
		if err != nil {
			return nil, nil, err
		}
		svc, err := keyadmin.New(keys, s)
		if err != nil {
			return nil, nil, err
		}
		l := &console.LinkAuth{Admin: svc, LinkTTL: f.linkTTL, Now: time.Now}
		return l, l, nil
	}
	if spec != "vault" {
		return nil, nil, errors.New(`no key store: set --store (or KEYGATE_STORE) to "vault" or "file:PATH", or set VAULT_ADDR`)
	}
	cfg := f.store.vaultConfig(e)
	probe := cfg
	probe.Token, probe.Auth.Method, probe.Auth.TokenFile = "console-probe", vault.AuthToken, "" // people sign in with their own
	if err := probe.Validate(); err != nil {
		return nil, nil, vaultErrors(err, e)
	}
	return &console.VaultAuth{Vault: cfg, Keys: keys, UserpassMount: f.userpass, LDAPMount: f.ldap,
		OIDCMount: f.oidc, OIDCRole: f.oidcRole}, nil, nil
}

func (f *consoleFlags) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("--addr: %w", err)
	}
	if f.tlsCert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// serveConsole serves c on ln until ctx ends, then shuts down: in-flight
// requests get grace to finish, and every session's Vault token is revoked.
func serveConsole(ctx context.Context, ln net.Listener, c *console.Console, grace time.Duration) error {
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return c.Run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}

// loopbackAddr reports whether a listen address is on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// renameConsole names console.Config's fields as the flags.
func renameConsole(err error) error {
	if err == nil {
		return nil
	}
	return field.Rename(err, func(name string) string { return "--" + name })
}
