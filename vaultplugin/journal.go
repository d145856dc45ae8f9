package vaultplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/policy"
)

// The change journal: every write to an existing key appends an entry
// naming the ids it changed, so keygate replicas polling journal evict
// them at once (as with the KV layout's journal, vault/journal.go). The
// last journalKeep entries are kept; a replica further behind is told the
// journal is incomplete and must drop its cache.
const (
	journalHeadKey = "journal/head"
	journalPrefix  = "journal/v/"
	journalKeep    = 1000
)

type journalHead struct {
	Latest int `json:"latest"`
}

// journalEntry is one change; Version is its place in the journal.
type journalEntry struct {
	Version int      `json:"version"`
	Op      string   `json:"op"`
	IDs     []string `json:"ids"`
	At      string   `json:"at"`
}

func journalKey(v int) string { return fmt.Sprintf("%s%020d", journalPrefix, v) }

func readHead(ctx context.Context, s logical.Storage) (journalHead, error) {
	var h journalHead
	raw, err := s.Get(ctx, journalHeadKey)
	if err != nil || raw == nil {
		return h, err
	}
	return h, json.Unmarshal(raw.Value, &h)
}

// appendJournal records that ids changed with op (a keyadmin.JournalOp*).
// The entry is written before the head names it, so a reader never sees a
// version without its entry; the entry journalKeep versions back is pruned.
func (b *Backend) appendJournal(ctx context.Context, s logical.Storage, op string, ids ...string) error {
	for _, id := range ids {
		if !policy.ValidID(id) {
			return fmt.Errorf("journal: %q is not a key id", policy.Redact(id))
		}
	}
	b.journalMu.Lock()
	defer b.journalMu.Unlock()
	h, err := readHead(ctx, s)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if ids == nil {
		ids = []string{}
	}
	v := h.Latest + 1
	e := journalEntry{Version: v, Op: op, IDs: ids, At: b.clock().Format(time.RFC3339)}
	if err := putJSON(ctx, s, journalKey(v), e); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := putJSON(ctx, s, journalHeadKey, journalHead{Latest: v}); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if old := v - journalKeep; old > 0 {
		if err := s.Delete(ctx, journalKey(old)); err != nil {
			return fmt.Errorf("journal: prune: %w", err)
		}
	}
	return nil
}

// journalSince returns the entries after version after, the latest
// version, and whether the entries are complete. after < 0 (a replica
// that just started) gives no entries and the latest version. Incomplete:
// entries after `after` were pruned, or after is past the latest version
// (the journal went back: a new mount, a restore).
func journalSince(ctx context.Context, s logical.Storage, after int) ([]journalEntry, int, bool, error) {
	h, err := readHead(ctx, s)
	switch {
	case err != nil:
		return nil, 0, false, err
	case after < 0:
		return []journalEntry{}, h.Latest, true, nil
	case after >= h.Latest:
		return []journalEntry{}, h.Latest, after == h.Latest, nil
	case h.Latest-after > journalKeep:
		return []journalEntry{}, h.Latest, false, nil
	}
	out := make([]journalEntry, 0, h.Latest-after)
	for v := after + 1; v <= h.Latest; v++ {
		raw, err := s.Get(ctx, journalKey(v))
		if err != nil {
			return nil, 0, false, err
		}
		if raw == nil {
			return []journalEntry{}, h.Latest, false, nil // pruned under us
		}
		var e journalEntry
		if err := json.Unmarshal(raw.Value, &e); err != nil {
			return nil, 0, false, fmt.Errorf("journal version %d: %w", v, err)
		}
		out = append(out, e)
	}
	return out, h.Latest, true, nil
}

func (b *Backend) journalPath() *framework.Path {
	return &framework.Path{
		Pattern: "journal/?$",
		Fields: map[string]*framework.FieldSchema{
			"after": {
				Type:        framework.TypeInt,
				Default:     -1,
				Description: "Return the entries after this version. -1 (the default): none, only the latest version (a replica that just started).",
			},
			"op":  {Type: framework.TypeString, Description: "Write: the operation, one of update, revoke, rotate, delete, new-keys."},
			"ids": {Type: framework.TypeStringSlice, Description: "Write: the key ids changed (none for new-keys)."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   &framework.PathOperation{Callback: b.readJournal, Summary: "Read the change journal after a version."},
			logical.UpdateOperation: &framework.PathOperation{Callback: b.writeJournal, Summary: "Append an entry (keygate's CLI, after a write with journal=false)."},
		},
		HelpSynopsis: "The change journal keygate servers poll.",
		HelpDescription: `Every change to an existing key (update, revoke, rotate, delete) and
every batch of new keys (new-keys, no ids) is an entry {version, op, ids,
at}. Read with after=<the last version seen>: the data is {entries,
latest, complete}. complete is false when entries after "after" were
pruned (the last 1000 are kept) or "after" is past the latest version (the
journal went back): the reader must then forget every cached key.
Write {op, ids} appends an entry: keygate's CLI does after each change it
made with journal=false, naming the operation.`,
	}
}

func (b *Backend) readJournal(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	entries, latest, complete, err := journalSince(ctx, req.Storage, d.Get("after").(int))
	if err != nil {
		return nil, err
	}
	list := make([]any, len(entries))
	for i, e := range entries {
		list[i] = map[string]any{"version": e.Version, "op": e.Op, "ids": e.IDs, "at": e.At}
	}
	return &logical.Response{Data: map[string]any{"entries": list, "latest": latest, "complete": complete}}, nil
}

// journalOps are the operations an appended entry may name.
var journalOps = map[string]bool{"update": true, "revoke": true, "rotate": true, "delete": true, "new-keys": true}

func (b *Backend) writeJournal(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	op := d.Get("op").(string)
	ids := d.Get("ids").([]string)
	switch {
	case !journalOps[op]:
		return logical.ErrorResponse(`nothing written: field "op": %q: want update, revoke, rotate, delete or new-keys`, policy.Redact(op)), nil
	case op == "new-keys" && len(ids) > 0:
		return logical.ErrorResponse(`nothing written: field "ids": new-keys names no ids`), nil
	case op != "new-keys" && len(ids) == 0:
		return logical.ErrorResponse(`nothing written: field "ids": required for %s`, op), nil
	case len(ids) > 1000:
		return logical.ErrorResponse(`nothing written: field "ids": %d ids, limit 1000`, len(ids)), nil
	}
	for i, id := range ids {
		if !policy.ValidID(id) {
			return logical.ErrorResponse(`nothing written: field "ids[%d]": not a key id (12 letters and digits)`, i), nil
		}
	}
	if err := b.appendJournal(ctx, req.Storage, op, ids...); err != nil {
		return nil, err
	}
	return nil, nil
}
