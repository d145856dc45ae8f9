package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/field"
	kgserver "github.com/keygate/keygate/internal/server" // "server" is the e2e tests' type for a running serve
	"github.com/keygate/keygate/vault"
)

// serveFlags are serve's flags: a kgserver.Config the flags are bound to,
// plus what main keeps (the store to open, the log level).
type serveFlags struct {
	cfg      kgserver.Config
	store    storeFlags
	logLevel string
	markdown bool // --help-markdown
	fs       *pflag.FlagSet
	bad      *badValues
}

func newServeCmd(e *env) *cobra.Command {
	f := &serveFlags{cfg: kgserver.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve Envoy's ext_authz Check API (gRPC) with health and reflection",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), e) },
	}
	f.fs = cmd.Flags()
	f.register(f.fs)
	f.bad = collect(f.fs)
	return cmd
}

// run reports every problem in the flags, the environment and the store
// settings at once, each named as the user set it, then serves.
func (f *serveFlags) run(ctx context.Context, e *env) error {
	if f.markdown {
		return writeFlagDocs(e.stdout, f.fs, serveDocs)
	}
	log, logErr := newLogger(e.stderr, f.logLevel)
	if logErr != nil {
		log, _ = newLogger(e.stderr, "info")
	}
	store, storeErr := f.store.open(ctx, e, log, false)
	if err := errors.Join(f.bad.err(), e.envErr, logErr, f.cfg.Validate(), storeErr); err != nil {
		return f.named(e, err)
	}
	f.cfg.Metrics.Version = version
	deps := serveDeps(store)
	deps.Log, deps.Stdout, deps.Stderr = log, e.stdout, e.stderr
	deps.Settings = func() map[string]string { return f.effectiveConfig(e.getenv) }
	srv, err := kgserver.New(f.cfg, deps)
	if err != nil {
		return f.named(e, err)
	}
	return srv.Run(ctx)
}

// named renames the fields in err's problems to the flags or KEYGATE_*
// variables the user set.
func (f *serveFlags) named(e *env, err error) error {
	return field.Rename(err, func(name string) string {
		if alias, ok := flagAliases[name]; ok && !f.fs.Changed(name) && f.fs.Changed(alias) {
			name = alias
		}
		return e.flagName(name)
	})
}

// serveDeps is what the server needs of the opened store: the store, what
// runs beside it, and the abilities it has.
func serveDeps(o *openedStore) kgserver.Deps {
	d := kgserver.Deps{Store: o.keyStore, StoreName: o.name, Login: o.run, LoggedIn: o.ready, Watch: o.watch}
	if w, ok := o.keyStore.(kgserver.UsageWriter); ok {
		d.Usage = w
	}
	if h, ok := o.keyStore.(kgserver.HotKeys); ok { // Vault; the file store holds every record in memory
		d.HotKeys = h
	}
	switch s := o.keyStore.(type) {
	case *vault.Store:
		d.Journal = vaultJournal{s}
		d.ObserveStore = func(observe func(op, class string, took time.Duration)) { s.SetObserver(observe) }
	case *filestore.Store:
		d.OnChange = func(apply func(kgserver.StoreChange)) {
			s.OnChange(func(c filestore.Change) { apply(kgserver.StoreChange{IDs: c.IDs, Peppers: c.Peppers}) })
		}
	}
	if o.auth != nil {
		d.AuthCounts = o.auth
	}
	return d
}

// vaultJournal is Vault's change journal as the server reads it.
type vaultJournal struct{ s *vault.Store }

func (j vaultJournal) JournalSince(ctx context.Context, after int) ([]kgserver.JournalEntry, int, bool, error) {
	entries, latest, complete, err := j.s.JournalSince(ctx, after)
	out := make([]kgserver.JournalEntry, len(entries))
	for i, e := range entries {
		out[i] = kgserver.JournalEntry{Version: e.Version, Op: e.Op, IDs: e.IDs}
	}
	return out, latest, complete, err
}

// effectiveConfig is every serve flag's value after flags and KEYGATE_*
// variables were applied, plus the Vault variables keygate reads. Secrets
// never appear: keygate takes them only from the environment or files, and
// only whether they are set is shown.
func (f *serveFlags) effectiveConfig(getenv func(string) string) map[string]string {
	out := map[string]string{}
	f.fs.VisitAll(func(fl *pflag.Flag) {
		if !fl.Hidden {
			out["--"+fl.Name] = fl.Value.String()
		}
	})
	out[envVaultAddr], out[envVaultNamespace] = getenv(envVaultAddr), getenv(envVaultNamespace)
	for _, secret := range []string{envVaultToken, secretIDEnv} {
		out[secret] = "(unset)"
		if getenv(secret) != "" {
			out[secret] = "(set, redacted)"
		}
	}
	return out
}
