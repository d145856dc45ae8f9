package vaultplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// idRegex captures a path segment as the id; handlers check it is a key id.
const idRegex = `(?P<id>[^/]+)`

var idField = &framework.FieldSchema{Type: framework.TypeString, Description: "Key id: 12 letters and digits (the public part of a key, not the key).", Required: true}

func (b *Backend) keyPaths() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "keys/?$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.listKeys, Summary: "List the live key ids."},
			},
			HelpSynopsis:    "List the ids of the live keys, sorted.",
			HelpDescription: "Deleted keys are not listed (their ids stay reserved).",
		},
		{
			Pattern: "keys/" + idRegex + "/revoke$",
			Fields: map[string]*framework.FieldSchema{
				"id":     idField,
				"reason": {Type: framework.TypeString, Description: `Why the key is revoked ("leaked"), kept as revoked_reason. Optional: a revoked key keeps its earlier reason.`},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.revokeByID, Summary: "Revoke a key."},
			},
			HelpSynopsis:    "Revoke a key now.",
			HelpDescription: "Sets status revoked and revoked_reason, and journals it (op revoke): keygate servers deny the key within one journal poll.",
		},
		{
			Pattern: "keys/" + idRegex + "/rotate$",
			Fields: map[string]*framework.FieldSchema{
				"id":    idField,
				"grace": {Type: framework.TypeDurationSecond, Default: "24h", Description: "How long the old key keeps working (default 24h; 0: it stops now)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.rotate, Summary: "Replace a key with a new one with the same record."},
			},
			HelpSynopsis: "Rotate a key: a new key with the same record, the old one expires after a grace.",
			HelpDescription: `Returns {id, key, previous, previous_expires_at}; the key is shown only
here. The new key has the old one's record and role (no Vault lease of
its own). The old key gets expires_at = min(its expiry, now + grace) and
rotated_to = the new id; journaled (op rotate). Only active, unexpired
keys not yet rotated rotate.`,
		},
		{
			Pattern: "keys/" + idRegex + "$",
			Fields: map[string]*framework.FieldSchema{
				"id":     idField,
				"record": {Type: framework.TypeMap, Description: "The key's policy record (README \"Key records\") as a JSON object."},
				"cas":    {Type: framework.TypeInt, Default: -1, Description: "Check-and-set: 0 creates (refused if the id exists or ever existed), N replaces version N. Required."},
				"journal": {Type: framework.TypeBool, Default: true, Description: "false: the client journals the change itself " +
					"(keygate's CLI does, naming the operation: revoke, rotate...; write journal). Leave it true otherwise: replicas then see the change at once."},
			},
			ExistenceCheck: b.keyExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.readKey, Summary: "Read a key's record, version and role."},
				logical.CreateOperation: &framework.PathOperation{Callback: b.writeKey, Summary: "Create a key's record (cas 0)."},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.writeKey, Summary: "Replace a key's record (cas = its version)."},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.deleteKey, Summary: "Delete a key (its id is never reused)."},
			},
			HelpSynopsis: "A key's record: the admin path keygate's CLI and servers use.",
			HelpDescription: `Read: {record, version, role} (404 for a missing or deleted key).
Write: {record, cas}, check-and-set like KV v2: cas 0 creates, cas N
replaces version N; a key issued for a role stays within the role. Every
write and delete is journaled (op new-keys for a create, revoke when the
status becomes revoked, update otherwise; delete), unless "journal" is
false: keygate's CLI then appends the entry itself (write journal), naming
the operation. Delete is soft: the key is gone, its id is never reused.`,
		},
	}
}

// keyID reads and checks the id of a keys/ path; never echoes it (people
// paste the key itself).
func keyID(d *framework.FieldData) (string, *logical.Response) {
	id := d.Get("id").(string)
	if !policy.ValidID(id) {
		return "", logical.ErrorResponse(`field "id": %s`, keyadmin.ErrInvalidID)
	}
	return id, nil
}

func (b *Backend) listKeys(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	ids, err := b.store(req).List(ctx)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(ids), nil
}

func (b *Backend) keyExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	id := d.Get("id").(string)
	if !policy.ValidID(id) {
		return false, nil
	}
	e, err := b.store(req).entry(ctx, id)
	return e != nil, err
}

func (b *Backend) readKey(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, bad := keyID(d)
	if bad != nil {
		return bad, nil
	}
	e, err := b.store(req).entry(ctx, id)
	if err != nil || e == nil {
		return nil, err
	}
	var rec map[string]any
	if err := json.Unmarshal(e.Record, &rec); err != nil {
		return nil, fmt.Errorf("key %s: stored record: %w", id, err)
	}
	return &logical.Response{Data: map[string]any{"record": rec, "version": e.Version, "role": e.Role}}, nil
}

// writeKey is the check-and-set admin write.
func (b *Backend) writeKey(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, bad := keyID(d)
	if bad != nil {
		return bad, nil
	}
	rec, cas, bad := recordInput(d)
	if bad != nil {
		return bad, nil
	}
	st := b.store(req)
	unlock := st.lock(id)
	op, err := b.writeLocked(ctx, st, id, rec, cas)
	unlock()
	if err != nil {
		return errResponse("key "+id+" not written", err)
	}
	if !d.Get("journal").(bool) {
		return nil, nil
	}
	if op == keyadmin.JournalOpNewKeys {
		err = st.AppendJournal(ctx, op)
	} else {
		err = st.AppendJournal(ctx, op, id)
	}
	return warnings(nil, journalWarning(op, err)), nil
}

