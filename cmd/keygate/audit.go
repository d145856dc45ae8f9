package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

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
	var maxLifetime, unusedFor string
	var opts policy.AuditOptions
	cmd, _ := keysCommand(e, "audit", "Report risky keys: no expiry, long-lived, expired but active, unused, wide CIDRs, many or wildcard scopes",
		cobra.NoArgs, false, func(ctx context.Context, k *keysCtx, _ []string) error {
			var errs []error
			var unused time.Duration
			for _, f := range []struct {
				flag, value string
				into        *time.Duration
			}{{"--max-lifetime", maxLifetime, &opts.MaxLifetime}, {"--unused-for", unusedFor, &unused}} {
				if f.value == "" || f.value == "0" {
					continue // default lifetime; no unused findings
				}
				var err error
				if *f.into, err = parseLifetime(f.value); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", f.flag, err))
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if usageOf(k) == nil && unused > 0 {
				fmt.Fprintf(k.e.stderr, "keygate: note: no \"unused\" findings: %v\n", errNoUsage)
			}
			report, err := auditKeys(ctx, k, opts, unused)
			if err != nil {
				return err
			}
			if k.f.jsonOut {
				return json.NewEncoder(k.e.stdout).Encode(report)
			}
			return printAudit(k, report)
		})
	cmd.Flags().StringVar(&maxLifetime, "max-lifetime", "365d", "remaining lifetime above which a key is long_lived")
	cmd.Flags().StringVar(&unusedFor, "unused-for", "90d", "time without use after which an active key is unused (Vault store; never-used keys count from created_at; 0: off)")
	cmd.Flags().IntVar(&opts.MaxScopes, "max-scopes", 10, "scope count above which a key has many_scopes")
	return cmd
}

// auditKeys reads every key; a record that cannot be read is a finding too.
func auditKeys(ctx context.Context, k *keysCtx, opts policy.AuditOptions, unusedFor time.Duration) ([]audited, error) {
	rows, err := readKeys(ctx, k)
	if err != nil {
		return nil, err
	}
	report := []audited{}
	for _, r := range rows {
		if r.Error != "" {
			report = append(report, audited{ID: r.ID, Findings: []policy.Finding{{Code: "unreadable", Detail: r.Error}}})
			continue
		}
		f := policy.Audit(r.Record, k.now, opts)
		switch {
		case r.UsageError != "":
			f = append(f, policy.Finding{Code: "usage_unreadable", Detail: r.UsageError})
		case usageOf(k) != nil:
			if u := policy.AuditUnused(r.Record, r.lastUsed, k.now, unusedFor); u != nil {
				f = append(f, *u)
			}
		}
		if len(f) > 0 {
			report = append(report, audited{ID: r.ID, Tenant: r.Record.Tenant, Findings: f})
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
