package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/vault"
)

// keyStore is what the CLI and the server need from a store; the Vault and
// file stores both provide it.
type keyStore interface {
	extauthz.Store
	Get(ctx context.Context, keyID string) (*policy.Record, int, error)
	Create(ctx context.Context, keyID string, rec *policy.Record) error
	Update(ctx context.Context, keyID string, rec *policy.Record, version int) error
	Delete(ctx context.Context, keyID string) error
	List(ctx context.Context) ([]string, error)
	Peppers(ctx context.Context) (policy.Peppers, error)
}

var (
	_ keyStore = (*vault.Store)(nil)
	_ keyStore = (*filestore.Store)(nil)
)

// storeFlags select and configure the store.
type storeFlags struct {
	spec      string // "vault" or "file:PATH"
	mount     string
	basePath  string
	timeout   time.Duration
	namespace string
	vaultAuth vaultAuthFlags
}

func (f *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.spec, "store", "", `key store: "vault" (default when VAULT_ADDR is set) or "file:PATH"`)
	fs.StringVar(&f.mount, "vault-mount", "secret", "Vault KV v2 mount")
	fs.StringVar(&f.basePath, "vault-base-path", "keygate", "path under the mount; records live at <mount>/<base>/keys/<id>")
	fs.DurationVar(&f.timeout, "vault-timeout", 2*time.Second, "timeout of one Vault request (hot-path reads also obey --lookup-timeout)")
	f.vaultAuth.register(fs)
}

// openedStore is a store plus what must run alongside it (file reloads,
// Vault login and token renewal).
type openedStore struct {
	keyStore
	watch func(ctx context.Context) error // nil when there is nothing to watch
	// run keeps the Vault token fresh (login, renewal, re-login) until ctx
	// ends (for a static token: reports once if Vault refuses it); nil for
	// the file store.
	// Without it, the first request logs in (one-shot CLI commands).
	run func(ctx context.Context) error
	// ready is closed after the first successful Vault login; nil means
	// ready at once.
	ready <-chan struct{}
	// auth is the Vault token manager (login/renewal counters); nil for
	// the file store.
	auth *vault.Auth
	name string
}

// changeReporter is a store that reports what each reload changed (the
// file store).
type changeReporter interface {
	OnChange(func(filestore.Change))
}

// evictChanges makes a store that reports its changes apply them to srv's
// cache at once, rather than within --found-ttl: changed ids are evicted,
// and a pepper change fires the returned channel (for keepPeppers; nil
// for a store without reports). More ids than the store read burst expire
// the whole cache instead: evicted ids are no longer known, so re-reading
// many at once would be refused by --store-read-rate, while expired
// records are re-read unlimited.
func evictChanges(store *openedStore, srv *extauthz.Server, burst int, log *slog.Logger) <-chan struct{} {
	r, ok := store.keyStore.(changeReporter)
	if !ok {
		return nil
	}
	peppers := make(chan struct{}, 1)
	r.OnChange(func(c filestore.Change) {
		if len(c.IDs) > burst {
			srv.ExpireAll()
		} else {
			for _, id := range c.IDs {
				srv.Evict(id)
			}
		}
		if c.Peppers {
			select {
			case peppers <- struct{}{}:
			default: // a reload is already due
			}
		}
		log.Debug("key store changed: cache updated", "keys", len(c.IDs), "expired_all", len(c.IDs) > burst, "peppers", c.Peppers)
	})
	return peppers
}

// openStore opens the store named by --store. VAULT_ADDR, VAULT_TOKEN and
// VAULT_NAMESPACE are read from the environment as the vault CLI does.
func (f *storeFlags) open(ctx context.Context, e *env, log *slog.Logger, createFile bool) (*openedStore, error) {
	spec := f.spec
	if spec == "" && e.getenv("VAULT_ADDR") != "" {
		spec = "vault"
	}
	switch {
	case spec == "vault":
		return f.openVault(e, log)
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, errors.New(`--store "file:": the path is missing (want file:PATH)`)
		}
		var s *filestore.Store
		var err error
		if createFile {
			s, err = filestore.OpenOrCreate(ctx, path, log)
		} else {
			s, err = filestore.Open(path, log)
		}
		if err != nil {
			return nil, err
		}
		watch := func(ctx context.Context) error { return s.Watch(ctx, time.Second) }
		return &openedStore{keyStore: s, watch: watch, name: "file"}, nil
	case spec == "":
		return nil, errors.New(`no key store: set --store (or KEYGATE_STORE) to "vault" or "file:PATH", or set VAULT_ADDR`)
	}
	return nil, fmt.Errorf(`--store %q: want "vault" or "file:PATH"`, spec)
}

// openVault opens the Vault store with the auth flags; configuration
// errors name the flag or environment variable to fix.
func (f *storeFlags) openVault(e *env, log *slog.Logger) (*openedStore, error) {
	cfg := vault.Config{
		Addr:      e.getenv("VAULT_ADDR"),
		Namespace: e.getenv("VAULT_NAMESPACE"),
		Mount:     f.mount,
		BasePath:  f.basePath,
		Timeout:   f.timeout,
	}
	f.vaultAuth.apply(&cfg, e)
	s, err := vault.New(cfg)
	if err != nil {
		return nil, f.vaultAuth.flagErrors(err)
	}
	o := &openedStore{keyStore: s, auth: s.Auth(), name: "vault"}
	o.run = func(ctx context.Context) error { return s.Auth().Run(ctx, log) }
	if cfg.Auth.Method != vault.AuthToken || cfg.Auth.TokenFile != "" {
		o.ready = s.Auth().Ready()
	}
	return o, nil
}
