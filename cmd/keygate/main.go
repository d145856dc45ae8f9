// Command keygate is an Envoy external-authorization server for API keys
// kept in HashiCorp Vault, and the CLI that issues and revokes them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/policy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// Exit codes scripts can rely on.
const (
	exitOK     = 0
	exitDenied = 1 // keygate check: the request was denied
	exitError  = 2 // bad flags, store errors, anything else
)

// errDenied is returned by `keygate check` when the decision is a deny; the
// decision itself was already printed.
var errDenied = errors.New("denied")

func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errDenied):
		return exitDenied
	}
	// Last line of defence: never echo anything key-shaped.
	fmt.Fprintln(stderr, "keygate:", policy.Redact(err.Error()))
	return exitError
}
