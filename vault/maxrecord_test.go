package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/policy"
)

// Vault's limits on an entry's custom_metadata (the Vault UI edits it),
// and its default max_request_size.
const (
	vaultCustomKeys     = 64
	vaultCustomKeyLen   = 128
	vaultCustomValueLen = 512
	vaultMaxRequest     = 32 << 20
)

// TestLookupLargestRecord: the hot path reads a record of
// policy.MaxRecordSize bytes whose entry also carries custom_metadata at
// Vault's limits, made of the characters Vault's JSON escapes to six bytes
// (<, > and &); that is what maxBody must fit.
func TestLookupLargestRecord(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	rec.Metadata = map[string]string{"pad": ""}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	rec.Metadata["pad"] = strings.Repeat("p", policy.MaxRecordSize-len(data))
	if data, _ = json.Marshal(rec); len(data) != policy.MaxRecordSize {
		t.Fatalf("test record is %d bytes, want %d", len(data), policy.MaxRecordSize)
	}
	check(t, f.store.Create(ctx, id, rec))
	custom := map[string]any{}
	for i := range vaultCustomKeys {
		k := fmt.Sprintf("%03d", i) + strings.Repeat("<", vaultCustomKeyLen-3)
		custom[k] = strings.Repeat("&", vaultCustomValueLen)
	}
	check(t, f.kv.PutMetadata(ctx, f.keyPath(id), vaultapi.KVMetadataPutInput{CustomMetadata: custom}))
	got, err := f.store.Lookup(ctx, id)
	if err != nil {
		t.Fatalf("Lookup of the largest record: %v", err)
	}
	if diff := cmp.Diff(rec, got, ignoreCompiled); diff != "" {
		t.Errorf("Lookup (-created +got):\n%s", diff)
	}
}

// TestGetOversizedRecord: an entry written by hand as large as Vault
// accepts is not a record, but Get still returns its version with
// ErrInvalidRecord, so that it can be replaced (Update) or deleted. That is
// what maxAdminBody must fit (about 2 s: a 32 MiB write and read).
func TestGetOversizedRecord(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, _ := newRecord(t)
	// The request is {"data":{"hash":"…"},"options":{}}: leave room for it.
	pad := strings.Repeat("h", vaultMaxRequest-1024)
	if _, err := f.kv.Put(ctx, f.keyPath(id), map[string]any{"hash": pad}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.kv.DeleteMetadata(context.Background(), f.keyPath(id)) }) // the dev server keeps it in memory
	rec, version, err := f.store.Get(ctx, id)
	if rec != nil || version != 1 || !errors.Is(err, policy.ErrInvalidRecord) {
		t.Errorf("Get of a %d-byte entry = %v, version %d, %v; want version 1 and ErrInvalidRecord", len(pad), rec, version, err)
	}
}
