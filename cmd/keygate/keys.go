package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// keysFlags are shared by every `keygate keys` command.
type keysFlags struct {
	store     storeFlags
	keyPrefix string
	hash      string
	jsonOut   bool
	timeout   time.Duration
}

func (f *keysFlags) register(fs *pflag.FlagSet) {
	f.store.register(fs)
	fs.StringVar(&f.keyPrefix, "key-prefix", policy.DefaultPrefix, "API key prefix for new keys")
	fs.StringVar(&f.hash, "hash", policy.AlgSHA256, "hash for new keys: sha256 or hmac-sha256 (needs a pepper in the store)")
	fs.BoolVar(&f.jsonOut, "json", false, "print JSON for scripts")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "overall timeout of the command")
}

// keysCtx is what a keys command works with.
type keysCtx struct {
	e   *env
	f   *keysFlags
	svc *keyadmin.Service
	now time.Time
}

// open validates the shared flags and opens the store.
func (f *keysFlags) open(ctx context.Context, e *env, createFile bool) (*keysCtx, context.Context, context.CancelFunc, error) {
	errs := []error{e.envErr}
	format, err := policy.NewFormat(f.keyPrefix)
	if err != nil {
		errs = append(errs, fmt.Errorf("--key-prefix: %w", err))
	}
	if f.hash != policy.AlgSHA256 && f.hash != policy.AlgHMACSHA256 {
		errs = append(errs, fmt.Errorf("--hash %q: want %s or %s", f.hash, policy.AlgSHA256, policy.AlgHMACSHA256))
	}
	if f.timeout <= 0 {
		errs = append(errs, errors.New("--timeout: must be > 0"))
	}
	log, _ := newLogger(e.stderr, "warn")
	store, err := f.store.open(ctx, e, log, createFile)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, nil, err
	}
	now := time.Now().UTC()
	// The store itself, not the openedStore around it: keyadmin finds its
	// optional capabilities (journal, usage, peppers, restore) by its methods.
	svc, err := keyadmin.New(keyadmin.Config{Format: format, Hash: f.hash, Now: func() time.Time { return now }}, store.keyStore)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return &keysCtx{e: e, f: f, svc: svc, now: now}, ctx, cancel, nil
}

func newKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Issue, import, inspect, update, rotate, revoke and delete API keys in the store",
	}
	cmd.AddCommand(newCreateCmd(e), newListCmd(e), newShowCmd(e), newRevokeCmd(e), newRotateCmd(e), newUpdateCmd(e), newDeleteCmd(e), newImportCmd(e), newAuditCmd(e))
	return cmd
}

// keysCommand builds a keys subcommand whose body runs with an open store;
// keyadmin's errors are said in the CLI's terms (cliError).
func keysCommand(e *env, use, short string, args cobra.PositionalArgs, createFile bool,
	body func(ctx context.Context, k *keysCtx, args []string) error) (*cobra.Command, *keysFlags) {
	f := &keysFlags{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, ctx, cancel, err := f.open(cmd.Context(), e, createFile)
			if err != nil {
				return err
			}
			defer cancel()
			return cliError(body(ctx, k, args))
		},
	}
	f.register(cmd.Flags())
	return cmd, f
}

// errNoUsage says why key use is unknown with the file store.
var errNoUsage = errors.New("the file store does not record when keys are used (Vault does, written by `keygate serve --usage-interval`)")

// flagOf names the flag of a keyadmin field ("" if none says it).
func flagOf(field string) string {
	switch field {
	case keyadmin.FieldHash:
		return "--hash"
	case keyadmin.FieldGrace:
		return "--grace"
	}
	return ""
}

// cliError says a keyadmin error in the CLI's terms: its commands and
// flags. Other errors pass unchanged.
func cliError(err error) error {
	switch e := err.(type) {
	case *keyadmin.ForceError:
		if e.Unreadable != nil {
			return fmt.Errorf("%w\nits status cannot be read: pass --force to delete it anyway", e.Unreadable)
		}
		return fmt.Errorf("key %s is active: revoke it first (keygate keys revoke %s), or pass --force to delete it while in use", e.KeyID, e.KeyID)
	case *keyadmin.RotateError:
		return fmt.Errorf("new key %s was created, but old key %s was NOT changed (finish with `keygate keys update %s --expires-at %s` or `keygate keys revoke %s`): %w",
			e.NewID, e.OldID, e.OldID, e.GraceEnd.UTC().Format(time.RFC3339), e.OldID, e.Err)
	case *keyadmin.FieldError:
		switch {
		case errors.Is(e, keyadmin.ErrNoRateLimit):
			return errors.New("--rate-burst: the key has no rate limit; give --rate-limit too")
		case e.Field == keyadmin.FieldUnusedFor && errors.Is(e, keyadmin.ErrUnsupported):
			return fmt.Errorf("--unused-for: %w", errNoUsage)
		case flagOf(e.Field) != "":
			return fmt.Errorf("%s: %w", flagOf(e.Field), e.Err)
		}
	case interface{ Unwrap() []error }: // errors.Join
		var errs []error
		for _, err := range e.Unwrap() {
			errs = append(errs, cliError(err))
		}
		return errors.Join(errs...)
	}
	return err
}

// printWarnings reports what failed after a change was written.
func printWarnings(k *keysCtx, warnings []error) {
	for _, w := range warnings {
		var j *keyadmin.JournalError
		if errors.As(w, &j) {
			fmt.Fprintf(k.e.stderr, "keygate: warning: the %s is written, but the change journal could not be: "+
				"replicas apply it within their --max-record-age (--found-ttl if 0) instead of --journal-poll; "+
				"to apply it now, POST /v1/evict?id=<key id> to each replica's --admin-addr (%v)\n", j.Op, j.Err)
			continue
		}
		fmt.Fprintf(k.e.stderr, "keygate: warning: %v\n", w)
	}
}
