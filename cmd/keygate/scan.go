package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/internal/leakscan"
)

// scanFlags are `keygate scan`'s flags.
type scanFlags struct {
	store       storeFlags
	git         []string
	includeGit  bool
	maxFileSize byteSize
	jsonOut     bool
	sarifOut    bool
	revoke      bool
	stats       bool
	timeout     time.Duration
}

func (f *scanFlags) register(fs *pflag.FlagSet) {
	f.store.register(fs)
	f.maxFileSize = leakscan.DefaultMaxFileSize
	fs.StringArrayVar(&f.git, "git", nil, "scan the whole history of the git repository at `DIR` (every commit of every ref); repeatable")
	fs.BoolVar(&f.includeGit, "include-git", false, "also scan .git directories inside the trees given")
	fs.Var(&f.maxFileSize, "max-file-size", "skip files larger than this (e.g. 512KiB, 10MiB, 1GiB)")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON document")
	fs.BoolVar(&f.sarifOut, "sarif", false, "print SARIF 2.1.0, for code-scanning tools")
	fs.BoolVar(&f.revoke, "revoke", false, `revoke every active key found, with reason "leaked" (needs the store)`)
	fs.BoolVar(&f.stats, "stats", false, "print files, bytes and MB/s scanned to stderr")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "overall timeout of the command")
}

// errLiveKeys ends a scan that found live keys: exit status 1 (the
// report is already printed).
var errLiveKeys = fmt.Errorf("live keys found: %w", errDenied)

func newScanCmd(e *env) *cobra.Command {
	f := &scanFlags{}
	cmd := &cobra.Command{
		Use:   "scan [PATH|-]...",
		Short: "Find keygate API keys in files, directories, stdin or git history, with their status in the store",
		Long: "Find leaked keygate API keys: strings of a key's shape (any prefix) whose checksum is valid.\n" +
			"PATHs are files or directories (recursively; binary files, .git and files over --max-file-size\n" +
			"are skipped, symlinks inside a tree are not followed); - is stdin; --git DIR scans a repository's\n" +
			"whole history. With no PATH and no --git, the current directory.\n" +
			"With a store (--store, or VAULT_ADDR) each key's status is read: active, revoked, expired, or\n" +
			"unknown (no record, or the record's hash does not match); --revoke revokes the active ones.\n" +
			"The raw key is never printed: only its id and a masked form.\n" +
			"Exit status: 0 no live key found, 1 live keys found (active; without a store, any key), 2 error.",
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd.Context(), e, args) },
	}
	f.register(cmd.Flags())
	return cmd
}

