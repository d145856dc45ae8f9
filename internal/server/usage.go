package server

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keygate/keygate/extauthz"
)

// UsageWriter is a store that records when keys were last used (Vault).
type UsageWriter interface {
	RecordUsage(ctx context.Context, keyID string, at time.Time) error
}

// Bounds of the last-used write-back.
const (
	usageMinRate      = 20.0            // writes/s at least, so small batches finish quickly
	usageFinalTimeout = 5 * time.Second // writing what is pending at shutdown
	usageMaxCarry     = 100_000         // failed writes kept for the next round
	usageMaxFailures  = 3               // consecutive failed writes that end a round (Vault is down)
)

// writeUsage writes, every interval, when each key used since the last
// round was first used in it: one small write per key, paced to finish
// within half the interval so Vault sees a trickle, not a burst. Writes that
// fail are retried next round (the later use wins). When stopped closes
// (the server no longer answers Checks), what is pending is written within
// usageFinalTimeout, or until final ends (a hurried shutdown), so a restart
// loses little. ctx ending only cuts a round short: the loop ends with
// stopped.
func writeUsage(ctx, final context.Context, stopped <-chan struct{}, log *slog.Logger, w UsageWriter, srv *extauthz.Server, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	carry := map[string]time.Time{}
	for {
		select {
		case <-stopped:
			final, cancel := context.WithTimeout(final, usageFinalTimeout)
			carry = usageRound(final, log, w, srv.TakeUsage, carry, 0)
			cancel()
			if len(carry) > 0 {
				log.Warn("stopping with key uses not written", "keys", len(carry))
			}
			return
		case <-t.C:
			carry = usageRound(ctx, log, w, srv.TakeUsage, carry, every/2)
		}
	}
}

// usageWriters is how many usage writes are in flight at once, so a round
// is not bounded by one Vault round trip per key.
const usageWriters = 4

// usageRound takes the server's pending uses (take), merges what an earlier
// round could not write, and writes them spread over spread (0: at once)
// until done, ctx ends or usageMaxFailures writes fail in a row (Vault is
// down). It returns what is left to write.
func usageRound(ctx context.Context, log *slog.Logger, w UsageWriter, take func() (map[string]time.Time, uint64),
	carry map[string]time.Time, spread time.Duration) map[string]time.Time {
	taken, dropped := take()
	if dropped > 0 {
		log.Warn("more keys used in one --usage-interval than --cache-size: some uses were not recorded", "dropped", dropped)
	}
	batch := make(map[string]time.Time, len(carry)+len(taken))
	maps.Copy(batch, carry)
	for id, at := range taken {
		if prev, ok := batch[id]; !ok || at.After(prev) {
			batch[id] = at
		}
	}
	pace := rate.Inf
	if spread > 0 {
		pace = rate.Limit(max(usageMinRate, float64(len(batch))/spread.Seconds()))
	}
	written, failed := writeBatch(ctx, log, w, batch, rate.NewLimiter(pace, 1))
	for _, id := range written {
		delete(batch, id)
	}
	log.Debug("recorded key uses", "written", len(written), "failed", failed, "left", len(batch))
	if len(batch) > usageMaxCarry {
		log.Warn("too many unwritten key uses: dropping some", "keys", len(batch)-usageMaxCarry)
		for id := range batch {
			if len(batch) <= usageMaxCarry {
				break
			}
			delete(batch, id)
		}
	}
	return batch
}

// writeBatch writes batch with usageWriters writers sharing lim, and
// returns the ids written and the number of failed writes.
func writeBatch(ctx context.Context, log *slog.Logger, w UsageWriter, batch map[string]time.Time, lim *rate.Limiter) ([]string, int) {
	var (
		mu              sync.Mutex
		written         []string
		failed, inARow  int
		ids             = make(chan string)
		wg              sync.WaitGroup
		ctxDone, cancel = context.WithCancel(ctx)
	)
	defer cancel()
	for range usageWriters {
		wg.Go(func() {
			for id := range ids {
				err := w.RecordUsage(ctxDone, id, batch[id])
				mu.Lock()
				if err == nil {
					written, inARow = append(written, id), 0
				} else if failed, inARow = failed+1, inARow+1; failed == 1 {
					log.Warn("cannot record key use; retrying next round", "key_id", id, "err", err)
				}
				if inARow >= usageMaxFailures {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	for id := range batch {
		if lim.Wait(ctxDone) != nil {
			break
		}
		select {
		case ids <- id:
		case <-ctxDone.Done():
		}
	}
	close(ids)
	wg.Wait()
	return written, failed
}
