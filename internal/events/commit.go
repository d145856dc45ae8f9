package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/keygate/keygate/policy"
)

// checkpoint is the state after a batch of events, to save once they are
// all settled.
type checkpoint struct {
	t  *ticket
	st State
}

// committer saves checkpoints in order, each once its batch (and so every
// batch before it: each webhook's queue is FIFO) is settled. That is what
// makes delivery at least once: a replica that takes over produces again
// everything after the last saved checkpoint.
type committer struct {
	coord       Coordinator
	version     int
	last        []byte // the state last saved
	log         *slog.Logger
	cancel      context.CancelCauseFunc
	checkpoints chan checkpoint
}

func (c *committer) run(ctx context.Context) {
	for {
		var cp checkpoint
		select {
		case <-ctx.Done():
			return
		case cp = <-c.checkpoints:
		}
		select {
		case <-ctx.Done():
			return
		case <-cp.t.done:
		}
		if err := c.save(ctx, cp.st); err != nil {
			if errors.Is(err, policy.ErrConflict) {
				c.cancel(errStateConflict)
				return
			}
			if ctx.Err() == nil {
				c.log.Warn("cannot save the events state; the next checkpoint will", "err", err)
			}
		}
	}
}

// save writes st unless it is what was last saved.
func (c *committer) save(ctx context.Context, st State) error {
	data, err := st.marshal()
	if err != nil || bytes.Equal(data, c.last) {
		return err
	}
	v, err := c.coord.SaveEventsState(ctx, data, c.version)
	if err != nil {
		return err
	}
	c.version, c.last = v, data
	return nil
}

func (st State) marshal() (json.RawMessage, error) { return json.Marshal(st) }
