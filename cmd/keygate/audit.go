package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// audited is one key in the `keys audit` report.
type audited struct {
	ID       string           `json:"id"`
	Tenant   string           `json:"tenant,omitempty"`
	Findings []policy.Finding `json:"findings"`
}

func newAuditCmd(e *env) *cobra.Command {
	var maxLifetime, unusedFor string
	var opts keyadmin.AuditOptions
	cmd, _ := keysCommand(e, "audit", "Report risky keys: no expiry, long-lived, expired but active, unused, wide CIDRs, many or wildcard scopes",
		cobra.NoArgs, false, func(ctx context.Context, k *keysCtx, _ []string) error {
			var errs []error
			for _, f := range []struct {
				flag, value string
				into        *time.Duration
			}{{"--max-lifetime", maxLifetime, &opts.MaxLifetime}, {"--unused-for", unusedFor, &opts.UnusedFor}} {
				if f.value == "" || f.value == "0" {
					continue // default lifetime; no unused findings
				}
				var err error
				if *f.into, err = keyadmin.ParseLifetime(f.value); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", f.flag, err))
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if !k.svc.Caps().Usage && opts.UnusedFor > 0 {
				fmt.Fprintf(k.e.stderr, "keygate: note: no \"unused\" findings: %v\n", errNoUsage)
			}
			report, err := k.svc.Audit(ctx, opts)
			if err != nil {
				return err
			}
			rows := make([]audited, 0, len(report))
			for _, a := range report {
				rows = append(rows, audited{ID: a.ID, Tenant: a.Tenant, Findings: a.Findings})
			}
			if k.f.jsonOut {
				return json.NewEncoder(k.e.stdout).Encode(rows)
			}
			return printAudit(k, rows)
		})
	cmd.Flags().StringVar(&maxLifetime, "max-lifetime", "365d", "remaining lifetime above which a key is long_lived")
	cmd.Flags().StringVar(&unusedFor, "unused-for", "90d", "time without use after which an active key is unused (Vault store; never-used keys count from created_at; 0: off)")
	cmd.Flags().IntVar(&opts.MaxScopes, "max-scopes", 10, "scope count above which a key has many_scopes")
	return cmd
}

func printAudit(k *keysCtx, report []audited) error {
	if len(report) == 0 {
		_, err := fmt.Fprintln(k.e.stdout, "No findings.")
		return err
	}
	tw := tabwriter.NewWriter(k.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tFINDING\tDETAIL")
	for _, a := range report {
		for _, f := range a.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.ID, a.Tenant, f.Code, f.Detail)
		}
	}
	return tw.Flush()
}
