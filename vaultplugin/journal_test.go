package vaultplugin

import (
	"context"
	"testing"
)

func TestJournal(t *testing.T) {
	h := newHarness(t)
	if entries, latest, complete := h.journal(-1); len(entries) != 0 || latest != 0 || !complete {
		t.Fatalf("empty journal: %v %d %v", entries, latest, complete)
	}
	ctx := context.Background()
	id := "AAAAAAAAAAAA"
	for range 3 {
		if err := h.b.appendJournal(ctx, h.s, "update", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.b.appendJournal(ctx, h.s, "new-keys"); err != nil {
		t.Fatal(err)
	}
	entries, latest, complete := h.journal(1)
	if latest != 4 || !complete || len(entries) != 3 || entries[0]["version"] != 2 || entries[2]["op"] != "new-keys" {
		t.Fatalf("after 1: %v latest %d complete %v", entries, latest, complete)
	}
	if ids := entries[2]["ids"].([]string); len(ids) != 0 {
		t.Fatalf("new-keys names ids %v", ids)
	}
	if entries, latest, complete := h.journal(-1); len(entries) != 0 || latest != 4 || !complete {
		t.Fatalf("after -1: only the latest version: %v %d %v", entries, latest, complete)
	}
	if entries, _, complete := h.journal(4); len(entries) != 0 || !complete {
		t.Fatalf("at latest: %v %v", entries, complete)
	}
	if _, _, complete := h.journal(9); complete {
		t.Fatalf("after > latest (the journal went back) must be incomplete")
	}
	if err := h.b.appendJournal(ctx, h.s, "update", "kg_not-an-id"); err == nil {
		t.Fatalf("journal took a non-id")
	}
}

func TestJournalPrunes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for range journalKeep + 5 {
		if err := h.b.appendJournal(ctx, h.s, "update", "AAAAAAAAAAAA"); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for k := range h.snapshot() {
		if len(k) > len(journalPrefix) && k[:len(journalPrefix)] == journalPrefix {
			n++
		}
	}
	if n != journalKeep {
		t.Fatalf("%d entries kept, want %d", n, journalKeep)
	}
	if entries, latest, complete := h.journal(4); complete || len(entries) != 0 || latest != journalKeep+5 {
		t.Fatalf("after a pruned version: %d entries, latest %d, complete %v", len(entries), latest, complete)
	}
	if entries, _, complete := h.journal(5); !complete || len(entries) != journalKeep {
		t.Fatalf("after the oldest kept version - 1: %d entries, complete %v", len(entries), complete)
	}
}
