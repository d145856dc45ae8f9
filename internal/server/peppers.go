package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// Bounds of pepper loading.
const (
	pepperTimeout    = 5 * time.Second // one read of the peppers
	pepperMinBackoff = 100 * time.Millisecond
	pepperMaxBackoff = 10 * time.Second
)

// keepPeppers loads the store's HMAC peppers (retrying with backoff until
// the store answers), installs the hasher, reports readiness once, and
// refreshes every interval, and whenever changed fires, until ctx ends.
func keepPeppers(ctx context.Context, log *slog.Logger, store Store, srv *extauthz.Server, every time.Duration, changed <-chan struct{}, ready func()) {
	backoff, isReady := pepperMinBackoff, false
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		wait := every
		if p, err := loadPeppers(ctx, store); err != nil {
			log.Warn("cannot load peppers from the store", "err", err)
			wait, backoff = backoff, min(backoff*2, pepperMaxBackoff)
		} else {
			h, _ := policy.NewHasher(policy.AlgSHA256, p) // sha256 needs no pepper; p was checked
			srv.SetHasher(h)
			backoff = pepperMinBackoff // the next outage starts retrying quickly again
			if !isReady {
				isReady = true
				ready()
			}
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
	}
}

func loadPeppers(ctx context.Context, store Store) (policy.Peppers, error) {
	ctx, cancel := context.WithTimeout(ctx, pepperTimeout)
	defer cancel()
	p, err := store.Peppers(ctx)
	if err != nil {
		return p, err
	}
	if _, err := policy.NewHasher(policy.AlgSHA256, p); err != nil {
		return p, fmt.Errorf("stored peppers: %w", err)
	}
	return p, nil
}
