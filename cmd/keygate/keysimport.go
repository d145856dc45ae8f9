package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/keygate/keygate/policy"
)

var yamlLine = regexp.MustCompile(`line (\d+)`)

// maxImportFile bounds an import file (100,000 keys with small policies).
const maxImportFile = 64 << 20

// importedRow is one line of the import report; it never holds the key.
type importedRow struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Name   string `json:"name,omitempty"`
	// Result: imported; exists (already imported, same record); differs
	// (already imported, record changed since: use keys update); deleted
	// (imported, then deleted: Vault never reuses an id); checked (--dry-run).
	Result string `json:"result"`
}

func newImportCmd(e *env) *cobra.Command {
	var dryRun bool
	cmd, _ := keysCommand(e, "import FILE", "Import keys issued elsewhere (raw keys or SHA-256 hashes with policies); found by hash",
		cobra.ExactArgs(1), true, func(ctx context.Context, k *keysCtx, args []string) error {
			entries, err := readImport(k, args[0])
			if err != nil {
				return err
			}
			rows, err := importKeys(ctx, k, entries, dryRun)
			if perr := printImport(k, rows, dryRun, err == nil); perr != nil && err == nil {
				err = perr
			}
			return err
		})
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and print the ids; write nothing")
	return cmd
}

// readImport reads and checks the whole file (YAML or JSON; "-" is stdin)
// before anything is written, reporting every problem at once.
func readImport(k *keysCtx, path string) ([]policy.ImportEntry, error) {
	var r io.Reader = k.e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("import file: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxImportFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("import file: %w", err)
	case len(data) > maxImportFile:
		return nil, fmt.Errorf("import file: over %d bytes; split it", maxImportFile)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		// The parser's message may quote the file (a key): give its line only.
		where := ""
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			where = " near line " + m[1]
		}
		return nil, fmt.Errorf("import file: not valid YAML or JSON%s", where)
	}
	entries, err := policy.ParseImport(js, k.format, k.now)
	if err != nil {
		return nil, fmt.Errorf("nothing imported: %w", err)
	}
	return entries, nil
}

// importKeys creates each entry. A key already imported is reported (exists,
// differs, deleted), never overwritten, so re-running an interrupted import
// finishes it. The first failure stops the import; the rows say what was
// done. New keys are journaled (one entry) so servers drop cached "unknown"
// answers.
func importKeys(ctx context.Context, k *keysCtx, entries []policy.ImportEntry, dryRun bool) ([]importedRow, error) {
	rows := make([]importedRow, 0, len(entries))
	created := false
	var err error
	for _, e := range entries {
		row := importedRow{ID: e.ID, Tenant: e.Record.Tenant, Name: e.Record.Name, Result: "checked"}
		if !dryRun {
			if row.Result, err = importOne(ctx, k, e); err != nil {
				err = fmt.Errorf("key %s: %w (%d of %d keys done; run the same import again to finish)", e.ID, err, len(rows), len(entries))
				break
			}
		}
		created = created || row.Result == "imported"
		rows = append(rows, row)
	}
	if created {
		recordChange(ctx, k, journalOpNewKeys)
	}
	return rows, err
}

func importOne(ctx context.Context, k *keysCtx, e policy.ImportEntry) (string, error) {
	err := k.store.Create(ctx, e.ID, e.Record)
	switch {
	case err == nil:
		return "imported", nil
	case !errors.Is(err, policy.ErrKeyExists):
		return "", err
	}
	have, _, gerr := k.store.Get(ctx, e.ID)
	switch {
	case errors.Is(gerr, policy.ErrKeyNotFound):
		return "deleted", nil // soft-deleted in Vault, which keeps the id
	case gerr != nil:
		return "", fmt.Errorf("exists, and cannot be read: %w", gerr)
	case have.Hash != e.Record.Hash:
		return "", errors.New("the id is taken by a different key")
	case !samePolicy(have, e.Record):
		return "differs", nil
	}
	return "exists", nil
}

// samePolicy compares two records but for the times keygate writes.
func samePolicy(a, b *policy.Record) bool {
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt, y.CreatedAt, y.UpdatedAt = "", "", "", ""
	ja, erra := json.Marshal(x)
	jb, errb := json.Marshal(y)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

func printImport(k *keysCtx, rows []importedRow, dryRun, ok bool) error {
	for _, r := range rows {
		switch r.Result {
		case "differs":
			fmt.Fprintf(k.e.stderr, "keygate: key %s was imported before with another record; not changed (use keygate keys update %s)\n", r.ID, r.ID)
		case "deleted":
			fmt.Fprintf(k.e.stderr, "keygate: key %s was imported and then deleted; not re-created (Vault keeps its versions: vault kv undelete)\n", r.ID)
		}
	}
	if k.f.jsonOut {
		return json.NewEncoder(k.e.stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(k.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tNAME\tRESULT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Tenant, r.Name, r.Result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !dryRun && ok && len(rows) > 0 {
		_, err := fmt.Fprintln(k.e.stdout, "Imported keys are found by hash: run servers with --imported-keys.")
		return err
	}
	return nil
}
