package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keygate/keygate/bench"
	"github.com/keygate/keygate/bench/proc"
)

// run is the whole benchmark: file-store scenarios with ghz, the fixed-rate
// run, then (unless disabled) cold misses and Vault reads, then the outputs.
func run(ctx context.Context, cfg *config) error {
	started := time.Now()
	tmp, err := os.MkdirTemp("", "kgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // keys, requests and logs
	h := &harness{cfg: cfg, tmp: tmp, protoset: filepath.Join(tmp, "check.protoset"), loadStart: firstLine(os.ReadFile("/proc/loadavg"))}
	if err := h.writeProtoset(); err != nil {
		return err
	}
	if err := h.fileSuites(ctx); err != nil {
		return err
	}
	if cfg.Vault {
		if err := h.vaultSuite(ctx); err != nil {
			return fmt.Errorf("vault scenarios: %w", err)
		}
	} else {
		h.note("BENCH_VAULT=0: cold misses and Vault reads skipped")
	}
	return h.output(started)
}

func (h *harness) writeProtoset() error {
	b, err := bench.Protoset()
	if err != nil {
		return err
	}
	return os.WriteFile(h.protoset, b, 0o600)
}

// fileSuites serves keygate on a file store and the floor, and runs the
// ghz scenarios and the fixed-rate run against them.
func (h *harness) fileSuites(ctx context.Context) error {
	store := "file:" + filepath.Join(h.tmp, "keys.yaml")
	ss, validKey, err := h.fileScenarios(ctx, store)
	if err != nil {
		return err
	}
	keyFile := filepath.Join(h.tmp, "floor-keys.txt")
	if err := writeKeyFile(keyFile, []string{validKey}); err != nil {
		return err
	}
	kg, err := proc.StartServer(ctx, h.tmp, "keygate", nil, h.cfg.keygate, "--grpc-addr", "serve", "--store", store, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer kg.Stop()
	fl, err := proc.StartServer(ctx, h.tmp, "floor", nil, h.cfg.floor, "--addr", "--keys", keyFile)
	if err != nil {
		return err
	}
	defer fl.Stop()
	if !proc.ResetPeakRSS(kg.PID()) {
		h.note("cannot reset VmHWM (/proc/PID/clear_refs): RSS is the peak since the server started")
	}
	h.progress("keygate (file store) on %s, floor on %s; network: %s", kg.Addr, fl.Addr, h.cfg.Network)
	if err := h.ghzSuite(ctx, ss, kg, fl); err != nil {
		return err
	}
	return h.rateSuite(ctx, ss[0], kg, fl)
}
