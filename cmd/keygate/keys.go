package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

// errNotID never repeats the argument: a user may have pasted the key itself.
var errNotID = errors.New("the argument is not a key id (12 letters and digits: the id, not the key)")

// keysCtx is what a keys command works with.
type keysCtx struct {
	e      *env
	f      *keysFlags
	store  keyStore // an *openedStore
	format policy.Format
	now    time.Time
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
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return &keysCtx{e: e, f: f, store: store, format: format, now: time.Now().UTC()}, ctx, cancel, nil
}

func newKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Issue, import, inspect, update, rotate, revoke and delete API keys in the store",
	}
	cmd.AddCommand(newCreateCmd(e), newListCmd(e), newShowCmd(e), newRevokeCmd(e), newRotateCmd(e), newUpdateCmd(e), newDeleteCmd(e), newImportCmd(e), newAuditCmd(e))
	return cmd
}

// keysCommand builds a keys subcommand whose body runs with an open store.
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
			return body(ctx, k, args)
		},
	}
	f.register(cmd.Flags())
	return cmd, f
}

// hasher returns the hasher for new keys (loading peppers for HMAC).
func (k *keysCtx) hasher(ctx context.Context) (*policy.Hasher, error) {
	var p policy.Peppers
	if k.f.hash == policy.AlgHMACSHA256 {
		var err error
		if p, err = k.store.Peppers(ctx); err != nil {
			return nil, fmt.Errorf("load pepper: %w", err)
		}
	}
	h, err := policy.NewHasher(k.f.hash, p)
	if err != nil {
		return nil, fmt.Errorf("--hash: %w", err)
	}
	return h, nil
}

// issue generates a key for rec, sets its hash and creates it in the store.
// It retries on the (astronomically unlikely) id collision.
func (k *keysCtx) issue(ctx context.Context, rec *policy.Record) (rawKey, keyID string, err error) {
	h, err := k.hasher(ctx)
	if err != nil {
		return "", "", err
	}
	for range 3 {
		if rawKey, keyID, err = k.format.Generate(); err != nil {
			return "", "", err
		}
		rec.Hash = h.Hash(rawKey).String()
		if err = rec.Validate(); err != nil {
			return "", "", err
		}
		if err = k.store.Create(ctx, keyID, rec); !errors.Is(err, policy.ErrKeyExists) {
			break
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("create key: %w", err)
	}
	return rawKey, keyID, nil
}

// modify reads keyID, applies change and writes it back with check-and-set,
// retrying a few times when another writer got there first.
func (k *keysCtx) modify(ctx context.Context, keyID string, change func(*policy.Record) error) (*policy.Record, error) {
	if !policy.ValidID(keyID) {
		return nil, errNotID
	}
	for range 5 {
		rec, ver, err := k.store.Get(ctx, keyID)
		if err != nil {
			return nil, err // the store names the key
		}
		if err := change(rec); err != nil {
			return nil, err
		}
		rec.UpdatedAt = k.now.Format(time.RFC3339)
		if err := rec.Validate(); err != nil {
			return nil, err
		}
		err = k.store.Update(ctx, keyID, rec, ver)
		if !errors.Is(err, policy.ErrConflict) {
			if err != nil {
				return nil, err
			}
			return rec, nil
		}
	}
	return nil, fmt.Errorf("update key %s: %w", keyID, policy.ErrConflict)
}
