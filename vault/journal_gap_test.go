package vault

import (
	"context"
	"fmt"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

// TestJournalGap: a replica up to maxJournalGap versions behind is given
// every entry it missed; one further behind is told the journal is
// incomplete (it drops its whole cache) without reading them. The gap is
// latest minus the version the replica saw, wherever the two are in the
// journal. The journal entry keeps more versions than the gap here, so
// KV's pruning (TestJournal) does not decide.
func TestJournalGap(t *testing.T) {
	v := vaulttest.Server(t)
	base := "journal-gap-" + randomHex(4)
	s, err := New(testConfig(v.Addr, v.Token, base))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.Client(t).KVv2("secret").PutMetadata(ctx, base+"/journal", vaultapi.KVMetadataPutInput{MaxVersions: maxJournalGap + 10}); err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return fmt.Sprintf("AAAAAAAAA%03d", i) }
	const latest = maxJournalGap + 1
	for i := 1; i <= latest; i++ {
		if err := s.AppendJournal(ctx, "update", id(i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		after    int
		complete bool
	}{
		{"maxJournalGap behind", latest - maxJournalGap, true},
		{"one more behind", latest - maxJournalGap - 1, false},
		{"a few behind, late in the journal", latest - 10, true},
		{"one behind", latest - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, gotLatest, complete, err := s.JournalSince(ctx, tt.after)
			if err != nil || gotLatest != latest || complete != tt.complete {
				t.Fatalf("JournalSince(%d) = latest %d complete %v, %v; want %d %v", tt.after, gotLatest, complete, err, latest, tt.complete)
			}
			want := 0
			if tt.complete {
				want = latest - tt.after
			}
			if len(entries) != want {
				t.Fatalf("JournalSince(%d): %d entries, want %d", tt.after, len(entries), want)
			}
			for i, e := range entries {
				if v := tt.after + 1 + i; e.Version != v || len(e.IDs) != 1 || e.IDs[0] != id(v) {
					t.Errorf("entry %d = %+v, want version %d naming %s", i, e, v, id(v))
				}
			}
		})
	}
}
