package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// importedRow is one line of the import report; it never holds the key.
type importedRow struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Name   string `json:"name,omitempty"`
	// Result: imported; exists (already imported, same record); differs
	// (already imported, record changed since: use keys update); deleted
	// (imported, then deleted: ids are never reused); checked (--dry-run).
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
			rep, err := k.svc.Import(ctx, entries, dryRun)
			printWarnings(k, rep.Warnings)
			if perr := printImport(k, rep.Rows, dryRun, err == nil); perr != nil && err == nil {
				err = perr
			}
			return err
		})
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and print the ids; write nothing")
	return cmd
}

// readImport reads the file ("-" is stdin) for keyadmin to check whole.
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
	data, err := io.ReadAll(io.LimitReader(r, keyadmin.MaxImportFile+1))
	if err != nil {
		return nil, fmt.Errorf("import file: %w", err)
	}
	return k.svc.ParseImport(data)
}

func printImport(k *keysCtx, rows []keyadmin.ImportRow, dryRun, ok bool) error {
	restore := k.svc.Caps().Restore
	for _, r := range rows {
		switch {
		case r.Outcome == keyadmin.OutcomeDiffers:
			fmt.Fprintf(k.e.stderr, "keygate: key %s was imported before with another record; not changed (use keygate keys update %s)\n", r.ID, r.ID)
		case r.Outcome == keyadmin.OutcomeDeleted && restore:
			fmt.Fprintf(k.e.stderr, "keygate: key %s was imported and then deleted; not re-created (Vault keeps its versions: vault kv rollback)\n", r.ID)
		case r.Outcome == keyadmin.OutcomeDeleted:
			fmt.Fprintf(k.e.stderr, "keygate: key %s was imported and then deleted; not re-created (a deleted key's id is never reused)\n", r.ID)
		}
	}
	out := make([]importedRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, importedRow{ID: r.ID, Tenant: r.Tenant, Name: r.Name, Result: r.Outcome.String()})
	}
	if k.f.jsonOut {
		return json.NewEncoder(k.e.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(k.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tNAME\tRESULT")
	for _, r := range out {
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
