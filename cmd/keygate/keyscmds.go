package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/vault"
)

// issued is what create and rotate print. Key is the only copy of the raw
// key anywhere: the store keeps its hash.
type issued struct {
	ID     string         `json:"id"`
	Key    string         `json:"key"`
	Record *policy.Record `json:"record"`
	// Previous is the rotated-out key id, and PreviousExpiresAt when it
	// stops working (rotate only).
	Previous          string `json:"previous,omitempty"`
	PreviousExpiresAt string `json:"previous_expires_at,omitempty"`
	PreviousStatus    string `json:"previous_status,omitempty"`
}

func printIssued(w io.Writer, asJSON bool, out issued) error {
	if asJSON {
		return json.NewEncoder(w).Encode(out)
	}
	_, err := fmt.Fprintf(w, "Key %s created for tenant %q.\nThis is the only time the key is shown; store it now:\n\n  %s\n\n",
		out.ID, out.Record.Tenant, out.Key)
	return err
}

func newCreateCmd(e *env) *cobra.Command {
	var rf recordFlags
	cmd, f := keysCommand(e, "create", "Issue a new key (printed once; only its hash is stored)", cobra.NoArgs, true,
		func(ctx context.Context, k *keysCtx, _ []string) error {
			rec := &policy.Record{Status: policy.StatusActive, CreatedAt: k.now.Format(time.RFC3339)}
			rec.UpdatedAt = rec.CreatedAt
			if err := errors.Join(rf.apply(rec, k.now), validateUnhashed(rec, k.now)); err != nil {
				return err
			}
			rawKey, keyID, err := k.issue(ctx, rec)
			if err != nil {
				return err
			}
			// No journal entry: a new random id cannot be in any cache, and
			// entries cost versions (KV v2 keeps 10), so a burst of creates
			// would push every replica past the journal's window.
			return printIssued(k.e.stdout, k.f.jsonOut, issued{ID: keyID, Key: rawKey, Record: rec})
		})
	_ = f
	rf.register(cmd.Flags(), false)
	return cmd
}

// validateUnhashed checks a record before a key exists for it, so flag and
// record problems are reported together.
func validateUnhashed(rec *policy.Record, now time.Time) error {
	probe := *rec
	probe.Hash = policy.AlgSHA256 + ":" + strings.Repeat("0", 64)
	if err := probe.Validate(); err != nil {
		return err
	}
	if t := probe.ExpiresAtTime(); !t.IsZero() && !now.Before(t) {
		return fmt.Errorf("expiry %s is not in the future: the key could never be used", rec.ExpiresAt)
	}
	return nil
}

func newShowCmd(e *env) *cobra.Command {
	cmd, _ := keysCommand(e, "show ID", "Print one key's record", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			if !policy.ValidID(args[0]) {
				return errNotID
			}
			row, gone := readKey(ctx, k, usageOf(k), args[0])
			switch {
			case gone:
				return fmt.Errorf("key %s: %w", args[0], policy.ErrKeyNotFound)
			case row.Record == nil:
				return errors.New(row.Error)
			case k.f.jsonOut:
				return json.NewEncoder(k.e.stdout).Encode(row)
			}
			out, _ := json.MarshalIndent(row.Record, "", "  ")
			used := row.LastUsed
			if used == "" && usageOf(k) != nil {
				used = "never recorded"
			}
			if row.UsageError != "" {
				used = "unknown (" + row.UsageError + ")"
			}
			if used != "" {
				used = "last used: " + used + "\n"
			}
			_, err := fmt.Fprintf(k.e.stdout, "id: %s\n%s%s\n", args[0], used, out)
			return err
		})
	return cmd
}

