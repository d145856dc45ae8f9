package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/keyadmin"
)

func newPepperCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pepper",
		Short: "Manage the server-side HMAC pepper used by --hash hmac-sha256",
	}
	rotate, _ := keysCommand(e, "rotate", "Add a new random pepper version and make it current (older versions stay for existing keys)",
		cobra.NoArgs, false, func(ctx context.Context, k *keysCtx, _ []string) error {
			v, err := k.svc.RotatePepper(ctx)
			switch {
			case errors.Is(err, keyadmin.ErrUnsupported):
				return errors.New("this store cannot rotate peppers: edit the pepper section of the file (see README)")
			case err != nil:
				return err
			case k.f.jsonOut:
				return json.NewEncoder(k.e.stdout).Encode(map[string]int{"current": v})
			}
			_, err = fmt.Fprintf(k.e.stdout, "Pepper version %d is now current; servers load it within --pepper-refresh.\n", v)
			return err
		})
	cmd.AddCommand(rotate)
	return cmd
}
