package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/filestore"
	kgserver "github.com/keygate/keygate/internal/server"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/vault"
)

// keyStore is what the CLI and the server need from a store; the Vault and
// file stores both provide it.
type keyStore interface {
	kgserver.Store
	Get(ctx context.Context, keyID string) (*policy.Record, int, error)
	Create(ctx context.Context, keyID string, rec *policy.Record) error
	Update(ctx context.Context, keyID string, rec *policy.Record, version int) error
	Delete(ctx context.Context, keyID string) error
	List(ctx context.Context) ([]string, error)
}

var (
	_ keyStore = (*vault.Store)(nil)
	_ keyStore = (*filestore.Store)(nil)
	// serveDeps finds these abilities by type assertion: a signature that
	// drifted would silently turn them off.
	_ kgserver.HotKeys     = (*vault.Store)(nil)
	_ kgserver.UsageWriter = (*vault.Store)(nil)
)

// storeFlags select and configure the store: --store, and the Vault
// flags, bound to a vault.Config.
type storeFlags struct {
	spec  string // "vault" or "file:PATH"
	vault vault.Config
}

// register adds the store flags, which serve and every command that opens
// the store take; the README lists them in their own table. The Vault
// flags are bound to f.vault, set to vault.DefaultConfig here: a flag's
// default is its field's, written once.
func (f *storeFlags) register(fs *pflag.FlagSet) {
	f.vault = vault.DefaultConfig()
	c := &f.vault
	fs.StringVar(&f.spec, "store", "", `key store: "vault" or "file:PATH" (the embedded file store, reloaded on change)`)
	docs(fs, "store", `"vault" if VAULT_ADDR is set`, "File store|vault.md#file-store")
	fs.StringVar(&c.Mount, "vault-mount", c.Mount, `Vault KV v2 mount; with --vault-engine "plugin", the keygate secrets engine's mount`)
	fs.StringVar(&c.Engine, "vault-engine", c.Engine, `where key records and the change journal live: "kv" (KV v2 at --vault-mount/--vault-base-path) `+
		`or "plugin" (keygate's Vault secrets engine at --vault-mount)`)
	docs(fs, "vault-engine", "", "Vault secrets engine|vault-plugin.md")
	fs.StringVar(&c.KVMount, "vault-kv-mount", c.KVMount, `with --vault-engine "plugin": the KV v2 mount of the peppers, key use and hot-key slots `+
		"(under --vault-base-path)")
	fs.StringVar(&c.BasePath, "vault-base-path", c.BasePath, `path under the mount: records at "<mount>/<base>/keys/<id>"`)
	fs.DurationVar(&c.Timeout, "vault-timeout", c.Timeout, "timeout of one Vault request, without client retries (reads on the Check path also obey --lookup-timeout)")
	registerVaultAuth(fs, c)
	for _, name := range storeFlagNames {
		_ = fs.SetAnnotation(name, docGroup, []string{storeGroup})
	}
}

// storeFlagNames are the flags register adds.
var storeFlagNames = []string{"store", "vault-mount", "vault-engine", "vault-kv-mount", "vault-base-path", "vault-timeout", "vault-auth", "vault-token-file",
	"vault-approle-role-id", "vault-approle-secret-id-file", "vault-approle-mount", "vault-k8s-role", "vault-k8s-jwt-file",
	"vault-k8s-mount", "vault-ca-cert", "vault-client-cert", "vault-client-key"}

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

// openStore opens the store named by --store. VAULT_ADDR, VAULT_TOKEN and
// VAULT_NAMESPACE are read from the environment as the vault CLI does.
func (f *storeFlags) open(ctx context.Context, e *env, log *slog.Logger, createFile bool) (*openedStore, error) {
	spec := f.spec
	if spec == "" && e.getenv(envVaultAddr) != "" {
		spec = "vault"
	}
	switch {
	case spec == "vault":
		return f.openVault(e, log)
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, fmt.Errorf(`%s "file:": the path is missing (want file:PATH)`, e.flagName("store"))
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
	return nil, fmt.Errorf(`%s %q: want "vault" or "file:PATH"`, e.flagName("store"), spec)
}

// openVault opens the Vault store configured by the flags and the
// environment; configuration errors name the flag or environment variable
// to fix.
func (f *storeFlags) openVault(e *env, log *slog.Logger) (*openedStore, error) {
	cfg := f.vaultConfig(e)
	s, err := vault.New(cfg)
	if err != nil {
		return nil, vaultErrors(err, e)
	}
	o := &openedStore{keyStore: s, auth: s.Auth(), name: "vault"}
	o.run = func(ctx context.Context) error { return s.Auth().Run(ctx, log) }
	if cfg.Auth.Method != vault.AuthToken || cfg.Auth.TokenFile != "" {
		o.ready = s.Auth().Ready()
	}
	return o, nil
}
