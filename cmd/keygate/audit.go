package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/policy"
)

// audited is one key in the `keys audit` report.
type audited struct {
	ID       string           `json:"id"`
	Tenant   string           `json:"tenant,omitempty"`
	Findings []policy.Finding `json:"findings"`
}

func newAuditCmd(e *env) *cobra.Command {
	var maxLifetime string
	var opts policy.AuditOptions
	cmd, _ := keysCommand(e, "audit", "Report risky keys: no expiry, long-lived, expired but active, wide CIDRs, many or wildcard scopes",
		cobra.NoArgs, false, func(ctx context.Context, k *keysCtx, _ []string) error {
			if maxLifetime != "" {
				d, err := parseLifetime(maxLifetime)
				if err != nil {
					return fmt.Errorf("--max-lifetime: %w", err)
				}
				opts.MaxLifetime = d
			}
			report, err := auditKeys(ctx, k, opts)
			if err != nil {
				return err
			}
			if k.f.jsonOut {
				return json.NewEncoder(k.e.stdout).Encode(report)
			}
			return printAudit(k, report)
		})
	cmd.Flags().StringVar(&maxLifetime, "max-lifetime", "365d", "remaining lifetime above which a key is long_lived")
	cmd.Flags().IntVar(&opts.MaxScopes, "max-scopes", 10, "scope count above which a key has many_scopes")
	return cmd
}

// auditKeys reads every key; a record that cannot be read is a finding too.
func auditKeys(ctx context.Context, k *keysCtx, opts policy.AuditOptions) ([]audited, error) {
	ids, err := k.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	report := []audited{}
	for _, id := range ids {
		rec, _, err := k.store.Get(ctx, id)
		if err != nil {
			report = append(report, audited{ID: id, Findings: []policy.Finding{{Code: "unreadable", Detail: err.Error()}}})
			continue
		}
		if f := policy.Audit(rec, k.now, opts); len(f) > 0 {
			report = append(report, audited{ID: id, Tenant: rec.Tenant, Findings: f})
		}
	}
	return report, nil
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
