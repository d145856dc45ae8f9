package main

import (
	"context"
	"fmt"

	kgserver "github.com/keygate/keygate/internal/server"
)

// journalWriter is a store the CLI records its changes in.
type journalWriter interface {
	AppendJournal(ctx context.Context, op string, ids ...string) error
}

// journalOpNewKeys is the journal entry keys import appends: the server
// reads it (kgserver.JournalOpNewKeys) as "forget cached unknown ids".
const journalOpNewKeys = kgserver.JournalOpNewKeys

// recordChange appends a CLI change to the store's journal, if it keeps one.
// The change itself is already written: a journal failure only means
// replicas see it within --found-ttl, which the warning says.
func recordChange(ctx context.Context, k *keysCtx, op string, ids ...string) {
	w, ok := k.store.(*openedStore).keyStore.(journalWriter)
	if !ok {
		return
	}
	if err := w.AppendJournal(ctx, op, ids...); err != nil {
		fmt.Fprintf(k.e.stderr, "keygate: warning: the %s is written, but the change journal could not be: "+
			"replicas apply it within their --found-ttl instead of --journal-poll (%v)\n", op, err)
	}
}
