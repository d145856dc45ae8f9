package vault

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/policy"
)

const eventsPolicy = "keygate-events"

// TestEventsPolicy: Vault accepts keygate-events.hcl as it is on disk, its
// stanzas are the ones documented, and a token holding only it can do what
// `keygate events` does (read and list keys, read the journal and key use,
// keep the lease and the state) and nothing that changes a key.
func TestEventsPolicy(t *testing.T) {
	v := newPolicyFixtureBare(t)
	ctx := context.Background()
	text := readPolicyFile(t, eventsPolicy)
	check(t, v.root.Sys().PutPolicyWithContext(ctx, eventsPolicy, text))
	want := []stanza{
		{"secret/data/keygate/keys/+", []string{"read"}},
		{"secret/metadata/keygate/keys", []string{"list"}},
		{"secret/data/keygate/journal", []string{"read"}},
		{"secret/data/keygate/usage/+", []string{"read"}},
		{"secret/data/keygate/events/lock", []string{"create", "read", "update"}},
		{"secret/data/keygate/events/state", []string{"create", "read", "update"}},
	}
	stanzas := parsePolicy(t, text)
	if diff := cmp.Diff(want, stanzas, cmp.AllowUnexported(stanza{})); diff != "" {
		t.Errorf("stanzas (-want +got):\n%s", diff)
	}
	tok := policyToken(t, v.root, eventsPolicy)
	for _, s := range stanzas {
		probe := strings.ReplaceAll(s.path, "+", "AbCdEf012345")
		got, err := v.root.Sys().CapabilitiesWithContext(ctx, tok, probe)
		check(t, err)
		slices.Sort(got)
		if !slices.Equal(got, s.caps) {
			t.Errorf("Vault's capabilities on %s = %v, the file says %v", probe, got, s.caps)
		}
	}

	id, rec := v.newKey(t)
	check(t, v.rootStore.Create(ctx, id, rec))
	v.eraseAfter(t, journalMeta)
	check(t, v.rootStore.AppendJournal(ctx, "revoke", id))
	check(t, v.rootStore.RecordUsage(ctx, id, time.Now()))
	v.eraseAfter(t, "secret/metadata/keygate/events/lock")
	v.eraseAfter(t, "secret/metadata/keygate/events/state")
	other, otherRec := v.newKey(t)

	s := v.store(t, tok, DefaultConfig().BasePath)
	c := v.client(t, tok)
	runSteps(t, []step{
		{"read a key", func(ctx context.Context) error { _, _, err := s.Get(ctx, id); return err }, nil},
		{"list the keys", func(ctx context.Context) error { _, err := s.List(ctx); return err }, nil},
		{"read the journal", func(ctx context.Context) error { _, _, _, err := s.JournalSince(ctx, 0); return err }, nil},
		{"read key use", func(ctx context.Context) error { _, _, err := s.LastUsed(ctx, id); return err }, nil},
		{"take the lease", func(ctx context.Context) error {
			_, err := s.AcquireEventsLease(ctx, "test", time.Now(), time.Second)
			return err
		}, nil},
		{"release the lease", func(ctx context.Context) error { return s.ReleaseEventsLease(ctx, "test") }, nil},
		{"save and read the state", func(ctx context.Context) error {
			_, version, err := s.EventsState(ctx)
			if err != nil {
				return err
			}
			_, err = s.SaveEventsState(ctx, json.RawMessage(`{}`), version)
			return err
		}, nil},
		{"create a key", func(ctx context.Context) error { return s.Create(ctx, other, otherRec) }, errDenied},
		{"update a key", func(ctx context.Context) error { return s.Update(ctx, id, rec, 1) }, errDenied},
		{"delete a key", func(ctx context.Context) error { return s.Delete(ctx, id) }, errDenied},
		{"append to the journal", func(ctx context.Context) error { return s.AppendJournal(ctx, "update", id) }, errDenied},
		{"record key use", func(ctx context.Context) error { return s.RecordUsage(ctx, id, time.Now()) }, errDenied},
		{"read the pepper", apiRead(c, "secret/data/keygate/pepper"), errDenied},
		{"read the events metadata", apiRead(c, "secret/metadata/keygate/events/state"), errDenied},
		{"write the hot-key slots", apiWrite(c, "secret/data/keygate/hot/0", map[string]any{"data": map[string]any{}}), errDenied},
		{"another base path's lease", func(ctx context.Context) error {
			_, err := v.store(t, tok, "keygate-other").AcquireEventsLease(ctx, "x", time.Now(), time.Second)
			return err
		}, errDenied},
	})
	if _, _, err := v.rootStore.Get(ctx, other); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("the refused create left a record: %v", err)
	}
}

// newPolicyFixtureBare is the shared dev server with a root client and a
// root Store on the default base path, without the other policies.
func newPolicyFixtureBare(t *testing.T) *policyFixture {
	t.Helper()
	f := &policyFixture{}
	f.vault = vaulttest.Server(t)
	f.root = f.vault.Client(t)
	f.rootStore = f.store(t, f.vault.Token, DefaultConfig().BasePath)
	return f
}
