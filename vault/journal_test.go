package vault

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/vaulttest"
)

func TestJournal(t *testing.T) {
	v := vaulttest.Server(t)
	base := "journal-" + strings.ToLower(t.Name())
	s, err := New(testConfig(v.Addr, v.Token, base))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := func(i int) string { return fmt.Sprintf("AAAAAAAAA%03d", i) }

	entries, latest, complete, err := s.JournalSince(ctx, -1)
	if err != nil || latest != 0 || !complete || len(entries) != 0 {
		t.Fatalf("empty journal: %v %d %v %v", entries, latest, complete, err)
	}
	for i := 1; i <= 3; i++ {
		if err := s.AppendJournal(ctx, "revoke", id(i)); err != nil {
			t.Fatal(err)
		}
	}
	entries, latest, complete, err = s.JournalSince(ctx, 0)
	if err != nil || latest != 3 || !complete || len(entries) != 3 || entries[0].IDs[0] != id(1) || entries[2].Version != 3 {
		t.Fatalf("since 0: %+v %d %v %v", entries, latest, complete, err)
	}
	entries, _, complete, _ = s.JournalSince(ctx, 2)
	if !complete || len(entries) != 1 || entries[0].IDs[0] != id(3) {
		t.Errorf("since 2: %+v %v", entries, complete)
	}
	if entries, latest, complete, _ = s.JournalSince(ctx, -1); latest != 3 || !complete || len(entries) != 0 {
		t.Errorf("start from now: %+v %d %v", entries, latest, complete)
	}
	if _, _, complete, _ = s.JournalSince(ctx, 7); complete {
		t.Error("a journal behind what the reader saw (restarted) must read as incomplete")
	}
	// KV v2 keeps 10 versions by default: older ones are gone, so a reader
	// that far behind must be told the journal is incomplete.
	for i := 4; i <= 14; i++ {
		if err := s.AppendJournal(ctx, "update", id(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, latest, complete, err = s.JournalSince(ctx, 1); err != nil || complete || latest != 14 {
		t.Errorf("reader behind the kept versions: latest %d complete %v err %v, want incomplete", latest, complete, err)
	}
	// Concurrent appends (check-and-set) all land.
	errs := make(chan error, 4)
	for i := range 4 {
		go func() { errs <- s.AppendJournal(ctx, "create", id(100+i)) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent append: %v", err)
		}
	}
	if _, latest, _, _ = s.JournalSince(ctx, -1); latest != 18 {
		t.Errorf("after 4 concurrent appends: version %d, want 18", latest)
	}
	if err := s.AppendJournal(ctx, "revoke", "not-an-id"); err == nil {
		t.Error("journal accepted an invalid id")
	}
}
