package vaultplugin

import (
	"context"
	"errors"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/internal/keyadmin"
)

func (b *Backend) importPath() *framework.Path {
	return &framework.Path{
		Pattern: "import$",
		Fields: map[string]*framework.FieldSchema{
			"file":    {Type: framework.TypeString, Description: "The import file, YAML or JSON, exactly as `keygate keys import` takes it: {keys: [{key: <raw key> | sha256: <hex>, tenant: …, <record fields>}]}.", Required: true},
			"dry_run": {Type: framework.TypeBool, Description: "Check every entry and report, writing nothing."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.importKeys, Summary: "Import keys issued outside keygate."},
		},
		HelpSynopsis: "Import keys issued outside keygate (raw keys or their SHA-256).",
		HelpDescription: `Every entry is checked first; if any is bad nothing is written and the
400 names keys[i] and the field (never a key). Each key is stored under
the id derived from its SHA-256 and found by hash. Returns {rows: [{id,
tenant, name, outcome}]}, outcome imported, exists (same record), differs
(changed since: not overwritten), deleted (not re-created: ids are never
reused) or checked (dry_run). Running the same file again finishes an
interrupted import. New keys are journaled once (op new-keys).`,
	}
}

func (b *Backend) importKeys(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	file, _ := d.Get("file").(string)
	if file == "" {
		return logical.ErrorResponse(`nothing imported: field "file": required (the import file's text)`), nil
	}
	svc, err := b.service(b.store(req))
	if err != nil {
		return nil, err
	}
	entries, err := svc.ParseImport([]byte(file))
	if err != nil {
		return errResponse("import", err)
	}
	rep, err := svc.Import(ctx, entries, d.Get("dry_run").(bool))
	rows := make([]any, len(rep.Rows))
	for i, r := range rep.Rows {
		rows[i] = map[string]any{"id": r.ID, "tenant": r.Tenant, "name": r.Name, "outcome": r.Outcome.String()}
	}
	if err != nil {
		// Keys before the failure are written: say which, and how to finish.
		resp := logical.ErrorResponse("import: %s", err)
		if !errors.Is(err, keyadmin.ErrIDTaken) && !errors.Is(err, keyadmin.ErrInvalidInput) {
			return nil, errors.New(resp.Data["error"].(string))
		}
		resp.Data["rows"] = rows
		return resp, nil
	}
	return warnings(&logical.Response{Data: map[string]any{"rows": rows}}, rep.Warnings), nil
}