func newListCmd(e *env) *cobra.Command {
	var filter listFilter
	cmd, _ := keysCommand(e, "list", "List keys with tenant, status and expiry", cobra.NoArgs, false,
		func(ctx context.Context, k *keysCtx, _ []string) error {
			if err := filter.check(); err != nil {
				return err
			}
			if filter.unused > 0 && usageOf(k) == nil {
				return fmt.Errorf("--unused-for: %w", errNoUsage)
			}
			all, err := readKeys(ctx, k)
			if err != nil {
				return err
			}
			rows := make([]listed, 0, len(all))
			for _, row := range all {
				if filter.keep(row, k.now) {
					rows = append(rows, row)
				}
			}
			if k.f.jsonOut {
				return json.NewEncoder(k.e.stdout).Encode(rows)
			}
			return printList(k.e.stdout, rows, k.now)
		})
	filter.register(cmd.Flags())
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
		status, expires := r.Record.Status, r.Record.ExpiresAt
		if t := r.Record.ExpiresAtTime(); !t.IsZero() && !now.Before(t) && status == policy.StatusActive {
			status = "expired"
		}
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", r.ID, r.Record.Tenant, r.Record.Name, status, expires, used, r.Record.Scopes)
	}
	return tw.Flush()
}

func newRevokeCmd(e *env) *cobra.Command {
	cmd, _ := keysCommand(e, "revoke ID", "Revoke a key: it is denied as soon as caches refresh", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			rec, err := k.modify(ctx, args[0], func(r *policy.Record) error {
				r.Status = policy.StatusRevoked
				return nil
			})
			if err != nil {
				return err
			}
			recordChange(ctx, k, "revoke", args[0])
			return printChanged(k, args[0], rec, "revoked")
		})
	return cmd
}

func newDeleteCmd(e *env) *cobra.Command {
	var force bool
	cmd, _ := keysCommand(e, "delete ID", "Delete a revoked or expired key's record (--force for an active one)", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			keyID := args[0]
			if !policy.ValidID(keyID) {
				return errNotID
			}
			rec, _, err := k.store.Get(ctx, keyID)
			switch {
			case errors.Is(err, policy.ErrInvalidRecord) && !force:
				return fmt.Errorf("%w\nits status cannot be read: pass --force to delete it anyway", err)
			case err != nil && !errors.Is(err, policy.ErrInvalidRecord):
				return err
			case rec != nil && rec.Status == policy.StatusActive && !force &&
				(rec.ExpiresAtTime().IsZero() || k.now.Before(rec.ExpiresAtTime())):
				return fmt.Errorf("key %s is active: revoke it first (keygate keys revoke %s), or pass --force to delete it while in use", keyID, keyID)
			}
			err = k.store.Delete(ctx, keyID)
			if err != nil && !errors.Is(err, vault.ErrUsageKept) {
				return err
			}
			recordChange(ctx, k, "delete", keyID) // the record is gone: tell the replicas
			if err != nil {
				fmt.Fprintf(k.e.stderr, "keygate: warning: %v\n", err)
			}
			what := "deleted"
			if k.store.(*openedStore).name == "vault" {
				what += fmt.Sprintf(" (Vault keeps its versions: `vault kv metadata get -mount=%[1]s %[2]s/keys/%[3]s` shows the latest, "+
					"`vault kv undelete -mount=%[1]s -versions=<latest> %[2]s/keys/%[3]s` restores it)", k.f.store.mount, k.f.store.basePath, keyID)
			}
			return printChanged(k, keyID, nil, what)
		})
	cmd.Flags().BoolVar(&force, "force", false, "delete even if the key is active and unexpired")
	return cmd
}

func printChanged(k *keysCtx, keyID string, rec *policy.Record, what string) error {
	if k.f.jsonOut {
		return json.NewEncoder(k.e.stdout).Encode(listed{ID: keyID, Record: rec})
	}
	_, err := fmt.Fprintf(k.e.stdout, "Key %s %s.\n", keyID, what)
	return err
}

