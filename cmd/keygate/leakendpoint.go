package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newLeakEndpointCmd is `keygate leak-endpoint` (issue 16; being built).
func newLeakEndpointCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "leak-endpoint", Short: "GitHub secret-scanning partner endpoint (not built yet)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errors.New("keygate leak-endpoint: not built yet") }}
}
