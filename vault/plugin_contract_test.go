package vault_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/keyadmin/storetest"
	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/vault"
	"github.com/keygate/keygate/vaultplugin"
)

// pluginVault starts a dev server with keygate's secrets engine built and
// registered as on a real cluster (by SHA-256), and returns a function
// that enables it at a new mount.
func pluginVault(t *testing.T) (*vaulttest.Vault, func(t *testing.T) string) {
	t.Helper()
	dir := t.TempDir()
	v := vaulttest.PluginServer(t, dir)
	sum := vaulttest.BuildPlugin(t, "github.com/keygate/keygate/cmd/keygate-vault-plugin", dir, "keygate-vault-plugin")
	root := v.Client(t)
	if err := root.Sys().RegisterPlugin(&vaultapi.RegisterPluginInput{Name: vaultplugin.Name, Type: vaultapi.PluginTypeSecrets,
		Command: "keygate-vault-plugin", SHA256: sum, Version: vaultplugin.Version}); err != nil {
		t.Fatalf("register the plugin: %v", err)
	}
	return v, func(t *testing.T) string {
		t.Helper()
		b := make([]byte, 4)
		rand.Read(b)
		mount := "kg" + hex.EncodeToString(b)
		if err := root.Sys().Mount(mount, &vaultapi.MountInput{Type: vaultplugin.Name}); err != nil {
			t.Fatalf("enable the plugin: %v", err)
		}
		return mount
	}
}

// TestPluginStoreContract runs keyadmin's store contract on the plugin
// layout (--vault-engine plugin): records and journal in the plugin,
// peppers and key use in KV v2. The plugin validates every write, so it
// cannot hold a malformed record (those cases skip).
func TestPluginStoreContract(t *testing.T) {
	v, enable := pluginVault(t)
	storetest.Run(t, func(t *testing.T) storetest.Fixture {
		mount := enable(t)
		cfg := vault.DefaultConfig()
		cfg.Addr, cfg.Token, cfg.Timeout = v.Addr, v.Token, 5*time.Second
		cfg.Engine, cfg.Mount, cfg.BasePath = vault.EnginePlugin, mount, "contract/"+mount
		s, err := vault.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		return storetest.Fixture{
			Store: s,
			Journal: func(t *testing.T) []storetest.JournalEntry {
				entries, _, complete, err := s.JournalSince(ctx, 0)
				if err != nil || !complete {
					t.Fatalf("read the journal: complete %v, %v", complete, err)
				}
				var out []storetest.JournalEntry
				for _, e := range entries {
					out = append(out, storetest.JournalEntry{Op: e.Op, IDs: e.IDs})
				}
				return out
			},
			RecordUse: func(t *testing.T, keyID string, at time.Time) {
				if err := s.RecordUsage(ctx, keyID, at); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