// recordInput reads the record and cas of a write.
func recordInput(d *framework.FieldData) (*policy.Record, int, *logical.Response) {
	cas := d.Get("cas").(int)
	raw, ok := d.GetOk("record")
	var errs []error
	if cas < 0 {
		errs = append(errs, errors.New(`field "cas": required: 0 creates the key, N replaces version N (check-and-set)`))
	}
	if !ok {
		errs = append(errs, errors.New(`field "record": required (the key's policy record as a JSON object)`))
		return nil, 0, logical.ErrorResponse("nothing written: %s", errors.Join(errs...))
	}
	body, err := json.Marshal(raw)
	if err != nil {
		return nil, 0, logical.ErrorResponse(`nothing written: field "record": %s`, err)
	}
	rec, err := policy.ParseRecord(body)
	if err != nil {
		errs = append(errs, err)
	} else if policy.Redact(string(body)) != string(body) {
		errs = append(errs, errors.New(`field "record": `+errKeyShaped))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, 0, logical.ErrorResponse("nothing written: %s", err)
	}
	return rec, cas, nil
}

// writeLocked creates (cas 0) or replaces (cas N) keyID's record, within
// its role, and returns the journal op for it.
func (b *Backend) writeLocked(ctx context.Context, st *store, keyID string, rec *policy.Record, cas int) (string, error) {
	if cas == 0 {
		if err := st.createLocked(ctx, keyID, rec, meta{}); err != nil {
			if errors.Is(err, policy.ErrKeyExists) {
				return "", fmt.Errorf("cas 0 creates, and the id exists or existed (ids are never reused): %w", keyadmin.ErrExists)
			}
			return "", err
		}
		return keyadmin.JournalOpNewKeys, nil
	}
	e, err := st.entry(ctx, keyID)
	switch {
	case err != nil:
		return "", err
	case e == nil:
		return "", fmt.Errorf("no key at version %d (deleted or never written): %w", cas, keyadmin.ErrConflict)
	case e.Version != cas:
		return "", fmt.Errorf("cas %d, but the key is at version %d: %w", cas, e.Version, keyadmin.ErrConflict)
	}
	if e.Role != "" {
		r, err := getRole(ctx, st.s, e.Role)
		switch {
		case err != nil:
			return "", err
		case r == nil:
			return "", fmt.Errorf("the key was issued for role %q, which no longer exists: recreate it, or revoke or delete the key: %w", e.Role, keyadmin.ErrInvalidInput)
		}
		if err := withinRole(rec, r, e.Lease); err != nil {
			return "", fmt.Errorf("outside role %q: %w", e.Role, invalidInput(err))
		}
	}
	op := keyadmin.JournalOpUpdate
	if rec.Status == policy.StatusRevoked {
		op = keyadmin.JournalOpRevoke
	}
	_, err = st.updateLocked(ctx, keyID, rec, cas)
	return op, err
}

func (b *Backend) deleteKey(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, bad := keyID(d)
	if bad != nil {
		return bad, nil
	}
	st := b.store(req)
	err := st.Delete(ctx, id)
	switch {
	case errors.Is(err, policy.ErrKeyNotFound):
		return nil, nil // already gone: nothing to journal
	case err != nil:
		return nil, err
	}
	if !d.Get("journal").(bool) {
		return nil, nil
	}
	return warnings(nil, journalWarning(keyadmin.JournalOpDelete, st.AppendJournal(ctx, keyadmin.JournalOpDelete, id))), nil
}

func (b *Backend) revokeByID(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, bad := keyID(d)
	if bad != nil {
		return bad, nil
	}
	svc, err := b.service(b.store(req))
	if err != nil {
		return nil, err
	}
	changed, err := svc.Revoke(ctx, id, d.Get("reason").(string))
	if err != nil {
		return errResponse("key "+id+" not revoked", err)
	}
	return warnings(nil, changed.Warnings), nil
}

func (b *Backend) rotate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, bad := keyID(d)
	if bad != nil {
		return bad, nil
	}
	st := b.store(req)
	e, err := st.entry(ctx, id)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, logical.CodedError(404, fmt.Sprintf("key %s: %s", id, policy.ErrKeyNotFound))
	}
	st.create = e.meta // the new key keeps the role and lease bounds
	svc, err := b.service(st)
	if err != nil {
		return nil, err
	}
	grace := d.Get("grace").(int)
	rotated, err := svc.Rotate(ctx, id, time.Duration(grace)*time.Second)
	var rerr *keyadmin.RotateError
	if err != nil && !errors.As(err, &rerr) {
		return errResponse("key "+id+" not rotated", err)
	}
	data := map[string]any{"id": rotated.ID, "key": rotated.RawKey, "previous": id, "previous_expires_at": ""}
	if rotated.Previous != nil {
		data["previous_expires_at"] = rotated.Previous.ExpiresAt
	}
	resp := warnings(&logical.Response{Data: data}, rotated.Warnings)
	if rerr != nil {
		resp.AddWarning(rerr.Error()) // the new key exists and is shown only now
	}
	return resp, nil
}

// journalWarning is keyadmin's warning for a journal append that failed
// after the change was written.
func journalWarning(op string, err error) []error {
	if err == nil {
		return nil
	}
	return []error{&keyadmin.JournalError{Op: op, Err: err}}
}

// invalidInput marks err as keyadmin.ErrInvalidInput (a 400), keeping its text.
func invalidInput(err error) error { return &inputErr{err} }

type inputErr struct{ err error }

func (e *inputErr) Error() string        { return e.err.Error() }
func (e *inputErr) Unwrap() error        { return e.err }
func (e *inputErr) Is(target error) bool { return target == keyadmin.ErrInvalidInput }