func newUpdateCmd(e *env) *cobra.Command {
	var rf recordFlags
	cmd, _ := keysCommand(e, "update ID", "Change a key's policy (only the flags given change)", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			rec, err := k.modify(ctx, args[0], func(r *policy.Record) error { return rf.apply(r, k.now) })
			if err != nil {
				return err
			}
			recordChange(ctx, k, "update", args[0])
			return printChanged(k, args[0], rec, "updated")
		})
	rf.register(cmd.Flags(), true)
	return cmd
}

func newRotateCmd(e *env) *cobra.Command {
	var grace time.Duration
	cmd, _ := keysCommand(e, "rotate ID", "Issue a new key with the same policy; the old one expires after --grace", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			if grace < 0 {
				return errors.New("--grace: must be >= 0")
			}
			return rotate(ctx, k, args[0], grace)
		})
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "how long the old key keeps working")
	return cmd
}

// rotate creates the new key first, then shortens the old key's life. If the
// second write fails the new key is still printed (it exists and is shown
// only once) and the error says how to finish by hand.
func rotate(ctx context.Context, k *keysCtx, oldID string, grace time.Duration) error {
	if !policy.ValidID(oldID) {
		return errNotID
	}
	old, _, err := k.store.Get(ctx, oldID)
	if err != nil {
		return err
	}
	switch t := old.ExpiresAtTime(); {
	case old.Status != policy.StatusActive:
		return fmt.Errorf("key %s is %s; only active keys rotate", oldID, old.Status)
	case old.RotatedTo != "":
		return fmt.Errorf("key %s was already rotated to %s; rotate that key instead", oldID, old.RotatedTo)
	case !t.IsZero() && !k.now.Before(t):
		return fmt.Errorf("key %s has expired; create a new key instead", oldID)
	}
	// Same policy, including not_before and expires_at; the successor is a
	// keygate key even when the old one was imported.
	rec := *old
	rec.RotatedTo, rec.Imported = "", false
	rec.CreatedAt = k.now.Format(time.RFC3339)
	rec.UpdatedAt = rec.CreatedAt
	rawKey, newID, err := k.issue(ctx, &rec)
	if err != nil {
		return err
	}
	out := issued{ID: newID, Key: rawKey, Record: &rec, Previous: oldID}
	graceEnd := k.now.Add(grace)
	changed, uerr := k.modify(ctx, oldID, func(r *policy.Record) error {
		retire(r, newID, graceEnd)
		return nil
	})
	if uerr == nil {
		out.PreviousExpiresAt, out.PreviousStatus = changed.ExpiresAt, changed.Status
		recordChange(ctx, k, "rotate", oldID) // the new id cannot be cached anywhere yet
	}
	if err := printIssued(k.e.stdout, k.f.jsonOut, out); err != nil {
		return err
	}
	if uerr != nil {
		return fmt.Errorf("new key %s was created, but old key %s was NOT changed (finish with `keygate keys update %s --expires-at %s` or `keygate keys revoke %s`): %w",
			newID, oldID, oldID, graceEnd.UTC().Format(time.RFC3339), oldID, uerr)
	}
	if !k.f.jsonOut {
		fmt.Fprintf(k.e.stdout, "Old key %s: status %s, expires %s.\n", oldID, changed.Status, changed.ExpiresAt)
	}
	return nil
}

// retire points r at its successor and ends its life at graceEnd (or keeps
// an earlier expiry). A key whose not_before is not reached within the
// grace would never serve: it is revoked instead.
func retire(r *policy.Record, newID string, graceEnd time.Time) {
	r.RotatedTo = newID
	if t := r.ExpiresAtTime(); t.IsZero() || graceEnd.Before(t) {
		r.ExpiresAt = graceEnd.UTC().Format(time.RFC3339)
	}
	if nb, err := time.Parse(time.RFC3339, r.NotBefore); err == nil && !graceEnd.After(nb) {
		r.Status = policy.StatusRevoked
		r.ExpiresAt = ""
	}
}
