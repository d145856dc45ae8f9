package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newEventsCmd is `keygate events` (issue 16; being built).
func newEventsCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "events", Short: "Deliver key events to webhooks (not built yet)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errors.New("keygate events: not built yet") }}
}
