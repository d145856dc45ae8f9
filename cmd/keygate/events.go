package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/keygate/keygate/internal/events"
	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/vault"
)

// eventsFlags are `keygate events`' flags, bound to an events.Config.
type eventsFlags struct {
	cfg             events.Config
	store           storeFlags
	webhooks        []string
	secretFiles     []string
	unusedFor       string
	grace           string
	metricsAddr     string
	logLevel        string
	shutdownTimeout time.Duration
	markdown        bool // --help-markdown
	fs              *pflag.FlagSet
	bad             *badValues
}

func newEventsCmd(e *env) *cobra.Command {
	f := &eventsFlags{cfg: events.DefaultConfig()}
	cmd := &cobra.Command{
		Use: "events",
		Short: "Send key events (created, updated, rotated, revoked, leaked, deleted, expiring, expired, unused) " +
			"to webhooks, signed as Standard Webhooks; one replica sends at a time",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), e) },
	}
	fs := cmd.Flags()
	f.store.register(fs)
	c := &f.cfg
	fs.StringArrayVar(&f.webhooks, "webhook", nil, "webhook URL that receives every event (repeat for more; each needs its --webhook-secret-file, in the same order)")
	fs.StringArrayVar(&f.secretFiles, "webhook-secret-file", nil, `file holding the webhook's signing secret, "whsec_" + base64 of 24 to 64 random bytes (repeat, one per --webhook)`)
	fs.IntSliceVar(&c.ExpiringDays, "expiring-days", c.ExpiringDays, "send key.expiring this many days before a key expires (each value once)")
	fs.StringVar(&f.unusedFor, "unused-for", "90d", "send key.unused when an active key has not been used for this long (Vault store; never-used keys count from created_at; 0: off)")
	fs.BoolVar(&c.AutoDisable, "auto-disable-unused", false, `revoke (reason "unused") keys still unused --auto-disable-grace after their key.unused event (needs write access to the keys and the journal)`)
	fs.StringVar(&f.grace, "auto-disable-grace", "7d", "time between key.unused and the revocation of --auto-disable-unused")
	fs.DurationVar(&c.JournalPoll, "journal-poll", c.JournalPoll, "how often the change journal (file store: the key file) is read")
	fs.DurationVar(&c.ListInterval, "list-interval", c.ListInterval, "how often the key ids are listed to find new keys (Vault: new keys are not journaled)")
	fs.DurationVar(&c.ScanInterval, "scan-interval", c.ScanInterval, "how often every key is read for key.expiring, key.expired and key.unused")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", c.LeaseTTL, "lease of the sending replica, renewed every third of it; a stopped sender is replaced within it")
	fs.IntVar(&c.QueueSize, "queue-size", c.QueueSize, "events queued per webhook; more are dead-lettered")
	fs.IntVar(&c.MaxAttempts, "max-attempts", c.MaxAttempts, "attempts per event and webhook, the first included")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "timeout of one delivery attempt")
	fs.DurationVar(&c.Backoff, "retry-backoff", c.Backoff, "wait after the first failed attempt; doubles after each (with jitter)")
	fs.DurationVar(&c.MaxBackoff, "retry-max-backoff", c.MaxBackoff, "longest wait between attempts (a longer Retry-After is cut to it)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "Prometheus /metrics listen address; :PORT binds loopback, 0.0.0.0:PORT every interface")
	docs(fs, "metrics-addr", "off")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 5*time.Second, "grace for the metrics endpoint on shutdown")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.markdown, "help-markdown", false, "print the flag table as Markdown, as in docs/events.md")
	_ = fs.MarkHidden("help-markdown")
	f.fs = fs
	f.bad = collect(fs)
	return cmd
}

var eventsDocs = flagDocs{
	intro: "Each flag can also be set by its `KEYGATE_*` variable (`--lease-ttl` ↔ `KEYGATE_LEASE_TTL`; one `--webhook` and its secret file that way).",
	tables: []flagTable{{}, {
		intro: "The store flags, as for `keygate serve`:",
		group: storeGroup,
	}},
}

