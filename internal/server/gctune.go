package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"
)

// A small heap is collected very often: with a few keys cached, serve's
// live heap is a few MiB, so at GOGC=100 the collector ran about twenty
// times a second under load (each Check allocates a few KiB in grpc-go),
// and collection, sweeping and mark assists were over a tenth of the
// server's CPU. tuneGC raises GOGC while the live heap is small, so that
// the heap may grow to Config.GCMinHeapMiB before a collection; once the live
// heap is over half of it, GOGC is back at its base and the heap grows as
// Go's default would have it.

// maxGCMinHeapMiB bounds Config.GCMinHeapMiB (64 GiB).
const maxGCMinHeapMiB = 64 << 10

// gcTuneEvery is how often tuneGC reads the live heap.
const gcTuneEvery = time.Second

// maxGCPercent bounds the GOGC tuneGC sets, for a live heap that is
// nearly empty.
const maxGCPercent = 10000

// gcPercent is the GOGC that lets a heap whose live part is live bytes
// grow to floor bytes before it is collected, never below base (the GOGC
// without tuning) nor above maxGCPercent.
func gcPercent(floor, live uint64, base int) int {
	if live == 0 || floor <= live {
		return base
	}
	want := (floor - live) * 100 / live
	if want > maxGCPercent {
		return maxGCPercent
	}
	return max(int(want), base)
}

// tuneGC sets GOGC from the live heap every gcTuneEvery until ctx ends,
// then restores base. It does nothing if floor is 0 or base is negative
// (GOGC=off: the user decides).
func tuneGC(ctx context.Context, log *slog.Logger, floor uint64, base int) {
	if floor == 0 || base < 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := base
	defer func() { debug.SetGCPercent(base) }()
	t := time.NewTicker(gcTuneEvery)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := gcPercent(floor, sample[0].Value.Uint64(), base); p != set && (p == base || p < set*9/10 || p > set*11/10) {
				debug.SetGCPercent(p)
				log.Debug("gc percent", "gogc", p, "live_heap_bytes", sample[0].Value.Uint64())
				set = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// baseGCPercent is GOGC as the runtime reads it from the environment
// (gogc: "off" is -1, unset or not a number is 100). Not the current
// setting, which another tuner in the process (tests run several servers)
// may have raised.
func baseGCPercent(gogc string) int {
	if gogc == "off" {
		return -1
	}
	if n, err := strconv.Atoi(gogc); err == nil {
		return n
	}
	return 100
}
