package server

import (
	"context"
	"errors"
	"log/slog"

	"golang.org/x/sync/errgroup"
)

// gate is a readiness a task waits for before it starts, e.g. the first
// Vault login. A nil ch is open from the start.
type gate struct {
	name string
	ch   <-chan struct{}
}

// task is one long-running part of the server. Every task runs in one
// errgroup; the first to fail stops the server.
type task struct {
	name  string
	after []gate // all must be open before run starts
	// run does the work until it is told to stop: background tasks when
	// ctx ends, listeners when the shutdown sequence closes them, the audit
	// and usage writers once Checks have stopped.
	run func(ctx context.Context) error
}

// start runs every task in g. A task whose gates do not open before ctx
// ends never runs. A task's error is returned as is, unless ctx had ended
// and the error is only ctx's (a task stopping as told).
func start(ctx context.Context, g *errgroup.Group, tasks []task, log *slog.Logger) {
	for _, t := range tasks {
		g.Go(func() error {
			for _, gt := range t.after {
				if gt.ch == nil {
					continue
				}
				select {
				case <-gt.ch:
				default:
					log.Debug("task waiting", "task", t.name, "for", gt.name)
					select {
					case <-gt.ch:
					case <-ctx.Done():
						return nil
					}
				}
			}
			err := t.run(ctx)
			if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil
			}
			return err
		})
	}
}