// run checks every flag at once, then sends until ctx ends.
func (f *eventsFlags) run(ctx context.Context, e *env) error {
	if f.markdown {
		return writeFlagDocs(e.stdout, f.fs, eventsDocs)
	}
	log, logErr := newLogger(e.stderr, f.logLevel)
	if logErr != nil {
		log, _ = newLogger(e.stderr, "info")
	}
	hookErr := f.readWebhooks(log)
	errs := []error{f.bad.err(), e.envErr, logErr, f.durations(), hookErr}
	for _, err := range field.Split(f.cfg.Validate()) {
		var fe *field.Error
		if hookErr != nil && errors.As(err, &fe) && strings.HasPrefix(fe.Names[0], "webhook-secret-file[") {
			continue // readWebhooks said why
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return f.named(e, err)
	}
	metrics := events.NewMetrics(len(f.cfg.Webhooks))
	f.cfg.Log, f.cfg.Metrics = log, metrics
	store, err := f.store.open(ctx, e, log, false)
	if err != nil {
		return err
	}
	svc, err := keyadmin.New(keyadmin.Config{}, store.keyStore)
	if err != nil {
		return err
	}
	coord, journal, err := eventsDeps(store, f.store.spec, e)
	if err != nil {
		return err
	}
	runner, err := events.New(f.cfg, svc, coord, journal)
	if err != nil {
		return f.named(e, err)
	}
	var ln net.Listener
	if f.metricsAddr != "" {
		if ln, err = net.Listen("tcp", loopbackPort(f.metricsAddr)); err != nil {
			return fmt.Errorf("%s: %w", e.flagName("metrics-addr"), err)
		}
		log.Info("events metrics listening", "metrics_addr", ln.Addr().String())
	}
	log.Info("keygate events starting", "holder", runner.Holder(), "store", store.name, "webhooks", len(f.cfg.Webhooks))
	return runEvents(ctx, store, runner, ln, metrics, f.shutdownTimeout)
}

// runEvents runs the store's login (Vault), the runner once logged in, and
// the metrics endpoint, until ctx ends or one of them fails.
func runEvents(ctx context.Context, store *openedStore, runner *events.Runner, ln net.Listener, m *events.Metrics, grace time.Duration) error {
	g, gctx := errgroup.WithContext(ctx)
	if store.run != nil {
		g.Go(func() error {
			if err := store.run(gctx); err != nil && gctx.Err() == nil {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		if store.ready != nil {
			select {
			case <-store.ready:
			case <-gctx.Done():
				return nil
			}
		}
		return runner.Run(gctx)
	})
	if ln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	return g.Wait()
}

// eventsDeps: Vault keeps the lease and state in KV and has a journal; the
// file store keeps them in files beside the key file and has none.
func eventsDeps(store *openedStore, spec string, e *env) (events.Coordinator, events.Journal, error) {
	switch s := store.keyStore.(type) {
	case *vault.Store:
		return s, eventsJournal{s}, nil
	default:
		path, ok := strings.CutPrefix(spec, "file:")
		if !ok {
			return nil, nil, fmt.Errorf("%s: keygate events supports the Vault and file stores", e.flagName("store"))
		}
		return events.NewFileCoordinator(path), nil, nil
	}
}

// eventsJournal is Vault's change journal as the events runner reads it.
type eventsJournal struct{ s *vault.Store }

func (j eventsJournal) JournalSince(ctx context.Context, after int) ([]events.JournalEntry, int, bool, error) {
	entries, latest, complete, err := j.s.JournalSince(ctx, after)
	out := make([]events.JournalEntry, len(entries))
	for i, e := range entries {
		at, _ := time.Parse(time.RFC3339, e.At)
		out[i] = events.JournalEntry{Version: e.Version, Op: e.Op, IDs: e.IDs, At: at}
	}
	return out, latest, complete, err
}

// durations parses the day-valued flags ("90d").
func (f *eventsFlags) durations() error {
	var l field.List
	for _, d := range []struct {
		name, value string
		into        *time.Duration
	}{{"unused-for", f.unusedFor, &f.cfg.UnusedFor}, {"auto-disable-grace", f.grace, &f.cfg.AutoDisableGrace}} {
		if d.value == "0" {
			*d.into = 0
			continue
		}
		v, err := keyadmin.ParseLifetime(d.value)
		if err != nil {
			l.Addf(d.name, "%v", err)
		}
		*d.into = v
	}
	return l.Err()
}

// readWebhooks pairs each --webhook with its --webhook-secret-file, in
// order. Neither a secret nor a URL appears in an error.
func (f *eventsFlags) readWebhooks(log *slog.Logger) error {
	var l field.List
	if len(f.webhooks) != len(f.secretFiles) {
		l.Addf("webhook-secret-file", "%d given for %d --webhook: give one per webhook, in the same order", len(f.secretFiles), len(f.webhooks))
		return l.Err()
	}
	for i, u := range f.webhooks {
		w := events.Webhook{URL: u}
		data, err := os.ReadFile(f.secretFiles[i])
		if err != nil {
			l.Addf(fmt.Sprintf("webhook-secret-file[%d]", i), "%v", err)
		} else if w.Secret, err = events.ParseSecret(string(data)); err != nil {
			l.Addf(fmt.Sprintf("webhook-secret-file[%d]", i), "%s: %v", f.secretFiles[i], err)
		}
		if p, err := url.Parse(u); err == nil && p.Scheme == "http" && !loopbackHost(p.Hostname()) {
			log.Warn("webhook over plain HTTP: events are signed but readable on the way; prefer https", "webhook", i, "url", w.Redacted())
		}
		f.cfg.Webhooks = append(f.cfg.Webhooks, w)
	}
	return l.Err()
}

// named renames the fields in err's problems to the flags or KEYGATE_*
// variables the user set.
func (f *eventsFlags) named(e *env, err error) error {
	return field.Rename(err, func(name string) string {
		base, idx, _ := strings.Cut(name, "[")
		if idx != "" {
			return e.flagName(base) + "[" + idx
		}
		return e.flagName(name)
	})
}

// loopbackPort puts an address without a host (":9466") on loopback.
func loopbackPort(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

func loopbackHost(host string) bool {
	return host == "localhost" || loopbackAddr(net.JoinHostPort(host, "0"))
}
