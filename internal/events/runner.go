package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
)

// JournalEntry is one entry of a store's change journal.
type JournalEntry struct {
	Version int       // the journal version that recorded it
	Op      string    // a keyadmin.JournalOp*
	IDs     []string  // the key ids it changed
	At      time.Time // when it was written (zero if unknown)
}

// Journal is a store's change journal (Vault): the entries after version
// after (after < 0: none, only the latest version), the latest version,
// and whether the entries are complete (false: versions were pruned).
type Journal interface {
	JournalSince(ctx context.Context, after int) (entries []JournalEntry, latest int, complete bool, err error)
}

// Runner is one `keygate events` replica: it campaigns for the lease and,
// while it holds it, produces events and delivers them to the webhooks.
type Runner struct {
	cfg     Config
	svc     *keyadmin.Service
	coord   Coordinator
	journal Journal // nil: changes are found by comparing the keys (file store)
	log     *slog.Logger
	now     func() time.Time
}

// Errors that end a leadership term.
var (
	errLeaseLost     = errors.New("the events lease was lost")
	errStateConflict = errors.New("another replica wrote the events state")
)

// New returns a Runner over svc (the keys), coord (lease and state) and
// journal (nil for a store without one). It validates cfg and fills in
// Holder, Log and Now.
func New(cfg Config, svc *keyadmin.Service, coord Coordinator, journal Journal) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if svc == nil || coord == nil {
		return nil, errors.New("events: a key service and a coordinator are required")
	}
	if cfg.UnusedFor > 0 && !svc.Caps().Usage {
		if cfg.AutoDisable {
			return nil, fmt.Errorf("auto-disable-unused: %w", errNoUsage)
		}
		cfg.UnusedFor = 0 // key.unused is off: nothing says when a key was used
	}
	if cfg.Holder == "" {
		cfg.Holder = defaultHolder()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Runner{cfg: cfg, svc: svc, coord: coord, journal: journal, log: cfg.Log, now: cfg.Now}, nil
}

// Holder is this replica's name in the lease.
func (r *Runner) Holder() string { return r.cfg.Holder }

func defaultHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Run campaigns for the lease every LeaseTTL/3 and leads while it holds
// it, until ctx ends; then it gives the lease up and returns nil.
func (r *Runner) Run(ctx context.Context) error {
	every := r.cfg.LeaseTTL / 3
	for {
		held, err := r.coord.AcquireEventsLease(ctx, r.cfg.Holder, r.now(), r.cfg.LeaseTTL)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.log.Warn("cannot read or take the events lease", "err", err)
		case held:
			err := r.lead(ctx)
			r.release()
			if ctx.Err() != nil {
				r.log.Info("stopped sending events: shutting down; the lease is released")
				return nil
			}
			r.log.Warn("stopped sending events", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// release gives the lease up so another replica takes over at once.
func (r *Runner) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.coord.ReleaseEventsLease(ctx, r.cfg.Holder); err != nil {
		r.log.Warn("cannot release the events lease; another replica takes over when it expires", "err", err)
	}
}

// lead is one leadership term: it keeps the lease, sends, and saves the
// state, until ctx ends or the lease or the state is lost.
func (r *Runner) lead(parent context.Context) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	r.cfg.Metrics.setLeader(true)
	defer r.cfg.Metrics.setLeader(false)
	r.log.Info("holding the events lease: sending events", "holder", r.cfg.Holder)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil) // runs before wg.Wait: stop every goroutine first
	wg.Go(func() { r.keepLease(ctx, cancel) })

	st, version, err := r.startState(ctx)
	if err != nil {
		cancel(err)
		return err
	}
	senders := make([]*sender, len(r.cfg.Webhooks))
	for i, w := range r.cfg.Webhooks {
		senders[i] = newSender(i, w, r.cfg, r.log, r.cfg.Metrics)
		wg.Go(func() { senders[i].run(ctx) })
	}
	c := &committer{coord: r.coord, version: version, log: r.log, cancel: cancel, checkpoints: make(chan checkpoint, 256)}
	c.last, _ = st.marshal()
	wg.Go(func() { c.run(ctx) })
	p := &producer{r: r, st: st, senders: senders, commit: c.checkpoints}
	p.run(ctx)
	return context.Cause(ctx)
}

// keepLease renews the lease every LeaseTTL/3. It ends the term (cancel)
// when another replica has the lease, or when the lease runs out before a
// renewal succeeds (Vault unreachable): sending stops at once.
func (r *Runner) keepLease(ctx context.Context, cancel context.CancelCauseFunc) {
	ttl := r.cfg.LeaseTTL
	expires := time.Now().Add(ttl - ttl/10) // by the local monotonic clock, with a margin
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		held, err := r.coord.AcquireEventsLease(ctx, r.cfg.Holder, r.now(), ttl)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && !held:
			cancel(errLeaseLost)
			return
		case err == nil:
			expires = start.Add(ttl - ttl/10)
		case time.Now().After(expires):
			cancel(fmt.Errorf("%w: not renewed in time: %w", errLeaseLost, err))
			return
		default:
			r.log.Warn("cannot renew the events lease; retrying", "err", err)
		}
	}
}

// startState loads the saved state, or starts one (events begin now: no
// event for what happened before the first sender).
func (r *Runner) startState(ctx context.Context) (State, int, error) {
	st, version, ok, err := loadState(ctx, r.coord)
	switch {
	case errors.Is(err, errJunkState):
		r.log.Error("the saved events state does not parse; starting afresh (events since it was saved are lost)", "err", err)
	case err != nil:
		return State{}, 0, fmt.Errorf("read the events state: %w", err)
	case ok:
		return st, version, nil
	}
	now := r.now().UTC()
	st = State{Started: now, LastList: now, LastScan: now}
	if r.journal != nil {
		_, latest, _, err := r.journal.JournalSince(ctx, -1)
		if err != nil {
			return State{}, 0, fmt.Errorf("read the change journal: %w", err)
		}
		st.Journal = latest
	} else {
		keys, err := r.svc.List(ctx, keyadmin.Filter{})
		if err != nil {
			return State{}, 0, err
		}
		st.Keys = summarize(keys)
	}
	data, err := st.marshal()
	if err != nil {
		return State{}, 0, err
	}
	if version, err = r.coord.SaveEventsState(ctx, data, version); err != nil {
		return State{}, 0, fmt.Errorf("save the events state: %w", err)
	}
	r.log.Info("events start now: nothing is sent for what happened before", "journal_version", st.Journal)
	return st, version, nil
}