func (f *scanFlags) run(ctx context.Context, e *env, args []string) error {
	useStore := f.store.spec != "" || e.getenv(envVaultAddr) != ""
	errs := []error{e.envErr}
	if f.jsonOut && f.sarifOut {
		errs = append(errs, errors.New("--json and --sarif: give one"))
	}
	if f.revoke && !useStore {
		errs = append(errs, errors.New(`--revoke needs the store: set --store (or KEYGATE_STORE) to "vault" or "file:PATH", or set VAULT_ADDR`))
	}
	if f.timeout <= 0 {
		errs = append(errs, errors.New("--timeout: must be > 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var verifier *leakscan.Verifier
	if useStore {
		v, err := f.openVerifier(ctx, e)
		if err != nil {
			return err
		}
		verifier = v
	}

	res, err := f.scan(ctx, args, e)
	if err != nil {
		return err
	}
	revoked := 0
	if verifier != nil {
		verifier.Verify(ctx, res.Findings)
		if f.revoke {
			revoked = verifier.Revoke(ctx, res.Findings)
		}
	}
	if err := f.print(e, res, useStore); err != nil {
		return err
	}
	return f.outcome(e, res, revoked)
}

// openVerifier opens the store and reads its peppers.
func (f *scanFlags) openVerifier(ctx context.Context, e *env) (*leakscan.Verifier, error) {
	log, _ := newLogger(e.stderr, "warn")
	store, err := f.store.open(ctx, e, log, false)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	// The store itself: keyadmin finds its journal by its methods.
	svc, err := keyadmin.New(keyadmin.Config{Now: clock}, store.keyStore)
	if err != nil {
		return nil, err
	}
	peppers, err := store.Peppers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the store's peppers: %w", err)
	}
	return leakscan.NewVerifier(svc, peppers, clock)
}

// scan scans the paths and the --git repositories.
func (f *scanFlags) scan(ctx context.Context, args []string, e *env) (*leakscan.Result, error) {
	s := leakscan.New(leakscan.Config{MaxFileSize: int64(f.maxFileSize), IncludeGit: f.includeGit})
	if len(args) == 0 && len(f.git) == 0 {
		args = []string{"."}
	}
	res := &leakscan.Result{}
	if len(args) > 0 {
		r, err := s.Paths(ctx, args, e.stdin)
		if err != nil {
			return nil, err
		}
		res = r
	}
	for _, dir := range f.git {
		r, err := s.History(ctx, dir)
		if err != nil {
			return nil, err
		}
		res.Findings = append(res.Findings, r.Findings...)
		res.Stats.Bytes += r.Stats.Bytes
		res.Stats.Commits += r.Stats.Commits
		res.Stats.Elapsed += r.Stats.Elapsed
	}
	return res, nil
}

// outcome reports problems on stderr and picks the exit status: 1 if a
// live key was found, else 2 if anything could not be scanned or checked.
func (f *scanFlags) outcome(e *env, res *leakscan.Result, revoked int) error {
	live, problems := 0, len(res.Errors)
	for _, err := range res.Errors {
		fmt.Fprintf(e.stderr, "keygate: scan: %v\n", err)
	}
	for _, fd := range res.Findings {
		if fd.Live() {
			live++
		}
		if fd.StatusErr != nil {
			problems++
			fmt.Fprintf(e.stderr, "keygate: %s: status of key %s unknown: %v\n", fd.Location(), fd.KeyID, fd.StatusErr)
		}
		if fd.RevokeErr != nil {
			problems++
			fmt.Fprintf(e.stderr, "keygate: %s: key %s NOT revoked: %v\n", fd.Location(), fd.KeyID, cliError(fd.RevokeErr))
		}
	}
	if f.revoke {
		fmt.Fprintf(e.stderr, "keygate: revoked %d key(s) with reason %q\n", revoked, leakscan.RevokeReason)
	}
	if f.stats {
		st := res.Stats
		what := fmt.Sprintf("%d files", st.Files)
		if st.Commits > 0 {
			what += fmt.Sprintf(" and %d commits", st.Commits)
		}
		fmt.Fprintf(e.stderr, "keygate: scanned %s, %.1f MB in %s (%.0f MB/s, %.0f files/s); skipped %d binary, %d over --max-file-size, %d symlinks or special files\n",
			what, float64(st.Bytes)/1e6, st.Elapsed.Round(time.Millisecond), st.MBPerSecond(), float64(st.Files)/max(st.Elapsed.Seconds(), 1e-9),
			st.SkippedBinary, st.SkippedLarge, st.SkippedSpecial)
	}
	switch {
	case live > 0:
		return errLiveKeys
	case problems > 0:
		return fmt.Errorf("scan incomplete: %d problem(s) above", problems)
	}
	return nil
}

// byteSize is a flag value in bytes: "10MiB", "512KiB", "1GiB", "10MB",
// "1000".
type byteSize int64

func (b *byteSize) String() string {
	for _, u := range sizeUnits {
		if *b >= byteSize(u.n) && int64(*b)%u.n == 0 {
			return strconv.FormatInt(int64(*b)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Type() string { return "size" }

var sizeUnits = []struct {
	name string
	n    int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}

func (b *byteSize) Set(s string) error {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.name); ok {
			t, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q: want a positive size such as 512KiB, 10MiB or 1GiB", s)
	}
	*b = byteSize(n * mult)
	return nil
}
