package vault_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/internal/keyadmin/storetest"
	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/vault"
)

// The Vault store has every optional capability keyadmin knows.
var (
	_ keyadmin.Store         = (*vault.Store)(nil)
	_ keyadmin.Journal       = (*vault.Store)(nil)
	_ keyadmin.UsageReader   = (*vault.Store)(nil)
	_ keyadmin.PepperRotator = (*vault.Store)(nil)
	_ keyadmin.Restorer      = (*vault.Store)(nil)
)

// TestStoreContract runs keyadmin's store contract on the real dev
// server, each case under a base path of its own.
func TestStoreContract(t *testing.T) {
	v := vaulttest.Server(t)
	kv := v.Client(t).KVv2("secret")
	storetest.Run(t, func(t *testing.T) storetest.Fixture {
		b := make([]byte, 6)
		rand.Read(b)
		base := "contract/" + hex.EncodeToString(b)
		cfg := vault.DefaultConfig()
		cfg.Addr, cfg.Token, cfg.BasePath, cfg.Timeout = v.Addr, v.Token, base, 5*time.Second
		s, err := vault.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		return storetest.Fixture{
			Store: s,
			PutRaw: func(t *testing.T, keyID string, data []byte) {
				var rec map[string]any
				if err := json.Unmarshal(data, &rec); err != nil {
					t.Fatal(err)
				}
				if _, err := kv.Put(ctx, base+"/keys/"+keyID, rec); err != nil {
					t.Fatal(err)
				}
			},
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
			// KV v2's check-and-set does not see a soft delete (see
			// keyadmin's package doc).
			RecordUse: func(t *testing.T, keyID string, at time.Time) {
				if err := s.RecordUsage(ctx, keyID, at); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
