package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// listed is one key as show, list and the write commands print it.
type listed struct {
	ID       string         `json:"id"`
	Record   *policy.Record `json:"record,omitempty"`
	LastUsed string         `json:"last_used,omitempty"` // RFC 3339; absent if never recorded
	Error    string         `json:"error,omitempty"`     // the record could not be read
	// UsageError: the record was read, but not when it was last used.
	UsageError string `json:"usage_error,omitempty"`
}

func toListed(k keyadmin.Key) listed {
	row := listed{ID: k.ID, Record: k.Record}
	if k.Err != nil {
		row.Error = k.Err.Error()
	}
	if !k.LastUsed.IsZero() {
		row.LastUsed = k.LastUsed.Format(time.RFC3339)
	}
	if k.UsageErr != nil {
		row.UsageError = k.UsageErr.Error()
	}
	return row
}

func newShowCmd(e *env) *cobra.Command {
	cmd, _ := keysCommand(e, "show ID", "Print one key's record", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			key, err := k.svc.Get(ctx, args[0])
			if err != nil {
				return err
			}
			row := toListed(*key)
			if k.f.jsonOut {
				return json.NewEncoder(k.e.stdout).Encode(row)
			}
			out, _ := json.MarshalIndent(row.Record, "", "  ")
			used := row.LastUsed
			if used == "" && k.svc.Caps().Usage {
				used = "never recorded"
			}
			if row.UsageError != "" {
				used = "unknown (" + row.UsageError + ")"
			}
			if used != "" {
				used = "last used: " + used + "\n"
			}
			_, err = fmt.Fprintf(k.e.stdout, "id: %s\n%s%s\n", args[0], used, out)
			return err
		})
	return cmd
}

func newListCmd(e *env) *cobra.Command {
	var lf listFlags
	cmd, _ := keysCommand(e, "list", "List keys with tenant, status and expiry", cobra.NoArgs, false,
		func(ctx context.Context, k *keysCtx, _ []string) error {
			filter, err := lf.filter()
			if err != nil {
				return err
			}
			keys, err := k.svc.List(ctx, filter)
			if err != nil {
				return err
			}
			rows := make([]listed, 0, len(keys))
			for _, key := range keys {
				rows = append(rows, toListed(key))
			}
			if k.f.jsonOut {
				return json.NewEncoder(k.e.stdout).Encode(rows)
			}
			return printList(k.e.stdout, rows, k.now)
		})
	lf.register(cmd.Flags())
	return cmd
}

func printList(w io.Writer, rows []listed, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tNAME\tSTATUS\tEXPIRES\tLAST USED\tSCOPES")
	for _, r := range rows {
		if r.Record == nil {
			fmt.Fprintf(tw, "%s\t-\t-\terror: %s\t-\t-\t-\n", r.ID, r.Error)
			continue
		}
		expires := r.Record.ExpiresAt
		if expires == "" {
			expires = "never"
		}
		used := r.LastUsed
		switch {
		case r.UsageError != "":
			used = "unknown: " + r.UsageError
		case used == "":
			used = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", r.ID, r.Record.Tenant, r.Record.Name,
			keyadmin.EffectiveStatus(r.Record, now), expires, used, r.Record.Scopes)
	}
	return tw.Flush()
}
