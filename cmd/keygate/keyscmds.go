package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/policy"
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
	cmd, _ := keysCommand(e, "create", "Issue a new key (printed once; only its hash is stored)", cobra.NoArgs, true,
		func(ctx context.Context, k *keysCtx, _ []string) error {
			fields, err := rf.fields()
			if err := errors.Join(err, k.svc.CheckIssue(fields)); err != nil {
				return err // every flag and record problem at once
			}
			key, err := k.svc.Issue(ctx, fields)
			if err != nil {
				return err
			}
			return printIssued(k.e.stdout, k.f.jsonOut, issued{ID: key.ID, Key: key.RawKey, Record: key.Record})
		})
	rf.register(cmd.Flags(), false)
	return cmd
}

func newUpdateCmd(e *env) *cobra.Command {
	var rf recordFlags
	cmd, _ := keysCommand(e, "update ID", "Change a key's policy (only the flags given change)", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			fields, err := rf.fields()
			if err != nil {
				return err
			}
			ch, err := k.svc.Modify(ctx, args[0], fields)
			if err != nil {
				return err
			}
			printWarnings(k, ch.Warnings)
			return printChanged(k, args[0], ch.Record, "updated")
		})
	rf.register(cmd.Flags(), true)
	return cmd
}

func newRevokeCmd(e *env) *cobra.Command {
	var reason string
	cmd, _ := keysCommand(e, "revoke ID", "Revoke a key: it is denied as soon as caches refresh", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			ch, err := k.svc.Revoke(ctx, args[0], reason)
			if err != nil {
				return err
			}
			printWarnings(k, ch.Warnings)
			return printChanged(k, args[0], ch.Record, "revoked")
		})
	cmd.Flags().StringVar(&reason, "reason", "", `why the key is revoked, kept in its record as revoked_reason (e.g. "leaked")`)
	return cmd
}

func newDeleteCmd(e *env) *cobra.Command {
	var force bool
	cmd, _ := keysCommand(e, "delete ID", "Delete a revoked or expired key's record (--force for an active one)", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			d, err := k.svc.Delete(ctx, args[0], force)
			if err != nil {
				return err
			}
			printWarnings(k, d.Warnings)
			what := "deleted"
			if d.RestoreHint != "" {
				what += " (" + d.RestoreHint + ")"
			}
			return printChanged(k, args[0], nil, what)
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

func newRotateCmd(e *env) *cobra.Command {
	var grace time.Duration
	cmd, _ := keysCommand(e, "rotate ID", "Issue a new key with the same policy; the old one expires after --grace", cobra.ExactArgs(1), false,
		func(ctx context.Context, k *keysCtx, args []string) error {
			return rotate(ctx, k, args[0], grace)
		})
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "how long the old key keeps working")
	return cmd
}

// rotate prints the new key even when retiring the old one failed (it
// exists, and is shown only once); the error then says how to finish.
func rotate(ctx context.Context, k *keysCtx, oldID string, grace time.Duration) error {
	r, err := k.svc.Rotate(ctx, oldID, grace)
	if r == nil {
		return err
	}
	printWarnings(k, r.Warnings)
	out := issued{ID: r.ID, Key: r.RawKey, Record: r.Record, Previous: r.PreviousID}
	if r.Previous != nil {
		out.PreviousExpiresAt, out.PreviousStatus = r.Previous.ExpiresAt, r.Previous.Status
	}
	if perr := printIssued(k.e.stdout, k.f.jsonOut, out); perr != nil {
		return perr
	}
	if err != nil {
		return err // a *keyadmin.RotateError: cliError says how to finish
	}
	if !k.f.jsonOut {
		fmt.Fprintf(k.e.stdout, "Old key %s: status %s, expires %s.\n", oldID, r.Previous.Status, r.Previous.ExpiresAt)
	}
	return nil
}
