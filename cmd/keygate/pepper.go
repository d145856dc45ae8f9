package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// pepperRotator is implemented by stores that can add a pepper version
// (Vault). File-store users write the pepper section themselves.
type pepperRotator interface {
	InitPepper(ctx context.Context) (version int, err error)
}

func newPepperCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pepper",
		Short: "Manage the server-side HMAC pepper used by --hash hmac-sha256",
	}
	rotate, _ := keysCommand(e, "rotate", "Add a new random pepper version and make it current (older versions stay for existing keys)",
		cobra.NoArgs, false, func(ctx context.Context, k *keysCtx, _ []string) error {
			r, ok := k.store.(*openedStore).keyStore.(pepperRotator)
			if !ok {
				return errors.New("this store cannot rotate peppers: edit the pepper section of the file (see README)")
			}
			v, err := r.InitPepper(ctx)
			if err != nil {
				return fmt.Errorf("rotate pepper: %w", err)
			}
			if k.f.jsonOut {
				return json.NewEncoder(k.e.stdout).Encode(map[string]int{"current": v})
			}
			_, err = fmt.Fprintf(k.e.stdout, "Pepper version %d is now current; servers load it within --pepper-refresh.\n", v)
			return err
		})
	cmd.AddCommand(rotate)
	return cmd
}
