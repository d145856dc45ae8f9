package server

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestBaseGCPercent(t *testing.T) {
	for in, want := range map[string]int{"": 100, "off": -1, "50": 50, "400": 400, "junk": 100} {
		if got := baseGCPercent(in); got != want {
			t.Errorf("baseGCPercent(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		floor, live uint64
		base, want  int
	}{
		{64 * mib, 4 * mib, 100, 1500},  // grows to 64 MiB: 4 + 4×15
		{64 * mib, 32 * mib, 100, 100},  // floor reached at the base GOGC
		{64 * mib, 31 * mib, 100, 106},  // just over: 31 + 31×1.06 ≈ 64
		{64 * mib, 64 * mib, 100, 100},  // at the floor
		{64 * mib, 200 * mib, 100, 100}, // well over: Go's default
		{64 * mib, 4 * mib, 2000, 2000}, // never below the user's GOGC
		{64 * mib, 1024, 100, maxGCPercent},
		{64 * mib, 0, 100, 100}, // nothing read yet
		{64 * mib, 63 * mib, 50, 50},
	} {
		if got := gcPercent(tc.floor, tc.live, tc.base); got != tc.want {
			t.Errorf("gcPercent(%d MiB, %d B, %d) = %d, want %d", tc.floor/mib, tc.live, tc.base, got, tc.want)
		}
	}
}

// TestTuneGC: while it runs, GOGC lets a small heap grow to the floor;
// when it ends, GOGC is back at its base; with GOGC=off or no floor it
// never touches GOGC.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	runtime.GC() // the live heap is known from the end of a collection on

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tuneGC(ctx, log, 1<<40, 100); close(done) }() // a 1 TiB floor: any test heap is small
	deadline := time.Now().Add(5 * time.Second)
	gogc := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	for gogc() != maxGCPercent {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d while tuning, want %d", gogc(), maxGCPercent)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if p := gogc(); p != 100 {
		t.Errorf("GOGC %d after tuning, want the base 100", p)
	}

	for _, tc := range []struct {
		floor uint64
		base  int
	}{{0, 100}, {1 << 40, -1}} {
		debug.SetGCPercent(tc.base)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		tuneGC(ctx, log, tc.floor, tc.base)
		if p := debug.SetGCPercent(100); p != tc.base {
			t.Errorf("floor %d, base %d: GOGC became %d", tc.floor, tc.base, p)
		}
	}
}
