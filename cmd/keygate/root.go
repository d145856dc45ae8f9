package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/policy"
)

// env is how the program reads its environment (injected for tests).
type env struct {
	// envErr holds bad KEYGATE_* values; commands report it together
	// with their own validation errors.
	envErr error
	// fromEnv are the flags set from their KEYGATE_* variable, so that
	// errors name what the user set.
	fromEnv map[string]bool
	getenv  func(string) string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

// run is the whole program: main only maps its error to an exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "keygate",
		Short:         "API-key authorization for Envoy and Istio, with keys in Vault",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			e.fromEnv, e.envErr = applyEnv(cmd, getenv)
		},
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(e), newConsoleCmd(e), newEventsCmd(e), newLeakEndpointCmd(e), newKeysCmd(e), newCheckCmd(e), newPepperCmd(e), newScanCmd(e), newVersionCmd(e))
	return root.ExecuteContext(ctx)
}

// envName is the environment variable for a flag: --found-ttl is
// KEYGATE_FOUND_TTL.
func envName(flag string) string {
	return "KEYGATE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its KEYGATE_*
// variable, and returns the flags it set and every bad value at once.
func applyEnv(cmd *cobra.Command, getenv func(string) string) (map[string]bool, error) {
	var errs []error
	set := map[string]bool{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" {
			return
		}
		set[f.Name] = true
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
		}
	})
	return set, errors.Join(errs...)
}

// flagName is how errors name the flag called name: its KEYGATE_*
// variable if that is what set it, else --name.
func (e *env) flagName(name string) string {
	if e.fromEnv[name] {
		return envName(name)
	}
	return "--" + name
}

// newLogger builds the JSON logger every command uses.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		var fl field.List
		fl.Addf("log-level", "%q: want debug, info, warn or error", level)
		return nil, fl.Err()
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: redactAttr})), nil
}

// redactAttr is a safety net under the rule that nothing logs a raw key:
// string and error values are passed through policy.Redact.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); policy.Redact(s) != s {
			return slog.String(a.Key, policy.Redact(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, policy.Redact(err.Error()))
		}
	}
	return a
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the keygate version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(e.stdout, "keygate", version)
			return err
		},
	}
}
